"""verify_signature against signatures made here with the standard library's HMAC, as
Switchboard makes them (docs/HANDLERS.md): no server needed."""

import hashlib
import hmac
import time

import pytest

from switchboard_sdk import verify_signature
from switchboard_sdk.security import DEFAULT_TOLERANCE

KEY = "sk_test"
BODY = b'{"app_slug":"my_app","message":{"type":"task:claim"}}'


def sign(timestamp, body=BODY, key=KEY):
    """The headers of a call signed at `timestamp`, computed independently of the SDK."""
    digest = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}", str(timestamp)


def test_a_fresh_call_verifies():
    signature, timestamp = sign(int(time.time()))
    assert verify_signature(KEY, BODY, signature, timestamp)
    assert verify_signature(KEY, BODY, signature, int(timestamp)), "the timestamp may be an int"


def test_a_known_vector_verifies():
    # The same vector as crates/handlers/src/sign.rs.
    signature = "sha256=49fef34f35c4c9a28c496c0a3501112be323f083291ca1e6f26749232c722009"
    assert verify_signature("sk_test", b'{"app_slug":"my_app"}', signature, "1767225600", now=1767225600)


def test_a_stale_or_future_call_is_refused_as_a_replay():
    now = 1_767_225_600
    assert DEFAULT_TOLERANCE == 300
    for age, fresh in [(0, True), (300, True), (301, False), (-300, True), (-301, False), (86_400, False)]:
        signature, timestamp = sign(now - age)
        assert verify_signature(KEY, BODY, signature, timestamp, now=now) is fresh, f"signed {age} s ago"
    signature, timestamp = sign(now - 3600)
    assert not verify_signature(KEY, BODY, signature, timestamp), "against this machine's clock by default"
    assert verify_signature(KEY, BODY, signature, timestamp, now=now, tolerance=3601), "a wider window"


def test_a_changed_body_timestamp_key_or_signature_is_refused():
    now = int(time.time())
    signature, timestamp = sign(now)
    assert not verify_signature(KEY, BODY + b" ", signature, timestamp)
    assert not verify_signature(KEY, BODY, signature, str(now - 1)), "a fresher timestamp on an old signature"
    assert not verify_signature("sk_other", BODY, signature, timestamp)
    assert not verify_signature(KEY, BODY, signature.upper(), timestamp)
    legacy = "sha256=" + hmac.new(KEY.encode(), BODY, hashlib.sha256).hexdigest()
    assert not verify_signature(KEY, BODY, legacy, timestamp), "a signature of the body alone"


def test_missing_or_malformed_headers_are_refused_not_raised():
    signature, timestamp = sign(int(time.time()))
    for bad_signature, bad_timestamp in [
        (None, timestamp),
        (signature, None),
        ("", timestamp),
        (signature, ""),
        (signature, f" {timestamp}"),
        (signature, "1e9"),
        (signature, "-5"),
        (signature, "１２３"),
        ("sha256=é", timestamp),
    ]:
        assert not verify_signature(KEY, BODY, bad_signature, bad_timestamp), (bad_signature, bad_timestamp)


def test_the_tolerance_must_be_positive():
    signature, timestamp = sign(int(time.time()))
    with pytest.raises(ValueError):
        verify_signature(KEY, BODY, signature, timestamp, tolerance=0)
