// The client against a live Switchboard: events, requests, drops, resume and token expiry.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";

import { Client, SwitchboardError, type ClientOptions, type ConnectionState, type EventFrame, type Resumed } from "../src/index.js";
import { backoff, untilExpiry, afterClose } from "../src/retry.js";
import { Server, token } from "./server.js";

const server = new Server();
beforeAll(() => server.start());
afterAll(() => server.stop());

function client(options: Partial<ClientOptions> & { user?: string } = {}): Client {
  const user = options.user ?? "alice";
  return new Client({ url: server.url, token: token(user), WebSocket: WebSocket as any, ...options });
}

/** The next event of `type`, within 10 s. */
function next<T = unknown>(c: Client, type: string): Promise<EventFrame<T>> {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`no ${type} within 10 s`)), 10_000);
    const off = c.on(type, (_data, frame) => {
      clearTimeout(timer);
      off();
      done(frame as EventFrame<T>);
    });
  });
}

/** Resolves when the client reaches `state`, within 15 s. */
function reaches(c: Client, state: ConnectionState): Promise<void> {
  if (c.state === state) return Promise.resolve();
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`never ${state}; still ${c.state}`)), 15_000);
    const off = c.onState((now) => {
      if (now === state) {
        clearTimeout(timer);
        off();
        done();
      }
    });
  });
}

describe("retry rules", () => {
  it("backs off exponentially with jitter, capped", () => {
    expect(backoff(0, 500, 30_000, () => 0.5)).toBe(500);
    expect(backoff(3, 500, 30_000, () => 0.5)).toBe(4000);
    expect(backoff(20, 500, 30_000, () => 0.5)).toBe(30_000);
    expect(backoff(0, 500, 30_000, () => 0)).toBe(250);
    expect(backoff(0, 500, 30_000, () => 0.999)).toBe(750);
  });

  it("stops on terminal codes and on 4401 without a way to renew the token", () => {
    expect([1000, 1009, 4403].map((code) => afterClose(code, true))).toEqual(["stop", "stop", "stop"]);
    expect(afterClose(4401, false)).toBe("stop");
    expect([4401, 1001, 1006, 4008, 4429].map((code) => afterClose(code, true))).toEqual(Array(5).fill("reconnect"));
  });

  it("reads a token's expiry", () => {
    expect(untilExpiry(token("x", 100), Date.now())).toBeGreaterThan(98_000);
    expect(untilExpiry("not-a-jwt")).toBeNull();
  });
});

