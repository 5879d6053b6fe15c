"""International addresses (EAI, RFC 6530-6532; IDNA) and safe header text.

Decision (SPEC 11, docs/hostile-input.md): an address is stored in its **Unicode form**
(NFC; a punycode ``xn--`` domain label decoded), so ``x@xn--esempio-universit-4ob.it`` and
``x@esempio-università.it`` are one address, matched lower-case like any other. On the
wire the domain goes out in its ASCII form (IDNA A-labels) whenever it can, so only an
address whose local part is not ASCII needs the server's SMTPUTF8.
"""

from __future__ import annotations

import re
import unicodedata

# Characters that end a header line somewhere: every C0/C1 control, DEL and the Unicode
# line and paragraph separators (str.splitlines() breaks at \x0b, \x0c, \x1c-\x1e, \x85,
# U+2028 and U+2029; the email package refuses a header holding any of them).
_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def header_text(value: object) -> str:
    """``value`` as one safe header line: control and line-separator characters become
    spaces (so nothing can start a new header), runs of them one space, the ends stripped."""
    return _UNSAFE_IN_HEADER.sub(" ", "" if value is None else str(value)).strip()


def unicode_form(address: str) -> str:
    """The stored form of an address: NFC, punycode domain labels decoded."""
    if address.isascii() and "xn--" not in address.lower():
        return address
    local, at, domain = unicodedata.normalize("NFC", address).rpartition("@")
    if not at:
        return unicodedata.normalize("NFC", address)
    return f"{local}@{'.'.join(_unicode_label(label) for label in domain.split('.'))}"


def _unicode_label(label: str) -> str:
    if not label.lower().startswith("xn--"):
        return label
    try:
        return label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return label


def ascii_form(address: str) -> str:
    """The address for the wire: its domain as A-labels (``xn--`` + punycode of the
    lower-case NFC label, as IDNA 2008 has it: ``faß.de`` stays distinct from ``fass.de``);
    the local part as it is (a non-ASCII one needs SMTPUTF8)."""
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    labels = [_ascii_label(label) for label in domain.split(".")]
    if any(label is None for label in labels):
        return address
    return f"{local}@{'.'.join(labels)}"


def _ascii_label(label: str) -> str | None:
    if label.isascii():
        return label
    try:
        encoded = "xn--" + unicodedata.normalize("NFC", label.lower()).encode("punycode").decode("ascii")
    except (UnicodeError, ValueError):
        return None
    return encoded if len(encoded) <= 63 else None


def needs_smtputf8(address: str) -> bool:
    """Whether sending to or from ``address`` needs the SMTPUTF8 extension."""
    return not ascii_form(address).isascii()


def matching_key(address: str) -> str:
    """What addresses are compared by: the Unicode form, lower-case."""
    return unicode_form(address).lower()
