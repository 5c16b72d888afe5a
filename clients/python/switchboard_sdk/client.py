"""The sync and asyncio clients. Every method is defined once, in `_Methods`, and returns
`self._call(...)`: the sync client runs the request and returns its JSON, the async client
returns a coroutine of it."""

import asyncio
import time
import uuid
from typing import Any, Dict, Iterable, List, Optional
from urllib.parse import quote

import httpx

from .errors import SwitchboardError

# Most channels one publish may name (the server's limit).
_MAX_CHANNELS = 100
# Statuses worth retrying: the request may not have been handled.
_RETRY_STATUSES = {429, 502, 503, 504}


class _Methods:
    """What an app backend can ask of Switchboard (docs/API.md). `app` defaults to the client's."""

    app: str

    def _call(self, method: str, path: str, body: Any = None, *, retry_safe: bool = True, app: Optional[str] = None):
        raise NotImplementedError

    def _map(self, answer: Any, shape: Any):
        """`shape` applied to what `_call` returned (a coroutine of it, in the async client)."""
        raise NotImplementedError

    # Publishing: the seed apps' names, all one publish underneath.

    def publish(self, channels: Iterable[str], type: str, data: Any = None, *, idempotency_key: Optional[str] = None,
                app: Optional[str] = None):
        """One event to up to 100 channels. Retries reuse an idempotency key (one is made if
        you give none), so a retried publish is delivered once."""
        body = {"channels": list(channels), "type": type, "data": data,
                "idempotency_key": idempotency_key or f"sdk-{uuid.uuid4()}"}
        return self._call("POST", "/publish", body, app=app)

    def publish_batch(self, events: List[Dict[str, Any]], *, app: Optional[str] = None):
        """1 to 100 events (each `{channels, type, data?, idempotency_key?}`), published in order."""
        return self._call("POST", "/publish/batch", {"events": events}, retry_safe=False, app=app)

    def emit_to_user(self, user_id: str, event: str, data: Any = None):
        return self.publish([f"user:{user_id}"], event, data)

    def emit_to_account(self, account_id: str, event: str, data: Any = None):
        """To a group (an account, a family): every member's devices."""
        return self.publish([f"group:{account_id}"], event, data)

    def emit_to_room(self, room_id: str, event: str, data: Any = None):
        return self.publish([f"room:{room_id}"], event, data)

    def broadcast(self, event: str, data: Any = None):
        """To every connection of the app."""
        return self.publish(["broadcast"], event, data)

    def broadcast_to_app(self, app: str, message: Dict[str, Any], user_id: Optional[str] = None):
        """Seed 004's call: `message` is `{"type": ..., "data": ...}` (without `data`, its other
        fields are the data); to every connection of `app`, or only `user_id`'s."""
        data = message["data"] if "data" in message else {k: v for k, v in message.items() if k != "type"}
        channel = f"user:{user_id}" if user_id is not None else "broadcast"
        return self.publish([channel], message.get("type", "message"), data, app=app)

    def send_personal_message(self, message: Any, user_id: str):
        """Seed 000's call: `message` (text or JSON) as a `message` event to the user's devices."""
        return self.emit_to_user(user_id, "message", message)

    def broadcast_to_users(self, message: Any, user_ids: Iterable[str], event: str = "message"):
        """One event to several users' devices (one publish per 100 users); the answers, in order."""
        channels = [f"user:{u}" for u in user_ids]
        chunks = [channels[i:i + _MAX_CHANNELS] for i in range(0, len(channels), _MAX_CHANNELS)]
        return self._each([("POST", "/publish", {"channels": c, "type": event, "data": message,
                                                 "idempotency_key": f"sdk-{uuid.uuid4()}"}) for c in chunks])

    # The inbox (docs/INBOX.md).

    def create_notification(self, user: str, title: str, message: str, *, type: Optional[str] = None,
                            data: Any = None):
        """Stores it, then pushes `notification:new` and `notification:count` to the user."""
        body = {"user": user, "title": title, "message": message, "type": type, "data": data}
        return self._call("POST", "/notifications", _without_none(body), retry_safe=False)

    def create_alert(self, group: str, title: str, message: str, severity: str = "info", *,
                     type: Optional[str] = None, data: Any = None):
        """Stores it, then pushes `alert:new` and `alert:count` to the group."""
        body = {"group": group, "title": title, "message": message, "severity": severity, "type": type, "data": data}
        return self._call("POST", "/alerts", _without_none(body), retry_safe=False)

    def delete_alert(self, alert_id: str):
        return self._call("DELETE", f"/alerts/{_segment(alert_id)}")

    # Members, connections, history, presence.

    def add_member(self, channel: str, user: str):
        return self._call("PUT", f"/channels/{_segment(channel)}/members/{_segment(user)}")

    def remove_member(self, channel: str, user: str):
        return self._call("DELETE", f"/channels/{_segment(channel)}/members/{_segment(user)}")

    def members(self, channel: str):
        return self._call("GET", f"/channels/{_segment(channel)}/members")

    def connection_counts(self):
        return self._call("GET", "/connections")

    def connections(self, user: str):
        """The user's live connections on every node, and what each device acknowledged."""
        return self._call("GET", f"/users/{_segment(user)}/connections")

    def get_connections_by_user(self, user: str):
        """The app-engine manager's call: the user's live connections (on every node), each a
        dict with `connection_id`, `endpoint`, `connected_at` and the rest."""
        answer = self._call("GET", f"/users/{_segment(user)}/connections")
        return self._map(answer, lambda body: body["connections"])

    def send_to_connection(self, connection_id: str, message: Dict[str, Any], *, app: Optional[str] = None):
        """One event to one connection (a device from `get_connections_by_user`), on whichever
        node holds it: `message` is `{"type": ..., "data": ...}`. Raises SwitchboardError with
        status 404 when it is no longer connected. Never retried, so it arrives at most once."""
        body = {"type": message.get("type", "message"), "data": message.get("data")}
        path = f"/connections/{_segment(connection_id)}/events"
        return self._call("POST", path, body, retry_safe=False, app=app)

    def disconnect_user(self, user: str):
        """Closes every connection of the user (4403), e.g. after a password change."""
        return self._call("DELETE", f"/users/{_segment(user)}/connections")

    def history(self, channel: str, *, since: Optional[int] = None, epoch: Optional[str] = None,
                limit: Optional[int] = None):
        query = "&".join(f"{k}={quote(str(v))}" for k, v in (("since", since), ("epoch", epoch), ("limit", limit))
                         if v is not None)
        return self._call("GET", f"/channels/{_segment(channel)}/history" + (f"?{query}" if query else ""))

    def presence(self, users: Iterable[str]):
        return self._call("GET", "/presence?users=" + ",".join(quote(u, safe="") for u in users))


