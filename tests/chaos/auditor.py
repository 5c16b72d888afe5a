"""The auditor: from outside the nodes, from what the clients logged, what the publisher was
told and what history holds (read through the HTTP API), it proves for every client and each
of its channels that every event reached it exactly once and in order, or that the client was
told it could not be recovered; and that history holds every acknowledged event once.

A client's channels are its user channel, `group:hot` and one warm group, all with history.
What a client must receive on a channel: every event from the warm-up mark on, that history
holds or the API acknowledged (a user channel keeps 200 events, so some acknowledged events are
no longer in history: they must have been delivered or reported). socket.io clients see only
`data`, so their events are placed by the payload's uid, and the lane's own events are the ones
checked for them (notifications on user channels carry no uid).
"""

import json
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

import httpx

from cluster import API_KEY, GROUP_HISTORY, SLUG

INF = float("inf")


def read_log(path: Path) -> List[dict]:
    entries = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut short by SIGKILL
    return entries


def read_history(base: str, channel: str) -> dict:
    """Every event history keeps for `channel`, page by page (1,000 a page; bounded)."""
    events, since, answer = [], 0, {}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    for _ in range(1000):
        url = f"{base}/api/v1/apps/{SLUG}/channels/{channel}/history"
        answer = httpx.get(url, params={"since": since, "limit": 1000}, headers=headers, timeout=30).json()
        events += answer["events"]
        if not answer["events"] or events[-1]["seq"] >= answer["latest"]:
            break
        since = events[-1]["seq"]
    return {"events": events, "latest": answer.get("latest", 0), "complete": answer.get("complete")}


def uid_of(event: dict) -> Optional[str]:
    data = event.get("data")
    return data.get("uid") if isinstance(data, dict) else None


class ChannelTruth:
    """What one channel should hold: seq -> uid (None for events without one) from history and
    the publisher's acknowledgements, and the history check's findings."""

    def __init__(self, channel: str, history: dict, acked: Dict[str, dict], unacked: Dict[str, dict]):
        self.channel = channel
        self.seqs: Dict[int, Optional[str]] = {}
        self.findings = Counter()
        kept = history["events"]
        held = Counter(e["seq"] for e in kept)
        self.findings["history_duplicate_seq"] = sum(n - 1 for n in held.values())
        uids = Counter(uid_of(e) for e in kept if uid_of(e))
        self.findings["history_duplicate_uid"] = sum(n - 1 for n in uids.values())
        self.examples = [f"{channel}: uid {u} at seqs {[e['seq'] for e in kept if uid_of(e) == u]}"
                         for u, n in uids.items() if n > 1][:5]
        ordered = sorted(held)
        self.findings["history_holes"] = sum(b - a - 1 for a, b in zip(ordered, ordered[1:]))
        self.findings["history_epochs"] = len({e["epoch"] for e in kept} | {a["ep"] for a in acked.values()})
        self.first_kept = ordered[0] if ordered else history["latest"] + 1
        for event in kept:
            self.seqs[event["seq"]] = uid_of(event)
        for uid, ack in acked.items():
            if ack["seq"] >= self.first_kept and self.seqs.get(ack["seq"], "?") != uid:
                self.findings["acked_missing_from_history"] += 1
            elif ack["seq"] < self.first_kept:
                self.findings["acked_trimmed"] += 1
            self.seqs.setdefault(ack["seq"], uid)
        self.findings["unacked_stored"] = sum(1 for uid in unacked if uid in uids)
        if channel.startswith("group:") and len(kept) < GROUP_HISTORY:
            # Trimmed below its size: the store lost events it should keep. (At its size, the
            # oldest go as configured; clients that needed them are told they are unrecovered.)
            self.findings["group_history_trimmed"] = max(0, self.first_kept - 1) if kept else 0
        self.by_uid: Dict[str, List[int]] = {}
        for event in kept:
            if uid_of(event):
                self.by_uid.setdefault(uid_of(event), []).append(event["seq"])
        for uid, ack in acked.items():
            if ack["seq"] not in self.by_uid.setdefault(uid, []):
                self.by_uid[uid] = sorted(self.by_uid[uid] + [ack["seq"]])
        self.start = min(self.by_uid.get(f"warm:{channel}", [INF]))


