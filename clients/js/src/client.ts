// The Switchboard client: one WebSocket to a Switchboard endpoint that survives drops. It
// reconnects with exponential backoff and jitter (not after terminal close codes), resumes
// every channel with history from the last position it saw (and says after each reconnect which
// channels were recovered and which were not), renews its token before expiry, and matches
// requests to replies by `ref`.

import type { Connected, EventData, EventFrame, Position, ResumeOutcome, Resumed } from "./events.js";
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
type AnyListener = (type: string, data: any, frame: EventFrame) => void;
type Pending = { resolve: (data: any) => void; reject: (error: SwitchboardError) => void; timer?: ReturnType<typeof setTimeout> };

/** Frames that answer a client frame, matched to it by `ref`. */
const ANSWERS = new Set(["reply", "error", "pong", "resumed"]);

export class Client {
  #options: Required<Pick<ClientOptions, "reconnectDelayMs" | "maxReconnectDelayMs" | "refreshBeforeMs" | "requestTimeoutMs">> &
    ClientOptions;
  #socket: WebSocketLike | null = null;
  #state: ConnectionState = "closed";
  #stateListeners = new Set<(state: ConnectionState) => void>();
  #listeners = new Map<string, Set<Listener>>();
  #anyListeners = new Set<AnyListener>();
  #pending = new Map<number, Pending>();
  #nextRef = 1;
  #attempt = 0;
  #token: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #positions: Record<string, Position> = {};
  #channels = new Set<string>();
  #stopped = false;
  #connectedBefore = false;
  /** The `connected` data of the current connection. */
  connection: Connected | null = null;
  /** The last `resumed` event: what the last reconnect recovered, and what not. */
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

  /**
   * Calls `listener(type, data, frame)` with every event, as Socket.IO's `onAny` calls
   * `(event, ...args)`; returns the unsubscribe function.
   */
  onAny(listener: (type: string, data: unknown, frame: EventFrame) => void): () => void {
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
    return new Promise<T>((resolve, reject) => this.#ask(type, data, this.#options.requestTimeoutMs, { resolve, reject }));
  }

  /** Sends a message without waiting for an answer; `false` when not connected. */
  send(type: string, data: unknown = {}): boolean {
    return this.#sendFrame({ type, data });
  }

  /** Subscribes, and again after every reconnect (resuming from the last position seen). */
  async subscribe(channel: string): Promise<unknown> {
    this.#channels.add(channel);
    const reply = await this.request("subscribe", this.#subscription(channel));
    // With `since`, the reply says where the channel stands after the replay.
    if (reply?.positions) this.#adopt(reply.positions);
    return reply;
  }

  /** Leaves the channel, and forgets its position so the next reconnect does not resume it. */
  async unsubscribe(channel: string): Promise<unknown> {
    this.#channels.delete(channel);
    delete this.#positions[channel];
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

  /**
   * Sends `type` with a fresh `ref` and calls `pending.resolve` (or `reject`) with its answer,
   * synchronously as the answer arrives; no timeout when `timeoutMs` is null. `early` sends on
   * an open socket before the state says `connected`.
   */
  #ask(type: string, data: unknown, timeoutMs: number | null, pending: Omit<Pending, "timer">, early = false): void {
    const ref = this.#nextRef++;
    const timer =
      timeoutMs === null
        ? undefined
        : setTimeout(() => {
            this.#pending.delete(ref);
            pending.reject(new SwitchboardError("timeout", `no reply to ${type} within ${timeoutMs} ms`));
          }, timeoutMs);
    this.#pending.set(ref, { ...pending, timer });
    if (!this.#sendFrame({ type, data, ref }, early)) {
      clearTimeout(timer);
      this.#pending.delete(ref);
      pending.reject(new SwitchboardError("not_connected", `cannot send ${type}: the client is ${this.#state}`));
    }
  }

  #sendFrame(frame: object, early = false): boolean {
    if ((this.#state !== "connected" && !early) || !this.#socket) return false;
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
    if (frame.ref !== undefined && ANSWERS.has(frame.type) && (frame.type !== "resumed" || this.#pending.has(frame.ref))) {
      return this.#answer(frame);
    }
    if (frame.type === "connected") return this.#onConnected(frame.data);
    // A `resumed` answering a `resume` the app sent itself.
    if (frame.type === "resumed") return this.#onResumed(frame.data);
    if (typeof frame.channel === "string" && typeof frame.seq === "number" && typeof frame.epoch === "string") {
      this.#positions[frame.channel] = { epoch: frame.epoch, seq: frame.seq };
    }
    this.#emit(frame);
  }

  #emit(frame: any): void {
    for (const listener of [...(this.#listeners.get(frame.type) ?? [])]) listener(frame.data, frame);
    for (const listener of [...this.#anyListeners]) listener(frame.type, frame.data, frame);
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
    const reconnected = this.#connectedBefore;
    this.#connectedBefore = true;
    const positions = { ...this.#positions };
    const resumed = Object.keys(positions);
    // `resume` goes first, before state listeners can send anything: with ?resume=1 the server
    // holds live events until it arrives, and any other first frame ends that wait. It also
    // subscribes the channels it names again.
    if (resumed.length > 0) {
      const answer = {
        resolve: (outcome: ResumeOutcome) => this.#onResumed(outcome),
        reject: (error: SwitchboardError) => this.#resumeRefused(error, resumed),
      };
      this.#ask("resume", { positions }, null, answer, true);
    }
    this.#setState("connected");
    for (const channel of this.#channels) {
      if (!(channel in positions)) this.request("subscribe", { channel }).catch(() => {});
    }
    // Nothing to resume: every channel of the connection is untracked.
    if (reconnected && resumed.length === 0) {
      this.#onResumed({ recovered: true, missed: 0, unrecovered: [], positions: {} });
    }
    this.#scheduleRefresh();
  }

  /** Emits the `resumed` event for `outcome`, naming which channels were recovered and which not. */
  #onResumed(outcome: ResumeOutcome): void {
    const positions = outcome.positions ?? {};
    const unrecovered = outcome.unrecovered ?? [];
    this.#adopt(positions);
    const covered = new Set([...Object.keys(positions), ...unrecovered]);
    const now = new Set([...(this.connection?.channels ?? []), ...this.#channels]);
    const resumed: Resumed = {
      ...outcome,
      recoveredChannels: Object.keys(positions).filter((channel) => !unrecovered.includes(channel)),
      untrackedChannels: [...now].filter((channel) => !covered.has(channel)).sort(),
    };
    this.lastResume = resumed;
    this.#emit({ type: "resumed", data: resumed });
  }

  /**
   * The server refused the `resume` (a channel the user may no longer join, or one that lost
   * its history): none of its channels were replayed. Their positions are forgotten, the app
   * is told to refetch them, and the subscribed ones are joined again from now on.
   */
  #resumeRefused(error: SwitchboardError, channels: string[]): void {
    if (error.code === "disconnected" || error.code === "not_connected") return; // the next connection resumes
    for (const channel of channels) delete this.#positions[channel];
    this.#onResumed({ recovered: false, missed: 0, unrecovered: channels, positions: {} });
    for (const channel of channels) {
      if (this.#channels.has(channel)) this.request("subscribe", { channel }).catch(() => {});
    }
  }

  /** Takes the server's word for where channels stand (a new epoch, or further on in this one). */
  #adopt(positions: Record<string, Position>): void {
    for (const [channel, position] of Object.entries(positions)) {
      const mine = this.#positions[channel];
      if (!mine || mine.epoch !== position.epoch || mine.seq < position.seq) this.#positions[channel] = position;
    }
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
