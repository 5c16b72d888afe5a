"""Tokens for tests and development, and verification of handler-webhook signatures."""

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Iterable, Optional


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


def verify_signature(api_key: str, body: bytes, header: Optional[str]) -> bool:
    """Whether a handler call's `X-Switchboard-Signature` header signs `body` (the raw request
    bytes) with the app's first API key. Compare before parsing the body."""
    expected = "sha256=" + hmac.new(api_key.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header or "")
