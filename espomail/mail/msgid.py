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


def normalize_all(value: str | None) -> list[str]:
    """Every id in a References-like header, normalised, in order, without repeats."""
    if not value:
        return []
    found = _ANGLE.findall(" ".join(str(value).split()))
    if not found:
        found = str(value).replace(",", " ").split()
    result: list[str] = []
    for item in found:
        norm = normalize(f"<{item.strip('<>')}>")
        if norm and norm not in result:
            result.append(norm)
    return result


def fingerprint(date: str, from_: str, to: str, subject: str, body: bytes) -> str:
    """A stable key for a message without Message-ID: the same message fetched again, by
    any account, gets the same key; different messages get different keys."""
    digest = hashlib.sha256()
    for part in (date, from_, to, subject):
        digest.update(" ".join((part or "").split()).encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    digest.update(body.replace(b"\r\n", b"\n").rstrip(b"\n"))
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
