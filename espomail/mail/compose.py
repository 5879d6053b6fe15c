"""Building outgoing messages (auto-replies, user mail) as RFC 5322 bytes."""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

from espomail import timeutil


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
    msg = EmailMessage(policy=SMTP)
    name, address = sender
    msg["From"] = formataddr((name, address)) if name else address
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(timeutil.now())
    msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body, subtype="html" if html else "plain")
    for filename, data in attachments:
        kind = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        maintype, _, subtype = kind.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()
