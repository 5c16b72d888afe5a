"""Tokens for tests and development, and verification of handler-webhook signatures."""

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Iterable, Optional, Union


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def mint_token(
    secret: str,
    user: str,
    *,
    groups: Optional[Iterable[str]] = None,
    channels: Optional[Iterable[str]] = None,
    ttl: int = 3600,
    **claims: Any,
) -> str:
    """An HS256 JWT for `user` that an app with `auth_policy.jwt.secret` = `secret` accepts.

    For tests and development; in production your identity provider or backend mints tokens.
    `groups` become `group:` channels at connect; `channels` is the `claim` policy's list.
    """
    body = {"sub": user, "exp": int(time.time()) + ttl, **claims}
    if groups is not None:
        body["groups"] = list(groups)
    if channels is not None:
        body["channels"] = list(channels)
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(body).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


#: How far a call's `X-Switchboard-Timestamp` may be from this machine's clock, either way, in
#: seconds: an older call is refused as a possible replay (docs/HANDLERS.md).
DEFAULT_TOLERANCE = 300


def verify_signature(
    api_key: str,
    body: bytes,
    header: Optional[str],
    timestamp: Union[str, int, None],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Optional[float] = None,
) -> bool:
    """Whether a handler, connect-hook or subscribe-proxy call came from Switchboard, just now.

    `header` is the call's `X-Switchboard-Signature`, `timestamp` its `X-Switchboard-Timestamp`
    and `body` the raw request bytes (verify them before parsing). The signature must be the
    HMAC-SHA256 of `f"{timestamp}.".encode() + body` keyed with the app's first API key, and
    the timestamp within `tolerance` seconds of `now` (default: this machine's clock), so a
    captured call cannot be replayed later. Keep the clock in sync (NTP); to refuse replays
    within the window too, remember the signatures you accepted for `tolerance` seconds.
    """
    if tolerance <= 0:
        raise ValueError("tolerance must be a positive number of seconds")
    text = str(timestamp) if timestamp is not None else ""
    if not (text.isascii() and text.isdigit()):
        return False
    signed = text.encode() + b"." + body
    expected = "sha256=" + hmac.new(api_key.encode(), signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), (header or "").encode()):
        return False
    return abs((time.time() if now is None else now) - int(text)) <= tolerance
