// React hooks over a Client, shaped like seed 003's: state that follows the server's events,
// and the calls that change it. Import from "switchboard-client/react"; React is a peer
// dependency. Each hook takes the client (create one per signed-in user and keep it).

import { useCallback, useEffect, useState } from "react";

import type { Client, ConnectionState } from "./client.js";
import type { Alert, ChatMessage, Notification, PresenceChange } from "./events.js";

/** The connection state, re-rendering on each change. */
export function useConnectionState(client: Client): ConnectionState {
  const [state, setState] = useState(client.state);
  useEffect(() => {
    setState(client.state);
    return client.onState(setState);
  }, [client]);
  return state;
}

/** Listens to several events for the life of the component. */
function useEvents(client: Client, bind: (client: Client) => Array<() => void>): void {
  useEffect(() => {
    const offs = bind(client);
    return () => offs.forEach((off) => off());
    // `bind` only sets state, so the client alone decides when to bind again.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client]);
}

/** Notifications as they arrive (newest first), and the unread count the server keeps. */
export function useRealtimeNotifications(client: Client) {
  const [notifications, setNotifications] = useState<Notification[]>([]);
  const [unreadCount, setUnreadCount] = useState(0);
  useEvents(client, (c) => [
    c.on("notification:new", (n) => setNotifications((all) => [n, ...all])),
    c.on("notification:read", ({ notification_id }) =>
      setNotifications((all) => all.map((n) => (n.id === notification_id ? { ...n, read: true } : n))),
    ),
    c.on("notification:read_all", () => setNotifications((all) => all.map((n) => ({ ...n, read: true })))),
    c.on("notification:deleted", ({ notification_id }) =>
      setNotifications((all) => all.filter((n) => n.id !== notification_id)),
    ),
    c.on("notification:count", ({ unread }) => setUnreadCount(unread)),
  ]);
  const markRead = useCallback((id: string) => client.request("notification:read", { notification_id: id }), [client]);
  const markAllRead = useCallback(() => client.request("notification:read_all", {}), [client]);
  return { notifications, unreadCount, markRead, markAllRead };
}

/** Alerts of the user's groups as they arrive (newest first), and how many await acknowledgement. */
export function useRealtimeAlerts(client: Client) {
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const [unacknowledgedCount, setUnacknowledged] = useState(0);
  useEvents(client, (c) => [
    c.on("alert:new", (alert) => {
      setAlerts((all) => [alert, ...all]);
      setUnacknowledged((n) => n + 1);
    }),
    c.on("alert:acknowledged", ({ alert_id }) =>
      setAlerts((all) => all.map((a) => (a.id === alert_id ? { ...a, acknowledged: true } : a))),
    ),
    c.on("alert:deleted", ({ alert_id }) => setAlerts((all) => all.filter((a) => a.id !== alert_id))),
    // The server's count for this user, after each of their acknowledgements.
    c.on("alert:count", ({ unacknowledged }) => {
      if (typeof unacknowledged === "number") setUnacknowledged(unacknowledged);
    }),
  ]);
  const acknowledge = useCallback((id: string) => client.request("alert:acknowledge", { alert_id: id }), [client]);
  return { alerts, unacknowledgedCount, acknowledge };
}

/** One conversation: its messages as they arrive (oldest first), who is typing, and the calls. */
export function useChat(client: Client, conversationId: string) {
  const [messages, setMessages] = useState<ChatMessage[]>([]);
  const [typing, setTyping] = useState<string[]>([]);
  const here = (data: { conversationId: string }) => data.conversationId === conversationId;
  const upsert = (message: ChatMessage) =>
    setMessages((all) => {
      const at = all.findIndex((m) => m.messageId === message.messageId);
      return at < 0 ? [...all, message] : all.map((m, i) => (i === at ? message : m));
    });
  useEffect(() => {
    setMessages([]);
    setTyping([]);
    const offs = [
      client.on("chat:message", (m) => here(m) && upsert(m)),
      client.on("chat:message:sent", (m) => here(m) && upsert(m)),
      client.on("chat:message:edited", (e) =>
        here(e) && setMessages((all) => all.map((m) => (m.messageId === e.messageId ? { ...m, content: e.content, editedAt: e.editedAt } : m))),
      ),
      client.on("chat:message:deleted", (e) =>
        here(e) && setMessages((all) => all.map((m) => (m.messageId === e.messageId ? { ...m, content: "", deleted: true } : m))),
      ),
      client.on("chat:typing:start", (t) => here(t) && setTyping((all) => (all.includes(t.userKey) ? all : [...all, t.userKey]))),
      client.on("chat:typing:stop", (t) => here(t) && setTyping((all) => all.filter((u) => u !== t.userKey))),
    ];
    return () => offs.forEach((off) => off());
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, conversationId]);
  const send = useCallback(
    (content: string, extra: Record<string, unknown> = {}) =>
      client.request<ChatMessage>("chat:send", { conversationId, content, tempId: `t-${Date.now()}-${Math.random()}`, ...extra }),
    [client, conversationId],
  );
  const setIsTyping = useCallback((isTyping: boolean) => client.send("chat:typing", { conversationId, isTyping }), [client, conversationId]);
  const markRead = useCallback(() => client.request("chat:read", { conversationId }), [client, conversationId]);
  return { messages, typing, send, setTyping: setIsTyping, markRead };
}

/** The statuses this connection hears of (users sharing a group or a conversation), by user. */
export function usePresence(client: Client): Record<string, PresenceChange["status"]> {
  const [statuses, setStatuses] = useState<Record<string, PresenceChange["status"]>>({});
  useEvents(client, (c) => [c.onPresence((p) => setStatuses((all) => ({ ...all, [p.userKey]: p.status })))]);
  return statuses;
}
