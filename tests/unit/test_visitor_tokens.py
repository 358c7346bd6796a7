"""Signed anonymous visitor tokens: only tokens we issued, unexpired and untampered, pass."""

from __future__ import annotations

import base64
import logging

import pytest

from docsrag.chatkit.context import RequestContext
from docsrag.chatkit.visitor import InvalidVisitorToken, issue_token, verify_token

KEY = b"k" * 32
OLD_KEY = b"o" * 32
OTHER_KEY = b"x" * 32
NOW = 1_750_000_000
DAY = 86_400


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_an_issued_token_verifies_to_its_visitor() -> None:
    issued = issue_token(key=KEY, ttl_seconds=30 * DAY, now=NOW)

    assert verify_token(issued.token, key=KEY, now=NOW + 1) == issued.visitor_id
    assert issued.expires_at == NOW + 30 * DAY
    # The visitor id is 128 random bits, usable as a storage scope.
    assert len(issued.visitor_id) == 32
    assert RequestContext(visitor_id=issued.visitor_id).visitor_id == issued.visitor_id
    # Tokens are compact enough for a header or cookie.
    assert len(issued.token) < 100
    token, visitor_id, expires_at = issued  # a plain tuple too
    assert (token, visitor_id, expires_at) == tuple(issued)


def test_every_token_is_a_new_visitor() -> None:
    visitors = {issue_token(key=KEY, ttl_seconds=DAY, now=NOW).visitor_id for _ in range(500)}

    assert len(visitors) == 500


def test_renewing_a_token_keeps_the_visitor_and_their_threads() -> None:
    first = issue_token(key=KEY, ttl_seconds=DAY, now=NOW)
    visitor = verify_token(first.token, key=KEY, now=NOW + DAY - 10)

    renewed = issue_token(key=KEY, ttl_seconds=DAY, now=NOW + DAY - 10, visitor_id=visitor)

    assert renewed.visitor_id == first.visitor_id
    assert verify_token(renewed.token, key=KEY, now=NOW + DAY + 10) == first.visitor_id
    with pytest.raises(ValueError, match="visitor_id"):
        issue_token(key=KEY, ttl_seconds=DAY, visitor_id="alice")


def test_a_token_expires_at_its_expiry_time() -> None:
    issued = issue_token(key=KEY, ttl_seconds=DAY, now=NOW)

    assert verify_token(issued.token, key=KEY, now=NOW + DAY - 1) == issued.visitor_id
    with pytest.raises(InvalidVisitorToken) as caught:
        verify_token(issued.token, key=KEY, now=NOW + DAY)
    assert caught.value.reason == "expired"


def test_a_forged_signature_is_rejected() -> None:
    payload, _ = issue_token(key=KEY, ttl_seconds=DAY, now=NOW).token.split(".")
    forged = f"{payload}.{b64(bytes(32))}"

    with pytest.raises(InvalidVisitorToken) as caught:
        verify_token(forged, key=KEY, now=NOW)
    assert caught.value.reason == "signature"


def test_a_token_signed_with_another_key_is_rejected() -> None:
    issued = issue_token(key=OTHER_KEY, ttl_seconds=DAY, now=NOW)

    with pytest.raises(InvalidVisitorToken) as caught:
        verify_token(issued.token, key=KEY, now=NOW)
    assert caught.value.reason == "signature"


@pytest.mark.parametrize("field", ["visitor", "expiry"])
def test_a_tampered_payload_is_rejected(field: str) -> None:
    # GIVEN a valid token whose payload is edited: another visitor id, or a later expiry
    payload, signature = issue_token(key=KEY, ttl_seconds=DAY, now=NOW).token.split(".")
    raw = bytearray(unb64(payload))
    if field == "visitor":
        raw[1] ^= 0x01
    else:
        raw[-4] ^= 0x10
    tampered = f"{b64(bytes(raw))}.{signature}"

    # THEN the signature no longer matches, long before the edited fields are believed
    with pytest.raises(InvalidVisitorToken) as caught:
        verify_token(tampered, key=KEY, now=NOW)
    assert caught.value.reason == "signature"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "no-dot",
        "a.b.c",
        ".",
        "abc!.def",
        "abc.de f",
        "a" * 400,
        "Zm9v.YmFy",  # valid base64 of the wrong lengths
        "é.é",
    ],
)
def test_malformed_tokens_are_rejected(token: str) -> None:
    with pytest.raises(InvalidVisitorToken) as caught:
        verify_token(token, key=KEY, now=NOW)
    assert caught.value.reason == "malformed"


def test_non_canonical_base64_is_rejected() -> None:
    # 33 bytes encode to 44 characters with no spare bits, so change the 43-character signature:
    # its last character carries 2 unused bits, which a lax decoder would ignore.
    payload, signature = issue_token(key=KEY, ttl_seconds=DAY, now=NOW).token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    variant = signature[:-1] + alphabet[last ^ 0b01]

    assert unb64(variant) == unb64(signature)
    with pytest.raises(InvalidVisitorToken) as caught:
        verify_token(f"{payload}.{variant}", key=KEY, now=NOW)
    assert caught.value.reason == "malformed"


def test_keys_rotate_by_listing_the_new_key_first() -> None:
    # GIVEN a token issued before the rotation
    old = issue_token(key=OLD_KEY, ttl_seconds=DAY, now=NOW)
    rotated = [KEY, OLD_KEY]

    # WHEN the keys are rotated THEN old tokens still verify and new ones use the new key
    assert verify_token(old.token, key=rotated, now=NOW) == old.visitor_id
    new = issue_token(key=rotated, ttl_seconds=DAY, now=NOW)
    assert verify_token(new.token, key=KEY, now=NOW) == new.visitor_id
    # AND once the old key is retired, its tokens stop working
    with pytest.raises(InvalidVisitorToken):
        verify_token(old.token, key=[KEY], now=NOW)


@pytest.mark.parametrize("key", [b"short", [], [KEY, b"short"]])
def test_weak_or_missing_keys_are_refused(key: bytes | list[bytes]) -> None:
    with pytest.raises(ValueError, match="key"):
        issue_token(key=key, ttl_seconds=DAY, now=NOW)
    with pytest.raises(ValueError, match="key"):
        verify_token("a.b", key=key, now=NOW)


def test_rejections_never_log_the_token_or_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="docsrag")
    issued = issue_token(key=OTHER_KEY, ttl_seconds=DAY, now=NOW)

    for token in (issued.token, issued.token[:-2]):
        with pytest.raises(InvalidVisitorToken) as caught:
            verify_token(token, key=KEY, now=NOW)
        assert issued.token not in str(caught.value)

    logged = caplog.text
    assert caplog.records, "rejections are logged (at debug)"
    for secret in (issued.token, issued.token.split(".")[1], KEY.decode(), OTHER_KEY.decode()):
        assert secret not in logged
