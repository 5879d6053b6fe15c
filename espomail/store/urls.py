"""Where the store is: a SQLite file path or a PostgreSQL URL, and how to show it safely.

``--db``/``ESPOMAIL_DB``/``db_path`` take either. Anything shaped like a URL
(``scheme://...``, or ``postgres:``/``postgresql:``) is a URL and never a file name: a URL
espomail cannot use is an error, not a SQLite file named after it. ``shown()`` is the form
that may appear in output, logs and errors: never the password.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

POSTGRES_SCHEMES = ("postgresql", "postgres")
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):(//|(?=.))")
_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&\s]*")
SCRUBBED = "***"


def is_url(value: str) -> bool:
    """True for ``scheme://...`` and for ``postgres(ql):...``; False for file paths."""
    match = _URL.match(value.strip())
    if not match:
        return False
    return value.strip()[match.end("scheme") + 1 :].startswith("//") or match["scheme"].lower() in POSTGRES_SCHEMES


def is_postgres_url(value: str) -> bool:
    match = _URL.match(value.strip())
    return bool(match) and match["scheme"].lower() in POSTGRES_SCHEMES


def password_in(url: str) -> str | None:
    """The password written in a URL (user:PASSWORD@ or ?password=), if any."""
    try:
        parts = urlsplit(url)
        if parts.password:
            return unquote(parts.password)
    except ValueError:
        pass
    match = re.search(r"(?i)[?&]password=([^&\s]*)", url)
    return unquote(match.group(1)) if match and match.group(1) else None


def shown(url: str) -> str:
    """The URL without its password (user:PASSWORD@ and ?password=...)."""
    text = _CREDENTIALS.sub(r"\1@", url)
    return _QUERY_PASSWORD.sub(rf"\1{SCRUBBED}", text)


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with URL credentials and every given secret replaced by ***."""
    for secret in secrets:
        if secret and len(secret) >= 4:  # shorter ones would mangle every message
            text = text.replace(secret, SCRUBBED)
    text = _CREDENTIALS.sub(rf"\1:{SCRUBBED}@", text)
    return _QUERY_PASSWORD.sub(rf"\1{SCRUBBED}", text)
