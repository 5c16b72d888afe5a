// The Switchboard client: one WebSocket to a Switchboard endpoint that survives drops. It
// reconnects with exponential backoff and jitter (not after terminal close codes), resumes
// every channel with history from the last position it saw, renews its token before expiry,
// and matches requests to replies by `ref`.

import type { Connected, EventData, EventFrame, Position, Resumed } from "./events.js";
import { afterClose, backoff, untilExpiry } from "./retry.js";

/** The WebSocket class to use: the browser's, or `ws` in Node before 22. */
export interface WebSocketClass {
  new (url: string): WebSocketLike;
}

/** The part of the WebSocket API the client uses. */
export interface WebSocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export interface ClientOptions {
  /** The endpoint, e.g. `wss://rt.example.com/ws`. */
  url: string;
  /** A fixed token; without `getToken` the client stops when it is refused or expires. */
  token?: string;
  /** Called for every connection and again before the token expires (and after a 4401). */
  getToken?: () => string | Promise<string>;
  /** Names this device for acknowledgements (`?device=`). */
  device?: string;
  /** Defaults to `globalThis.WebSocket`. */
  WebSocket?: WebSocketClass;
  /** First reconnect pause (500 ms); it doubles up to `maxReconnectDelayMs` (30 s), with jitter. */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** How long before `exp` to renew the token (60 s, or half the token's life if shorter). */
  refreshBeforeMs?: number;
  /** How long a request waits for its reply (10 s). */
  requestTimeoutMs?: number;
}

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "closed";

/** A server refusal, as `request` rejects with it. */
export class SwitchboardError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly data: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "SwitchboardError";
  }
}

type Listener = (data: any, frame: EventFrame) => void;
type Pending = { resolve: (data: any) => void; reject: (error: Error) => void; timer: ReturnType<typeof setTimeout> };

export class Client {
  #options: Required<Pick<ClientOptions, "reconnectDelayMs" | "maxReconnectDelayMs" | "refreshBeforeMs" | "requestTimeoutMs">> &
    ClientOptions;
  #socket: WebSocketLike | null = null;
  #state: ConnectionState = "closed";
  #stateListeners = new Set<(state: ConnectionState) => void>();
  #listeners = new Map<string, Set<Listener>>();
  #anyListeners = new Set<Listener>();
  #pending = new Map<number, Pending>();
  #nextRef = 1;
  #attempt = 0;
  #token: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #positions: Record<string, Position> = {};
  #channels = new Set<string>();
  #stopped = false;
  /** The `connected` data of the current connection. */
  connection: Connected | null = null;
  /** What the last resume recovered. */
  lastResume: Resumed | null = null;

  constructor(options: ClientOptions) {
    this.#options = { reconnectDelayMs: 500, maxReconnectDelayMs: 30_000, refreshBeforeMs: 60_000, requestTimeoutMs: 10_000, ...options };
    this.#token = options.token;
  }

  /** The connection state now. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** Calls `listener` with every state change; returns the unsubscribe function. */
  onState(listener: (state: ConnectionState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /** Calls `listener` with each event of `type`; returns the unsubscribe function. */
  on<K extends string>(type: K, listener: (data: EventData<K>, frame: EventFrame<EventData<K>>) => void): () => void {
    const set = this.#listeners.get(type) ?? new Set();
    set.add(listener as Listener);
    this.#listeners.set(type, set);
    return () => set.delete(listener as Listener);
  }

  /** Calls `listener` with every event; returns the unsubscribe function. */
  onAny(listener: (data: unknown, frame: EventFrame) => void): () => void {
    this.#anyListeners.add(listener);
    return () => this.#anyListeners.delete(listener);
  }

  /** The newest position seen per channel with history. */
  get positions(): Record<string, Position> {
    return { ...this.#positions };
  }

  /** Opens the connection; resolves on the first `connected`, rejects if it stops first. */
  connect(): Promise<Connected> {
    this.#stopped = false;
    const ready = new Promise<Connected>((resolve, reject) => {
      const off = this.onState((state) => {
        if (state === "connected" && this.connection) {
          off();
          resolve(this.connection);
        } else if (state === "closed") {
          off();
          reject(new Error("the connection closed before it was established"));
        }
      });
    });
    void this.#open();
    return ready;
  }

  /** Closes for good (code 1000); no reconnect. */
  close(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#refreshTimer);
    this.#socket?.close(1000, "client closed");
    this.#setState("closed");
  }

  /** Sends a message and resolves with its `reply` (or `pong`); rejects with the `error`. */
  request<T = any>(type: string, data: unknown = {}): Promise<T> {
    const ref = this.#nextRef++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(ref);
        reject(new SwitchboardError("timeout", `no reply to ${type} within ${this.#options.requestTimeoutMs} ms`));
      }, this.#options.requestTimeoutMs);
      this.#pending.set(ref, { resolve, reject, timer });
      if (!this.#sendFrame({ type, data, ref })) {
        clearTimeout(timer);
        this.#pending.delete(ref);
        reject(new SwitchboardError("not_connected", `cannot send ${type}: the client is ${this.#state}`));
      }
    });
  }

  /** Sends a message without waiting for an answer; `false` when not connected. */
  send(type: string, data: unknown = {}): boolean {
    return this.#sendFrame({ type, data });
  }

