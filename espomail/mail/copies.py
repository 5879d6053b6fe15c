"""Copies of one message: when a second copy may share the email already stored.

De-duplication (SPEC 3) keys emails by Message-ID, but a Message-ID is only a claim: anyone
who has seen one can put it on any message. A copy may therefore share a stored email only
when it carries the same content (docs/access.md, "De-duplication"): the same origin
headers (below) and the same body bytes. Trace headers that each receiving server adds
(Received, Delivered-To, Return-Path, Authentication-Results, X-Spam-*, ...) are left
out, so the same message delivered to two mailboxes is still one email.

A copy whose content differs is stored as a separate email under a *variant key*: its
Message-ID followed by ``#variant-`` and the first 32 hex digits of its content digest.
Normalised Message-IDs and fingerprints always end with ``>``, so a variant key never
equals a real one, and a third copy with the same content finds its variant again.
"""

from __future__ import annotations

import hashlib

# What the author wrote and the reader is shown; everything else in the header is trace.
ORIGIN_HEADERS = (
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
)
VARIANT = "#variant-"


def content_digest(raw: bytes) -> str:
    """SHA-256 of the origin headers (all occurrences, whitespace normalised) and the body
    (line ends normalised, trailing empty lines dropped)."""
    digest = hashlib.sha256()
    if not raw:
        return digest.hexdigest()
    from espomail.mail.parse import body_of, parse_headers  # here: listing emails needs base_key, not the parser

    headers = parse_headers(raw).headers
    for name in ORIGIN_HEADERS:
        for value in headers.get(name, ()):
            digest.update(f"{name}:{' '.join(value.split())}\n".encode("utf-8", "surrogatepass"))
    digest.update(b"\n")
    try:
        body = body_of(raw)
    except Exception:  # noqa: BLE001 - an unparseable message: its whole source is its content
        body = raw
    digest.update(body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").rstrip(b"\n"))
    return digest.hexdigest()


def variant_key(key: str, digest: str) -> str:
    """The key of a copy that has ``key``'s Message-ID but other content."""
    return f"{base_key(key)}{VARIANT}{digest[:32]}"


def base_key(key: str) -> str:
    """The Message-ID (or fingerprint) inside a key: the key itself unless it is a variant."""
    cut = key.rfind(VARIANT)
    return key[:cut] if cut > 0 and key[cut - 1] == ">" else key


def is_variant(key: str) -> bool:
    return base_key(key) != key
