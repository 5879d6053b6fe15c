"""Message-IDs: normalising, fingerprints for mail without one, and the ids we generate.

Normal form (SPEC 3): ``<local@domain>`` with the domain lower-cased and the local part
kept as it is (RFC 5322 compares it case-sensitively).

Generated ids encode the parent record so that answers link back (SPEC 4.5a, 7):
``<espomail.TYPE-ID.TOKEN@DOMAIN>`` for an email with a parent (``case-12``,
``account-3``), ``<espomail.none.TOKEN@DOMAIN>`` without a parent and
``<espomail.system.TOKEN@DOMAIN>`` for system mail (auto-replies, notifications), which
the loop guard drops when it comes back.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

_ANGLE = re.compile(r"<([^<>]*)>")
PREFIX = "espomail."
RECORD_TYPES = ("account", "contact", "lead", "opportunity", "case")
_GENERATED = re.compile(
    r"^<espomail\.(?:(?P<type>account|contact|lead|opportunity|case)-(?P<id>\d{1,18})|(?P<kind>none|system))"
    r"\.[0-9a-z]+\.[0-9a-z]+@(?P<domain>[^>]+)>$"
)


def normalize(value: str | None) -> str | None:
    """The first id in a header value, as ``<local@domain>``; None when there is none."""
    if not value:
        return None
    text = " ".join(str(value).split())
    match = _ANGLE.search(text)
    core = match.group(1) if match else text.split()[0] if text.split() else ""
    core = core.strip().strip("<>").strip()
    if not core:
        return None
    local, at, domain = core.rpartition("@")
    if not at:
        return f"<{core}>"
    return f"<{local}@{domain.lower()}>"


def normalize_all(value: str | None, limit: int | None = None) -> list[str]:
    """Every id in a References-like header, normalised, in order, without repeats; linear
    in the value. With ``limit``, at most that many: the first (the thread's root) and the
    newest (the last ones), read from the end of the value (a window that grows only until
    it holds enough ids, up to 250,000 characters), so a header of a million ids costs no more
    than one of ten thousand."""
    if not value:
        return []
    text = str(value)
    if limit is None:
        return _normalized(_ids(text))
    window = 256 * limit
    while True:
        start = max(0, len(text) - window)
        newest = list(dict.fromkeys(_ids(text[start:], partial=start > 0)))
        if len(newest) >= limit or start == 0 or window >= _MAX_WINDOW:
            break  # (a last megabyte of repeats gives fewer ids: bounded work rather than all of them)
        window = min(4 * window, _MAX_WINDOW)
    if start == 0 and len(newest) <= limit:
        return _normalized(newest)
    root = _first_id(text)
    kept = [item for item in newest[-limit:] if item != root][-(limit - 1) :]
    return _normalized([root, *kept] if root else kept)


_TOKEN = re.compile(r"[^\s,]+")
_MAX_WINDOW = 250_000  # characters read from the end of a References value at most


def _ids(text: str, partial: bool = False):  # noqa: ANN202 - a generator of str
    """The raw ids of a header value (inside angle brackets, else words); ``partial``: the
    text starts inside the value, so a first bare word may be cut."""
    if "<" in text:
        return (found.group(1).strip("<>") for found in _ANGLE.finditer(text))
    words = (found.group() for found in _TOKEN.finditer(text))
    if partial:
        next(words, None)
    return (word.strip("<>") for word in words)


def _first_id(text: str) -> str | None:
    found = _ANGLE.search(text) if "<" in text else _TOKEN.search(text)
    return found.group(1 if "<" in text else 0).strip("<>") if found else None


def _normalized(ids) -> list[str]:  # noqa: ANN001 - an iterable of str
    return list(dict.fromkeys(norm for item in ids if (norm := normalize(f"<{item}>"))))


def fingerprint(date: str, from_: str, to: str, subject: str, body: bytes, extra: bytes = b"") -> str:
    """A stable key for a message without Message-ID: the same message fetched again, by
    any account, gets the same key; different messages get different keys. ``extra``
    (a digest of the other headers) is added when it is given."""
    digest = hashlib.sha256()
    for part in (date, from_, to, subject):
        digest.update(" ".join((part or "").split()).encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    digest.update(body.replace(b"\r\n", b"\n").rstrip(b"\n"))
    if extra:
        digest.update(b"\0headers\0" + extra)
    return f"<fp.{digest.hexdigest()[:40]}@espomail.fingerprint>"


def generate(domain: str, parent: tuple[str, int] | None = None, system: bool = False) -> str:
    token = f"{int(time.time()):x}.{secrets.token_hex(6)}"
    if system:
        middle = "system"
    elif parent:
        middle = f"{parent[0]}-{parent[1]}"
    else:
        middle = "none"
    return f"<{PREFIX}{middle}.{token}@{domain.lower()}>"


def parse_generated(message_id: str, domain: str) -> dict | None:
    """``{"type", "id"}`` or ``{"kind": "system"|"none"}`` when ``message_id`` is one of ours."""
    match = _GENERATED.match(message_id or "")
    if not match or match.group("domain").lower() != domain.lower():
        return None
    if match.group("type"):
        return {"type": match.group("type"), "id": int(match.group("id"))}
    return {"kind": match.group("kind")}


def is_system(message_id: str | None, domain: str) -> bool:
    found = parse_generated(message_id or "", domain)
    return bool(found and found.get("kind") == "system")