describe("a live server", () => {
  it("delivers events to on() and onAny() until their unsubscribe functions run", async () => {
    const c = client();
    const connected = await c.connect();
    expect(connected.user_id).toBe("alice");
    // Socket.IO's shape: the event's type first, then its data (and here the whole frame).
    const any: Array<[string, unknown]> = [];
    const offAny = c.onAny((type, data, frame) => {
      expect(frame.type).toBe(type);
      any.push([type, data]);
    });
    const greeting = next<{ text: string }>(c, "greeting");
    await server.publish("user:alice", "greeting", { text: "hi" });
    const frame = await greeting;
    expect(frame.data.text).toBe("hi");
    expect(frame.channel).toBe("user:alice");
    expect(c.positions["user:alice"]).toEqual({ epoch: frame.epoch, seq: frame.seq });
    const seen: unknown[] = [];
    const off = c.on("greeting", (data) => seen.push(data));
    off();
    offAny();
    const marker = next(c, "marker");
    await server.publish("user:alice", "greeting", { text: "again" });
    await server.publish("user:alice", "marker", {});
    await marker;
    expect(seen).toEqual([]);
    expect(any).toEqual([["greeting", { text: "hi" }]]);
    c.close();
  });

  it("matches replies by ref and rejects with the server's code", async () => {
    const c = client();
    await c.connect();
    await expect(c.subscribe("room:lobby")).resolves.toMatchObject({ channel: "room:lobby" });
    const refused = await c.request("subscribe", { channel: "nowhere:1" }).catch((e) => e);
    expect(refused).toBeInstanceOf(SwitchboardError);
    expect(refused.code).toBe("bad_request");
    const [a, b] = await Promise.all([c.request("ping", { n: 1 }), c.request("unsubscribe", { channel: "room:lobby" })]);
    expect(a).toEqual({});
    expect(b).toMatchObject({ channel: "room:lobby", was_subscribed: true });
    c.close();
  });

  it("reconnects after the server dies and resumes what it missed, once and in order", async () => {
    const c = client({ user: "bob", reconnectDelayMs: 1500 });
    await c.connect();
    await c.subscribe("room:lobby");
    const first = next<number>(c, "tick");
    await server.publish("user:bob", "tick", 1);
    expect((await first).data).toBe(1);
    const ticks: number[] = [];
    c.on("tick", (n) => ticks.push(n as number));
    const states: ConnectionState[] = [];
    c.onState((s) => states.push(s));
    const resumed = next<Resumed>(c, "resumed");
    const second = next<number>(c, "tick");
    await server.kill();
    await reaches(c, "reconnecting");
    await server.start(); // same port and data; the client waits at least 750 ms to retry
    await server.publish("user:bob", "tick", 2);
    expect((await second).data).toBe(2);
    const third = next<number>(c, "tick");
    await server.publish("user:bob", "tick", 3);
    await third;
    expect(ticks).toEqual([2, 3]);
    // The missed tick came before `resumed`, which names what was recovered and what was not.
    expect((await resumed).data).toBe(c.lastResume);
    expect(c.lastResume).toMatchObject({
      recovered: true,
      missed: 1,
      unrecovered: [],
      recoveredChannels: ["user:bob"],
      untrackedChannels: ["broadcast", "room:lobby"],
    });
    expect(states).toEqual(["reconnecting", "connected"]);
    // The room was subscribed again on its own.
    const lobby = next(c, "news");
    await server.publish("room:lobby", "news", {});
    await lobby;
    c.close();
  });

  it("names after a reconnect the channels it recovered, the ones it could not, and the untracked ones", async () => {
    const c = client({ user: "frank", reconnectDelayMs: 3000 });
    await c.connect();
    await c.subscribe("feed:news"); // history in memory: lost with the restart
    await c.subscribe("room:lobby"); // no history: nothing to resume from
    for (const [channel, type] of [["user:frank", "mail"], ["feed:news", "story"]]) {
      const seen = next(c, type);
      await server.publish(channel, type, { n: 1 });
      await seen;
    }
    const oldFeed = c.positions["feed:news"];
    const mails: unknown[] = [];
    c.on("mail", (data) => mails.push(data));
    const resumed = next<Resumed>(c, "resumed");
    await server.kill();
    await reaches(c, "reconnecting");
    await server.start(); // the client waits at least 1.5 s to retry
    await server.publish("user:frank", "mail", { n: 2 });
    const story = await server.publish("feed:news", "story", { n: 2 });
    const { data } = await resumed;
    expect(mails).toEqual([{ n: 2 }]); // replayed before `resumed`
    expect(data).toMatchObject({
      recovered: false,
      missed: 1,
      recoveredChannels: ["user:frank"],
      unrecovered: ["feed:news"],
      untrackedChannels: ["broadcast", "room:lobby"],
    });
    // The feed continues from the server's position in its new epoch, so the next resume does not fail again.
    expect(data.positions["feed:news"].epoch).not.toBe(oldFeed.epoch);
    expect(c.positions["feed:news"]).toEqual(data.positions["feed:news"]);
    expect(story.positions["feed:news"]).toEqual(data.positions["feed:news"]);
    const live = next(c, "story");
    await server.publish("feed:news", "story", { n: 3 });
    expect((await live).data).toEqual({ n: 3 });
    c.close();
  });

  it("reports every channel unrecovered when the server refuses the resume, and says so once per reconnect", async () => {
    await server.api("PUT", "/channels/club:chess/members/gina");
    const c = client({ user: "gina", reconnectDelayMs: 3000 });
    await c.connect();
    await c.subscribe("club:chess");
    for (const channel of ["user:gina", "club:chess"]) {
      const seen = next(c, "move");
      await server.publish(channel, "move", {});
      await seen;
    }
    // She may not join the club again, so the server refuses the whole `resume`.
    await server.api("DELETE", "/channels/club:chess/members/gina");
    const events: Resumed[] = [];
    c.on("resumed", (r) => events.push(r));
    const resumed = next<Resumed>(c, "resumed");
    await server.kill();
    await reaches(c, "reconnecting");
    await server.start();
    const { data } = await resumed;
    expect(data).toMatchObject({ recovered: false, missed: 0, recoveredChannels: [], untrackedChannels: ["broadcast"] });
    expect([...data.unrecovered].sort()).toEqual(["club:chess", "user:gina"]);
    // Their positions are forgotten: the next reconnect has nothing to resume and says so.
    expect(c.positions).toEqual({});
    const again = next<Resumed>(c, "resumed");
    await server.kill();
    await reaches(c, "reconnecting");
    await server.start();
    expect((await again).data).toMatchObject({
      recovered: true,
      missed: 0,
      unrecovered: [],
      recoveredChannels: [],
      untrackedChannels: ["broadcast", "club:chess", "user:gina"],
    });
    expect(events).toHaveLength(2);
    c.close();
  });

  it("renews a short-lived token before it expires", async () => {
    let calls = 0;
    const getToken = () => {
      calls += 1;
      return token("carol", 3);
    };
    const c = client({ user: "carol", token: undefined, getToken, refreshBeforeMs: 2000 });
    await c.connect();
    const closes: ConnectionState[] = [];
    c.onState((s) => closes.push(s));
    await new Promise((done) => setTimeout(done, 4500)); // past the first token's expiry
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(closes).toEqual([]);
    const later = next(c, "still-here");
    await server.publish("user:carol", "still-here", {});
    await later;
    c.close();
  });

  it("stops when a fixed token expires (4401) and when the server disconnects the user (4403)", async () => {
    const expiring = client({ user: "dave", token: token("dave", 2) });
    await expiring.connect();
    await reaches(expiring, "closed");
    const kicked = client({ user: "erin" });
    await kicked.connect();
    const answer = await server.api("DELETE", "/users/erin/connections");
    expect(answer.disconnected).toBe(1);
    await reaches(kicked, "closed");
    // No reconnect follows: the server lists no connection of erin's a moment later.
    await new Promise((done) => setTimeout(done, 1000));
    expect((await server.api("GET", "/users/erin/connections")).connections).toEqual([]);
  });
});
