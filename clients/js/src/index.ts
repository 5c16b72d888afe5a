export { Client, SwitchboardError } from "./client.js";
export type { ClientOptions, ConnectionState, WebSocketClass, WebSocketLike } from "./client.js";
export type * from "./events.js";
export { afterClose, backoff, untilExpiry } from "./retry.js";
