"""Building outgoing messages (auto-replies, user mail) as RFC 5322 bytes.

Every header value goes through ``addresses.header_text`` first: a subject rendered from a
customer's subject, or a display name decoded from an encoded word, can hold CR, LF,
U+2028, U+0085, vertical tab or form feed; they become spaces, so the message is always
built and no header can be injected. Addresses go out with ASCII (A-label) domains; a
message to or from an address whose local part is not ASCII is built with raw UTF-8
headers (RFC 6532) and needs a server offering SMTPUTF8 (see smtp.send).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, formataddr

from espomail import timeutil
from espomail.mail.addresses import ascii_form, header_text, needs_smtputf8


def build(
    sender: tuple[str | None, str],
    to: Sequence[str],
    subject: str,
    body: str,
    message_id: str,
    cc: Sequence[str] = (),
    html: bool = False,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    headers: dict[str, str] | None = None,
    attachments: Sequence[tuple[str, bytes]] = (),
) -> bytes:
    """The message as bytes with CRLF line endings, ready for SMTP and IMAP APPEND."""
    name, address = header_text(sender[0]), wire_address(sender[1])
    to, cc = [wire_address(item) for item in to], [wire_address(item) for item in cc]
    reply_to = wire_address(reply_to) if reply_to else None
    international = any(needs_smtputf8(item) for item in [address, *to, *cc, reply_to or ""])
    msg = EmailMessage(policy=SMTPUTF8 if international else SMTP)
    msg["From"] = formataddr((name, address)) if name and not international else _named(name, address)
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = header_text(subject)
    msg["Date"] = format_datetime(timeutil.now())
    msg["Message-ID"] = header_text(message_id)
    if in_reply_to:
        msg["In-Reply-To"] = header_text(in_reply_to)
    if references:
        msg["References"] = " ".join(header_text(item) for item in references)
    for key, value in (headers or {}).items():
        msg[header_text(key)] = header_text(value)
    msg.set_content(body, subtype="html" if html else "plain")
    for filename, data in attachments:
        kind = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        maintype, _, subtype = kind.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=header_text(filename))
    return msg.as_bytes()


def wire_address(address: str) -> str:
    """An address as it goes into a header or the SMTP envelope: one line, ASCII domain."""
    return ascii_form(header_text(address))


def _named(name: str, address: str) -> str:
    """``Name <address>`` for raw UTF-8 headers (formataddr would encode the address)."""
    if not name:
        return address
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'
