"""Webhook signatures: HMAC-SHA256 over "<unix timestamp>.<raw body>" with the
subscription's secret, sent as `X-Faces-Signature: t=<timestamp>,v1=<hex digest>`.

Receivers recompute it from the raw body (before any JSON parsing) and reject old
timestamps, which stops replays. Pure Python, so a receiver can copy this file."""

import hashlib
import hmac
import time

HEADER = "X-Faces-Signature"
TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: float | None = None, tolerance: int = TOLERANCE_SECONDS) -> bool:
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(parts.get("v1", ""), signature(secret, timestamp, body))
