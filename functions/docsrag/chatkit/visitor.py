"""Signed anonymous visitor tokens: who owns which ChatKit threads, without accounts.

A token is `<payload>.<signature>`, both unpadded base64url:

- payload: 33 bytes, `version (1) | visitor id (16 random bytes) | issued_at (8) | expires_at (8)`,
  integers big-endian epoch seconds;
- signature: HMAC-SHA256 over `docsrag.visitor.v1.` + the payload's base64 text.

The visitor id is the 128-bit random value as 32 hex characters. Verification checks the shape,
then the signature (constant-time, against every key given), then expiry; nothing in the payload
is trusted before the signature is. Keys rotate by passing several: tokens are signed with the
first and accepted under any. Neither tokens nor keys are ever logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import struct
import time
from collections.abc import Sequence
from typing import Final, Literal, NamedTuple, NoReturn

from docsrag.errors import DocsRagError

logger = logging.getLogger(__name__)

TOKEN_VERSION: Final = 1
MIN_KEY_BYTES: Final = 32
MAX_TOKEN_CHARS: Final = 256

_PAYLOAD: Final = struct.Struct(">B16sQQ")
_SIGNATURE_BYTES: Final = hashlib.sha256().digest_size
_MAC_PREFIX: Final = b"docsrag.visitor.v1."
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_VISITOR_HEX: Final = re.compile(r"[0-9a-f]{32}")

Reason = Literal["malformed", "signature", "expired"]
Keys = bytes | Sequence[bytes]


class InvalidVisitorToken(DocsRagError):
    """The visitor token is malformed, not signed by any of our keys, or expired."""

    def __init__(self, message: str, *, reason: Reason) -> None:
        super().__init__(message)
        self.reason: Reason = reason


class IssuedToken(NamedTuple):
    token: str
    visitor_id: str
    expires_at: int
    """Epoch seconds."""


def issue_token(
    *,
    key: Keys,
    ttl_seconds: int,
    now: float | None = None,
    visitor_id: str | None = None,
) -> IssuedToken:
    """A token valid for `ttl_seconds`, signed with the first key.

    For a new random visitor by default; pass the `visitor_id` of a verified token to renew it
    (sliding expiry), so the visitor keeps their threads.
    """
    if ttl_seconds < 1:
        raise ValueError("ttl_seconds must be at least 1")
    signing_key = _keys(key)[0]
    if visitor_id is None:
        visitor = secrets.token_bytes(16)
    elif _VISITOR_HEX.fullmatch(visitor_id):
        visitor = bytes.fromhex(visitor_id)
    else:
        raise ValueError("visitor_id must be a visitor id from verify_token (32 hex characters)")
    issued_at = int(time.time() if now is None else now)
    expires_at = issued_at + ttl_seconds
    payload = _encode(_PAYLOAD.pack(TOKEN_VERSION, visitor, issued_at, expires_at))
    signature = _encode(_sign(signing_key, payload))
    return IssuedToken(f"{payload}.{signature}", visitor.hex(), expires_at)


def verify_token(token: str, *, key: Keys, now: float | None = None) -> str:
    """The visitor id of a valid token; `InvalidVisitorToken` (with a `reason`) otherwise."""
    keys = _keys(key)
    payload_text, signature_text = _split(token)
    payload = _decode(payload_text, size=_PAYLOAD.size)
    signature = _decode(signature_text, size=_SIGNATURE_BYTES)
    if not any(hmac.compare_digest(_sign(k, payload_text), signature) for k in keys):
        _reject("signature does not match", reason="signature")
    version, visitor, issued_at, expires_at = _PAYLOAD.unpack(payload)
    if version != TOKEN_VERSION or issued_at > expires_at:
        _reject("unsupported token version or times", reason="malformed")
    if int(time.time() if now is None else now) >= expires_at:
        _reject("token expired", reason="expired")
    visitor_id: str = visitor.hex()
    return visitor_id


def _keys(key: Keys) -> tuple[bytes, ...]:
    keys = (key,) if isinstance(key, bytes) else tuple(key)
    if not keys:
        raise ValueError("at least one visitor token key is required")
    for candidate in keys:
        if not isinstance(candidate, bytes) or len(candidate) < MIN_KEY_BYTES:
            raise ValueError(f"visitor token keys must be bytes, at least {MIN_KEY_BYTES} long")
    return keys


def _sign(key: bytes, payload_text: str) -> bytes:
    return hmac.new(key, _MAC_PREFIX + payload_text.encode("ascii"), hashlib.sha256).digest()


def _split(token: str) -> tuple[str, str]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        _reject("not a token", reason="malformed")
    parts = token.split(".")
    if len(parts) != 2 or not all(_BASE64URL.fullmatch(part) for part in parts):
        _reject("not two base64url parts", reason="malformed")
    return parts[0], parts[1]


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str, *, size: int) -> bytes:
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        _reject("bad base64", reason="malformed")
    if len(data) != size or _encode(data) != text:
        _reject("wrong length or non-canonical base64", reason="malformed")
    return data


def _reject(detail: str, *, reason: Reason) -> NoReturn:
    logger.debug("visitor token rejected (%s): %s", reason, detail)
    raise InvalidVisitorToken(f"invalid visitor token: {detail}", reason=reason)
