// The React hooks against a live Switchboard, rendered with react-test-renderer.
import { createElement } from "react";
import { act, create, type ReactTestRenderer } from "react-test-renderer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";

import { Client } from "../src/index.js";
import { useChat, useConnectionState, usePresence, useRealtimeNotifications } from "../src/react.js";
import { Server, token } from "./server.js";

const server = new Server();
beforeAll(() => server.start());
afterAll(() => server.stop());

async function connected(user: string): Promise<Client> {
  const client = new Client({ url: server.url, token: token(user), WebSocket: WebSocket as any });
  await client.connect();
  return client;
}

/** Renders `hook` in a component; `current()` is its latest value. */
function render<T>(hook: () => T): { current: () => T; unmount: () => void } {
  let value: T | undefined;
  let renderer: ReactTestRenderer | undefined;
  function Probe() {
    value = hook();
    return null;
  }
  act(() => {
    renderer = create(createElement(Probe));
  });
  return { current: () => value as T, unmount: () => act(() => renderer!.unmount()) };
}

/** Waits (at most 10 s) until `check` holds for the hook's value. */
async function until<T>(hooked: { current: () => T }, check: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 10_000;
  while (!check(hooked.current())) {
    if (Date.now() > deadline) throw new Error(`condition never held: ${JSON.stringify(hooked.current())}`);
    await act(() => new Promise((done) => setTimeout(done, 20)));
  }
  return hooked.current();
}

describe("React hooks", () => {
  it("useRealtimeNotifications follows new notifications and the server's unread count", async () => {
    const client = await connected("nina");
    const hooked = render(() => useRealtimeNotifications(client));
    for (const title of ["first", "second"]) {
      await server.api("POST", "/notifications", { user: "nina", title, message: "hello" });
    }
    const state = await until(hooked, (s) => s.notifications.length === 2 && s.unreadCount === 2);
    expect(state.notifications.map((n) => n.title)).toEqual(["second", "first"]);
    await act(() => state.markRead(state.notifications[1].id));
    const after = await until(hooked, (s) => s.unreadCount === 1);
    expect(after.notifications.map((n) => n.read)).toEqual([false, true]);
    hooked.unmount();
    client.close();
  });

  it("useChat shows messages and typing; usePresence hears a partner go offline", async () => {
    const [olga, pete] = [await connected("olga"), await connected("pete")];
    const conversation = await server.api("POST", "/conversations", {
      type: "direct",
      participants: ["olga", "pete"],
      created_by: "olga",
    });
    const id: string = conversation.conversationId;
    const chat = render(() => ({ chat: useChat(pete, id), presence: usePresence(pete), state: useConnectionState(pete) }));
    expect(chat.current().state).toBe("connected");
    await olga.request("chat:send", { conversationId: id, content: "lunch today?", tempId: "t1" });
    const withMessage = await until(chat, (s) => s.chat.messages.length === 1);
    expect(withMessage.chat.messages[0]).toMatchObject({ senderKey: "olga", content: "lunch today?" });
    olga.send("chat:typing", { conversationId: id, isTyping: true });
    await until(chat, (s) => s.chat.typing.includes("olga"));
    const sent = await act(() => chat.current().chat.send("yes!"));
    expect(sent.content).toBe("yes!");
    await until(chat, (s) => s.chat.messages.length === 2);
    olga.close(); // her typing stops at once; after the 1 s grace she is offline
    const offline = await until(chat, (s) => s.presence.olga === "offline");
    expect(offline.chat.typing).toEqual([]);
    chat.unmount();
    pete.close();
  });
});