def _segment(value: str) -> str:
    return quote(value, safe=":")


def _without_none(body: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _answer(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json()
    try:
        error = response.json()["error"]
        code, message = error.get("code", "error"), error.get("message", response.text)
    except Exception:
        code, message = "error", response.text
    raise SwitchboardError(response.status_code, code, message)


class _Base(_Methods):
    def __init__(self, url: str, api_key: str, app: str, *, retries: int = 3, timeout: float = 10.0,
                 backoff: float = 0.2):
        self.url, self.app, self.retries, self.backoff = url.rstrip("/"), app, retries, backoff
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout

    def _path(self, path: str, app: Optional[str]) -> str:
        return f"{self.url}/api/v1/apps/{quote(app or self.app, safe='')}{path}"

    def _should_retry(self, attempt: int, retry_safe: bool, error: Optional[Exception], status: int) -> bool:
        if attempt >= self.retries:
            return False
        if isinstance(error, httpx.ConnectError):
            return True  # never sent: always safe
        return retry_safe and (error is not None or status in _RETRY_STATUSES)


class Switchboard(_Base):
    """The blocking client. Methods return the answer's JSON and raise `SwitchboardError`."""

    def __init__(self, url: str, api_key: str, app: str, **options: Any):
        super().__init__(url, api_key, app, **options)
        self._http = httpx.Client(headers=self._headers, timeout=self._timeout)

    def _call(self, method, path, body=None, *, retry_safe=True, app=None):
        for attempt in range(self.retries + 1):
            error, response = None, None
            try:
                response = self._http.request(method, self._path(path, app), json=body)
            except httpx.TransportError as e:
                error = e
            status = response.status_code if response is not None else 0
            if not self._should_retry(attempt, retry_safe, error, status):
                break
            time.sleep(self.backoff * 2 ** attempt)
        if response is None:
            raise SwitchboardError(0, "unreachable", f"{self.url}: {error}")
        return _answer(response)

    def _each(self, calls):
        return [self._call(method, path, body) for method, path, body in calls]

    def _map(self, answer, shape):
        return shape(answer)

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AsyncSwitchboard(_Base):
    """The asyncio client: the same methods, as coroutines."""

    def __init__(self, url: str, api_key: str, app: str, **options: Any):
        super().__init__(url, api_key, app, **options)
        self._http = httpx.AsyncClient(headers=self._headers, timeout=self._timeout)

    async def _call(self, method, path, body=None, *, retry_safe=True, app=None):
        for attempt in range(self.retries + 1):
            error, response = None, None
            try:
                response = await self._http.request(method, self._path(path, app), json=body)
            except httpx.TransportError as e:
                error = e
            status = response.status_code if response is not None else 0
            if not self._should_retry(attempt, retry_safe, error, status):
                break
            await asyncio.sleep(self.backoff * 2 ** attempt)
        if response is None:
            raise SwitchboardError(0, "unreachable", f"{self.url}: {error}")
        return _answer(response)

    async def _each(self, calls):
        return [await self._call(method, path, body) for method, path, body in calls]

    def _map(self, answer, shape):
        async def shaped():
            return shape(await answer)
        return shaped()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()