class Delivery:
    """One client's view of one channel: what it received (seq and uid), in order, and the
    stretches it was told it could not recover."""

    def __init__(self):
        self.receipts: List[tuple] = []  # (seq, uid)
        self.connection_of: Dict[int, int] = {}  # seq -> which of the client's connections got it
        self.closed_4009: set = set()  # the client's connections that ended with 4009
        self.copies = Counter()  # uid -> receipts so far
        self.mismatched = 0
        self.unplaced = 0
        self.gaps: List[tuple] = []  # (after, up_to): seqs in after < s <= up_to were reported lost
        self.open_gap_after: Optional[float] = None
        self.examples: List[str] = []

    def last(self, start: float) -> float:
        return max((seq for seq, _ in self.receipts), default=start - 1)

    def receive(self, seq: int, uid: Optional[str], connection: int = 0) -> None:
        if self.open_gap_after is not None:
            self.gaps.append((self.open_gap_after, seq - 1))
            self.open_gap_after = None
        self.receipts.append((seq, uid))
        self.connection_of.setdefault(seq, connection)
        self.copies[uid] += 1

    def verdict(self, truth: ChannelTruth, expect_uid_only: bool) -> Counter:
        """Delivered, lost or reported unrecovered, per event; duplicates per publish (by its
        uid, so an event that history holds twice counts as received twice)."""
        figures = Counter()
        if self.open_gap_after is not None:
            self.gaps.append((self.open_gap_after, INF))
        by_seq = Counter(seq for seq, _ in self.receipts)
        by_uid = Counter(uid for _, uid in self.receipts if uid)
        for seq, uid in sorted(truth.seqs.items()):
            if seq < truth.start or (expect_uid_only and uid is None):
                continue
            if by_seq[seq]:
                figures["delivered"] += 1
            elif any(a < seq <= b for a, b in self.gaps):
                figures["unrecovered"] += 1
            else:
                figures["lost"] += 1
                # Lost behind a hole the client was carried past before a 4009 close: the
                # close came, but no later `resumed` could name the channel.
                later = [s for s in self.connection_of if s > seq]
                if later and self.connection_of[min(later)] in self.closed_4009:
                    figures["lost_past_4009"] += 1
                self.example(f"{truth.channel} seq {seq} ({uid}) lost")
        for uid, n in by_uid.items():
            figures["duplicated"] += n - 1
            if n > 1:
                self.example(f"{truth.channel} {uid} received {n} times (seqs {truth.by_uid.get(uid)})")
        figures["duplicated"] += sum(n - 1 for seq, n in by_seq.items() if truth.seqs.get(seq, "?") is None)
        # Of those, the ones where the same position came twice (the rest are one publish that
        # history holds at several positions). Only native clients see positions.
        if not expect_uid_only:
            figures["duplicated_same_seq"] = sum(n - 1 for n in by_seq.values())
        seqs = [seq for seq, _ in self.receipts]
        figures["out_of_order"] = sum(1 for a, b in zip(seqs, seqs[1:]) if b < a)
        # An unknown seq below what history still keeps may be a trimmed notification: not
        # checkable. Above it, every event is in history, so an unknown one was never published.
        figures["phantom"] = sum(1 for seq in by_seq if seq not in truth.seqs and seq >= truth.first_kept)
        figures["mismatched"] = self.mismatched
        figures["unplaced"] = self.unplaced
        return figures

    def example(self, text: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(text)


def native_deliveries(entries: List[dict], truths: Dict[str, ChannelTruth]) -> (Dict[str, Delivery], Counter):
    seen: Dict[str, Delivery] = {ch: Delivery() for ch in truths}
    notes = Counter()
    connection = 0
    for e in entries:
        if e["k"] == "connected":
            connection += 1
        elif e["k"] == "ev" and e["ch"] in seen:
            delivery, truth = seen[e["ch"]], truths[e["ch"]]
            if e["seq"] >= truth.start:
                known = truth.seqs.get(e["seq"], e.get("uid"))
                delivery.mismatched += int(known != e.get("uid"))
                delivery.receive(e["seq"], e.get("uid"), connection)
        elif e["k"] == "resumed":
            notes["resumes"] += 1
            for ch in e["unrecovered"]:
                if ch in seen:
                    notes["unrecovered_reports"] += 1
                    position = e["positions"].get(ch, {}).get("seq", INF)
                    seen[ch].gaps.append((seen[ch].last(truths[ch].start), position))
        elif e["k"] == "close":
            notes[f"close_{e.get('code')}"] += 1
            if e.get("code") == 4009:
                for delivery in seen.values():
                    delivery.closed_4009.add(connection)
    return seen, notes


def sio_deliveries(entries: List[dict], truths: Dict[str, ChannelTruth]) -> (Dict[str, Delivery], Counter):
    seen: Dict[str, Delivery] = {ch: Delivery() for ch in truths}
    notes = Counter()
    connects = 0
    for e in entries:
        if e["k"] == "ev" and e.get("ch") in seen:
            truth, delivery = truths[e["ch"]], seen[e["ch"]]
            # The n-th copy of a uid is placed at the n-th seq history holds it at (a publish
            # that history holds twice reaches the client twice).
            seqs = truth.by_uid.get(e["uid"], [])
            copy = delivery.copies[e["uid"]]
            if not seqs:
                delivery.unplaced += 1  # unacknowledged, and trimmed from history
            elif seqs[min(copy, len(seqs) - 1)] >= truth.start:
                delivery.receive(seqs[min(copy, len(seqs) - 1)], e["uid"])
        elif e["k"] == "connect":
            connects += 1
            notes["recovered" if e["recovered"] else "not_recovered"] += int(connects > 1)
            if connects > 1 and not e["recovered"]:
                # A new session: everything since the last event of each channel, up to the
                # first one that arrives now, was reported as not recoverable.
                notes["unrecovered_reports"] += 1
                for ch, delivery in seen.items():
                    if delivery.open_gap_after is None:
                        delivery.open_gap_after = delivery.last(truths[ch].start)
        elif e["k"] == "disconnect":
            notes[f"disconnect_{e.get('reason', '?').replace(' ', '_')}"] += 1
    return seen, notes


def presence_view(entries: List[dict], final: Dict[str, str]) -> Counter:
    """What a client's presence events say at the end, against `final` (user -> online|offline,
    what every node agrees on). Presence events are signals, never replayed: a client that was
    disconnected after a user's last event may have missed the next one. So only users whose
    last event came after the client's last disconnection are judged: one last seen offline but
    online (stale), or last seen online but gone (a ghost in the client's view)."""
    last_drop = max((e["t"] for e in entries if e["k"] in ("close", "disconnect")), default=0)
    last: Dict[str, dict] = {}
    for e in entries:
        if e["k"] == "presence" and e.get("user") in final:
            last[e["user"]] = e
    figures = Counter()
    for user, e in last.items():
        if e["t"] > last_drop:
            shown = "offline" if e["type"] == "presence:offline" else "online"
            figures["view_judged"] += 1
            if shown != final[user]:
                figures["view_ghosts" if shown == "online" else "view_stale_offline"] += 1
    return figures


def audit(base: str, clients: List[dict], acked: Dict[str, dict], unacked: Dict[str, dict],
          save: Optional[Path] = None, histories: Optional[dict] = None,
          presence_final: Optional[Dict[str, str]] = None) -> dict:
    """`clients`: {name, kind: native|sio, channels, log}. Returns the figures and per-client
    findings. What it read is saved to `save` (JSON), so `python auditor.py FILE` can audit the
    same run again offline."""
    channels = sorted({ch for c in clients for ch in c["channels"]})
    if histories is None:
        histories = {ch: read_history(base, ch) for ch in channels}
    if save is not None:
        save.write_text(json.dumps({"clients": clients, "acked": acked, "unacked": unacked, "histories": histories,
                                    "presence_final": presence_final}))
    truths = {}
    history_figures = Counter()
    for ch in channels:
        history = histories[ch]
        truths[ch] = ChannelTruth(ch, history, {u: a for u, a in acked.items() if a["ch"] == ch},
                                  {u: a for u, a in unacked.items() if a["ch"] == ch})
        history_figures.update(truths[ch].findings)
        history_figures["events"] += len(history["events"])
        history_figures["extra_epochs"] += max(0, truths[ch].findings["history_epochs"] - 1)
        history_figures["warmup_missing"] += int(truths[ch].start == INF)
    del history_figures["history_epochs"]
    examples = [x for t in truths.values() for x in t.examples]
    totals, notes, per_client = Counter(), Counter(), {}
    for client in clients:
        own = {ch: truths[ch] for ch in client["channels"]}
        reader = native_deliveries if client["kind"] == "native" else sio_deliveries
        entries = read_log(Path(client["log"]))
        seen, client_notes = reader(entries, own)
        notes.update(client_notes)
        notes.update(presence_view(entries, presence_final or {}))
        notes["presence_offline_seen"] += sum(1 for e in entries if e.get("type") == "presence:offline")
        figures = Counter()
        for ch, delivery in seen.items():
            figures.update(delivery.verdict(own[ch], expect_uid_only=client["kind"] == "sio"))
            examples += [f"{client['name']}: {x}" for x in delivery.examples]
        totals.update(figures)
        per_client[client["name"]] = dict(figures)
    return {"history": dict(history_figures), "delivery": dict(totals), "client_notes": dict(notes),
            "per_client": per_client, "examples": examples[:40]}


def failures(result: dict) -> List[str]:
    """The findings that fail the run."""
    problems = []
    for key in ("view_ghosts", "view_stale_offline"):
        if result["client_notes"].get(key, 0):
            problems.append(f"presence in the clients' view at the end: {key} {result['client_notes'][key]}")
    for key in ("lost", "duplicated", "out_of_order", "phantom", "mismatched"):
        if result["delivery"].get(key, 0):
            problems.append(f"{key}: {result['delivery'][key]}")
    for key in ("history_duplicate_seq", "history_duplicate_uid", "history_holes", "acked_missing_from_history",
                "extra_epochs", "warmup_missing", "group_history_trimmed"):
        if result["history"].get(key, 0):
            problems.append(f"history {key}: {result['history'][key]}")
    return problems


if __name__ == "__main__":
    import sys
    saved = json.loads(Path(sys.argv[1]).read_text())
    result = audit("", saved["clients"], saved["acked"], saved["unacked"], histories=saved["histories"],
                   presence_final=saved.get("presence_final"))
    print(json.dumps({k: result[k] for k in ("history", "delivery", "client_notes", "examples")}, indent=1))
    print("failures:", failures(result))
