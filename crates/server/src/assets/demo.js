// The demo page's script (/demo/page.js). It is a file of its own, not inline in the page, so
// that the page's Content-Security-Policy can allow scripts from this origin only.
"use strict";
const USERS = ["alice", "bob"];
const only = new URLSearchParams(location.search).get("user");
const shown = USERS.includes(only) ? [only] : USERS;

document.querySelectorAll("[data-action]").forEach((button) => {
  button.onclick = () => {
    const path = button.dataset.action === "alert" ? "/demo/alert" : `/demo/notify/${button.dataset.user}`;
    fetch(path, { method: "POST" });
  };
});

fetch("/demo/session").then((r) => r.json()).then((session) => {
  for (const user of shown) new Pane(user, session);
});

// One user's live view. Everything on it follows the server's events.
class Pane {
  constructor(user, session) {
    this.user = user;
    this.peer = USERS.find((u) => u !== user);
    this.token = session.tokens[user];
    this.conversation = session.conversationId;
    this.ref = 1;
    const root = document.getElementById("pane").content.firstElementChild.cloneNode(true);
    root.dataset.user = user;
    root.setAttribute("aria-label", user);
    root.querySelector(".who").textContent = user;
    root.querySelectorAll(".peer").forEach((el) => (el.textContent = this.peer));
    root.querySelector(".compose label").htmlFor = root.querySelector(".compose input").id = `text-${user}`;
    document.getElementById("panes").append(root);
    this.$ = (selector) => root.querySelector(selector);
    this.bind();
    this.load().then(() => this.connect());
  }

  bind() {
    this.$(".read-all").onclick = () => this.send("notification:read_all", {});
    const input = this.$(".compose input");
    let typingUntil = 0;
    input.oninput = () => {
      if (Date.now() > typingUntil) {
        typingUntil = Date.now() + 2000;
        this.send("chat:typing", { conversationId: this.conversation, isTyping: true });
      }
    };
    this.$(".compose").onsubmit = (e) => {
      e.preventDefault();
      const content = input.value.trim();
      if (!content) return;
      input.value = "";
      typingUntil = 0;
      this.send("chat:send", { conversationId: this.conversation, content, tempId: `t${Date.now()}` });
      this.send("chat:typing", { conversationId: this.conversation, isTyping: false });
    };
  }

  api(path) {
    return fetch(`/api/v1/apps/demo/me/${path}`, { headers: { authorization: `Bearer ${this.token}` } }).then((r) => r.json());
  }

  // What happened before this page opened, from the REST API: the inbox, the alerts not yet
  // acknowledged, the conversation, and how far each user has read it (after the messages, so
  // that no mark lands on a message this page has not listed).
  async load() {
    const [inbox, alerts, chat] = await Promise.all([
      this.api("notifications?limit=20"),
      this.api("alerts?unacknowledged_only=true&limit=20"),
      this.api(`conversations/${this.conversation}/messages?limit=50`),
    ]);
    inbox.notifications.reverse().forEach((n) => this.addNotification(n));
    this.showCount(inbox.unread);
    alerts.alerts.reverse().forEach((a) => this.showAlert(a));
    chat.messages.reverse().forEach((m) => this.addMessage(m));
    const { unread } = await fetch("/demo/receipts").then((r) => r.json());
    this.unreadOnLoad = unread[this.user];
    // The peer has not read their newest `unread[peer]` messages from this user: the one
    // before those is the last they saw.
    const mine = [...this.$(".messages").querySelectorAll("li.mine")];
    this.markSeen(mine[mine.length - 1 - unread[this.peer]]);
    this.loaded = true;
    this.showEmpty();
  }

