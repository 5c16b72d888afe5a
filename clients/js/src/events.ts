// The frames Switchboard sends, and the data of the events the built-in features and the seed
// apps use. Any other event type works too; its data is `unknown` until you say otherwise.

/** A channel position: resume and ack use it. */
export interface Position {
  epoch: string;
  seq: number;
}

/** One event as it arrives. */
export interface EventFrame<T = unknown> {
  type: string;
  data: T;
  app_slug: string;
  channel: string;
  id: string;
  ts: number;
  epoch?: string;
  seq?: number;
}

/** The `connected` frame's data. */
export interface Connected {
  connection_id: string;
  user_id: string | null;
  channels: string[];
  [field: string]: unknown;
}

/** The `resumed` frame's data as the server sends it (and a `subscribe` reply's, with `since`). */
export interface ResumeOutcome {
  /** `true` when every channel the client resumed was replayed completely. */
  recovered: boolean;
  /** How many events were replayed, over all channels. */
  missed: number;
  /** The channels whose missed events could not be replayed: refetch their state. */
  unrecovered: string[];
  /** Where each resumed channel now stands. */
  positions: Record<string, Position>;
}

/**
 * The client's `resumed` event, once after every reconnect: the server's outcome, and which of
 * the connection's channels were recovered and which were not.
 */
export interface Resumed extends ResumeOutcome {
  /** The channels whose missed events were all replayed, in order: nothing to refetch. */
  recoveredChannels: string[];
  /**
   * The connection's channels the client held no position for: channels without history
   * (`broadcast`, and `room:` by default), or with history but no event seen yet. Nothing
   * published to them while the client was away was replayed; refetch what matters.
   */
  untrackedChannels: string[];
}

export interface Notification {
  id: string;
  notification_id: string;
  title: string;
  message: string;
  type?: string;
  data?: unknown;
  read: boolean;
  created_at: string;
  [field: string]: unknown;
}

export interface Alert {
  id: string;
  alert_id: string;
  group: string;
  title: string;
  message: string;
  severity: string;
  acknowledged?: boolean;
  created_at: string;
  [field: string]: unknown;
}

export interface ChatMessage {
  messageId: string;
  conversationId: string;
  senderKey: string;
  content: string;
  type: string;
  status: string;
  createdAt: string;
  tempId?: string | null;
  replyTo?: string | null;
  mentions?: string[];
  mediaUrl?: string | null;
  editedAt?: string | null;
  deleted?: boolean;
}

export interface PresenceChange {
  userKey: string;
  status: "online" | "away" | "busy" | "offline";
  timestamp: string;
  lastSeen: string | null;
}

/** Event types with known data: the built-in features', and the seed apps' own. */
export interface KnownEvents {
  // The client's own event after every reconnect (see `Resumed`); its frame is `{type, data}`.
  resumed: Resumed;
  // Second Brain (seeds 000-002).
  family_invitation: { invitation_id: string; family_id?: string; family_name: string; inviter_username: string };
  sbd_tokens_received: { from_username: string; amount: number; new_balance: number };
  sbd_tokens_sent: { to_username: string; amount: number; new_balance: number };
  // fin_server's data streams (seed 003).
  "stream:task_update": { task_id: string; status: string; updated_by: string; [field: string]: unknown };
  "stream:pond_update": { pond_id: string; field: string; value: unknown; timestamp?: string; [field: string]: unknown };
  "stream:expense_update": { expense_id: string; status: string; [field: string]: unknown };
  "stream:data": unknown;
  "chat:conversation:created": {
    conversationId: string;
    type: string;
    participants: string[];
    name?: string | null;
    createdBy: string;
    createdAt: string;
  };
  "notification:new": Notification;
  "notification:read": { notification_id: string; read_at: string };
  "notification:read_all": { read: number; read_at: string };
  "notification:deleted": { notification_id: string };
  "notification:count": { unread: number };
  "alert:new": Alert;
  "alert:acknowledged": { alert_id: string; user: string; acknowledged_at: string };
  "alert:deleted": { alert_id: string; group: string };
  "alert:count": { group?: string; total?: number; unacknowledged?: number };
  "chat:message": ChatMessage;
  "chat:message:sent": ChatMessage;
  "chat:message:edited": { messageId: string; conversationId: string; content: string; editedAt: string };
  "chat:message:deleted": { messageId: string; conversationId: string; deletedAt: string; forEveryone: boolean };
  "chat:message:read": { conversationId: string; messageId?: string; readBy: string; timestamp: string };
  "chat:typing:start": { conversationId: string; userKey: string; timestamp: string };
  "chat:typing:stop": { conversationId: string; userKey: string; timestamp: string };
  "chat:presence": PresenceChange;
  "chat:error": { code: string; message: string; tempId?: string };
  "presence:online": PresenceChange;
  "presence:offline": PresenceChange;
  "presence:away": PresenceChange;
  "presence:busy": PresenceChange;
}

/** The data of event `K`. */
export type EventData<K extends string> = K extends keyof KnownEvents ? KnownEvents[K] : unknown;