  /** Subscribes, and again after every reconnect (resuming from the last position seen). */
  async subscribe(channel: string): Promise<unknown> {
    this.#channels.add(channel);
    return this.request("subscribe", this.#subscription(channel));
  }

  async unsubscribe(channel: string): Promise<unknown> {
    this.#channels.delete(channel);
    return this.request("unsubscribe", { channel });
  }

  /** Acknowledges the positions seen (all of them by default), so another session can resume from them. */
  ack(positions: Record<string, Position> = this.#positions): Promise<unknown> {
    return this.request("ack", { positions });
  }

  /** Sets this user's presence on every device: online, away or busy. */
  setPresence(status: "online" | "away" | "busy"): Promise<unknown> {
    return this.request("presence:set", { status });
  }

  /** Calls `listener` with every presence change of the users this connection hears of. */
  onPresence(listener: (change: EventData<"presence:online">) => void): () => void {
    const offs = (["presence:online", "presence:offline", "presence:away", "presence:busy"] as const).map((type) =>
      this.on(type, listener),
    );
    return () => offs.forEach((off) => off());
  }

  #subscription(channel: string): { channel: string; since?: Position } {
    const since = this.#positions[channel];
    return since ? { channel, since } : { channel };
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const listener of [...this.#stateListeners]) listener(state);
  }

  #sendFrame(frame: object): boolean {
    if (this.#state !== "connected" || !this.#socket) return false;
    this.#socket.send(JSON.stringify(frame));
    return true;
  }

  async #open(): Promise<void> {
    this.#setState(this.#attempt === 0 ? "connecting" : "reconnecting");
    try {
      if (this.#options.getToken) this.#token = await this.#options.getToken();
    } catch (error) {
      return this.#retry(`getToken failed: ${error}`);
    }
    if (this.#stopped) return;
    const Socket = this.#options.WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
    if (!Socket) throw new Error("no WebSocket class: pass `WebSocket` (for example from the `ws` package)");
    const socket = new Socket(this.#url());
    this.#socket = socket;
    socket.onmessage = (event) => this.#onFrame(String(event.data));
    socket.onclose = (event) => this.#onClose(socket, event.code);
    socket.onerror = () => {}; // a close always follows
  }

  #url(): string {
    const params = new URLSearchParams();
    if (this.#token) params.set("token", this.#token);
    if (this.#options.device) params.set("device", this.#options.device);
    // With positions to resume, live events wait for our `resume` frame (no gap, no repeat).
    if (Object.keys(this.#positions).length > 0) params.set("resume", "1");
    const query = params.toString();
    return query ? `${this.#options.url}${this.#options.url.includes("?") ? "&" : "?"}${query}` : this.#options.url;
  }

  #onFrame(text: string): void {
    let frame: any;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.ref !== undefined && (frame.type === "reply" || frame.type === "error" || frame.type === "pong")) {
      return this.#answer(frame);
    }
    if (frame.type === "connected") return this.#onConnected(frame.data);
    if (frame.type === "resumed") this.lastResume = frame.data;
    if (typeof frame.channel === "string" && typeof frame.seq === "number" && typeof frame.epoch === "string") {
      this.#positions[frame.channel] = { epoch: frame.epoch, seq: frame.seq };
    }
    for (const listener of [...(this.#listeners.get(frame.type) ?? [])]) listener(frame.data, frame);
    for (const listener of [...this.#anyListeners]) listener(frame.data, frame);
  }

  #answer(frame: any): void {
    const pending = this.#pending.get(frame.ref);
    if (!pending) return;
    this.#pending.delete(frame.ref);
    clearTimeout(pending.timer);
    if (frame.type === "error") {
      const { code = "error", message = "refused", ...rest } = frame.data ?? {};
      pending.reject(new SwitchboardError(code, message, rest));
    } else {
      pending.resolve(frame.data);
    }
  }

  #onConnected(data: Connected): void {
    this.connection = data;
    this.#attempt = 0;
    const positions = { ...this.#positions };
    this.#setState("connected");
    // `resume` goes first: with ?resume=1 the server holds live events until it arrives.
    if (Object.keys(positions).length > 0) this.send("resume", { positions });
    for (const channel of this.#channels) {
      this.request("subscribe", this.#subscription(channel)).catch(() => {});
    }
    this.#scheduleRefresh();
  }

  #scheduleRefresh(): void {
    clearTimeout(this.#refreshTimer);
    const left = this.#token ? untilExpiry(this.#token) : null;
    if (left === null || !this.#options.getToken) return;
    const lead = Math.min(this.#options.refreshBeforeMs, left / 2);
    this.#refreshTimer = setTimeout(() => void this.#refresh(), Math.max(0, left - lead));
  }

  async #refresh(): Promise<void> {
    try {
      const token = await this.#options.getToken!();
      await this.request("refresh", { token });
      this.#token = token;
      this.#scheduleRefresh();
    } catch {
      // The server closes with 4401 at expiry; the reconnect fetches a token again.
    }
  }

  #onClose(socket: WebSocketLike, code: number): void {
    if (socket !== this.#socket) return;
    this.#socket = null;
    this.connection = null;
    clearTimeout(this.#refreshTimer);
    for (const [ref, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(new SwitchboardError("disconnected", `the connection closed (${code}) before the reply`));
      this.#pending.delete(ref);
    }
    if (this.#stopped || afterClose(code, Boolean(this.#options.getToken)) === "stop") {
      this.#stopped = true;
      this.#setState("closed");
      return;
    }
    this.#retry(`closed with ${code}`);
  }

  #retry(_why: string): void {
    if (this.#stopped) return;
    const delay = backoff(this.#attempt++, this.#options.reconnectDelayMs, this.#options.maxReconnectDelayMs);
    this.#setState("reconnecting");
    this.#timer = setTimeout(() => void this.#open(), delay);
  }
}