  connect() {
    const url = new URL("/ws", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("token", this.token);
    this.ws = new WebSocket(url);
    this.ws.onclose = (e) => {
      // 4403: the server disconnected this user (the admin console, a password change): stay out.
      if (e.code === 4403) return (this.$(".conn").textContent = "disconnected by the server");
      this.$(".conn").textContent = `disconnected (${e.code}); retrying`;
      setTimeout(() => this.connect(), 1000);
    };
    this.ws.onmessage = (e) => this.on(JSON.parse(e.data));
  }

  send(type, data) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type, data, ref: this.ref++ }));
  }

  on({ type, data }) {
    const mine = data && data.conversationId === this.conversation;
    switch (type) {
      case "connected": return this.onConnected();
      case "notification:new": return this.addNotification(data);
      case "notification:deleted": return this.remove(".notifications", data.notification_id);
      case "notification:count": return this.showCount(data.unread);
      case "notification:read": return this.$(`[data-id="${data.notification_id}"]`)?.classList.add("read");
      case "notification:read_all": return this.$(".notifications").querySelectorAll("li").forEach((li) => li.classList.add("read"));
      case "alert:new": return this.showAlert(data);
      case "alert:acknowledged":
      case "alert:deleted": return this.remove(".alerts", data.alert_id);
      case "chat:message":
      case "chat:message:sent": return mine && this.addMessage(data);
      case "chat:message:read": return mine && data.readBy === this.peer && this.markSeen(this.lastMine());
      case "chat:typing:start": return mine && (this.$(".typing").textContent = `${data.userKey} is typing…`);
      case "chat:typing:stop": return mine && (this.$(".typing").textContent = "");
    }
    if (type.startsWith("presence:") && data.userKey === this.peer) {
      this.heardPresence = true;
      this.showPresence(data.status);
    }
  }

  // Subscribed now: the peer's presence read from here on cannot miss a change, which then
  // arrives as an event.
  async onConnected() {
    this.$(".conn").textContent = "connected";
    // What the peer sent while this page was closed is on screen now: read it.
    if (this.unreadOnLoad > 0) this.send("chat:read", { conversationId: this.conversation });
    this.unreadOnLoad = 0;
    this.heardPresence = false;
    const { presence } = await fetch("/demo/presence").then((r) => r.json());
    if (!this.heardPresence) this.showPresence(presence[this.peer]?.status ?? "offline");
  }

  addNotification(n) {
    const li = document.createElement("li");
    li.dataset.id = n.id;
    li.classList.toggle("read", Boolean(n.read));
    const text = document.createElement("span");
    text.textContent = `${n.title}: ${n.message}`;
    const read = document.createElement("button");
    read.textContent = "Read";
    read.setAttribute("aria-label", `Mark “${n.title}” read`);
    read.onclick = () => this.send("notification:read", { notification_id: n.id });
    li.append(text, read);
    this.$(".notifications").prepend(li);
    this.showEmpty();
  }

  remove(list, id) {
    this.$(list).querySelector(`[data-id="${id}"]`)?.remove();
    this.showEmpty();
  }

  // Each list says so when it is empty (once the first load is done).
  showEmpty() {
    if (!this.loaded) return;
    for (const list of ["alerts", "notifications", "messages"]) {
      this.$(`[data-empty="${list}"]`).hidden = this.$(`.${list}`).children.length > 0;
    }
  }

  showCount(unread) {
    const badge = this.$(".badge");
    badge.textContent = badge.dataset.count = String(unread);
    this.$(".read-all").disabled = unread === 0;
  }

  // Newest first, each until this user acknowledges it (on any of their devices).
  showAlert(alert) {
    if (this.$(`.alerts [data-id="${alert.id}"]`)) return;
    const li = document.createElement("li");
    li.className = "alert-banner";
    li.dataset.id = alert.id;
    li.dataset.severity = alert.severity;
    const text = document.createElement("span");
    const severity = document.createElement("span");
    severity.className = "severity";
    severity.textContent = alert.severity;
    const title = document.createElement("strong");
    title.textContent = alert.title;
    text.append(severity, title, ` ${alert.message}`);
    const ack = document.createElement("button");
    ack.textContent = "Acknowledge";
    ack.setAttribute("aria-label", `Acknowledge “${alert.title}”`);
    ack.onclick = () => this.send("alert:acknowledge", { alert_id: alert.id });
    li.append(text, ack);
    this.$(".alerts").prepend(li);
    this.showEmpty();
  }

  addMessage(m) {
    if (this.$(`.messages [data-id="${m.messageId}"]`)) return;
    const li = document.createElement("li");
    li.dataset.id = m.messageId;
    li.classList.toggle("mine", m.senderKey === this.user);
    li.textContent = m.content;
    const list = this.$(".messages");
    list.append(li);
    this.showEmpty();
    list.scrollTop = list.scrollHeight; // the list, not the page (which a phone would jump down)
    // The conversation is on screen, so what the peer sent is read.
    if (m.senderKey === this.peer) this.send("chat:read", { conversationId: this.conversation });
  }

  lastMine() {
    return [...this.$(".messages").querySelectorAll("li.mine")].pop();
  }

  // "Seen" goes on the newest of this user's messages the peer has read.
  markSeen(li) {
    this.$(".messages").querySelectorAll(".seen").forEach((el) => el.remove());
    if (!li) return;
    const seen = document.createElement("span");
    seen.className = "seen";
    seen.textContent = "Seen";
    li.append(seen);
  }

  showPresence(status) {
    this.$(".dot").dataset.status = status;
    this.$(".peer-status").textContent = status;
  }
}
