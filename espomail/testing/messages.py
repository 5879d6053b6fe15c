"""Builders of raw test messages (bytes), as a mail client would send them."""

from __future__ import annotations

import itertools
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from espomail import timeutil

_counter = itertools.count(1)


def build_message(
    from_: str = "customer@example.net",
    to: str | list[str] = "support@example.com",
    subject: str = "Help needed",
    body: str = "Hello,\nplease help.\n",
    message_id: str | None | bool = True,
    cc: str | list[str] | None = None,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    references: str | list[str] | None = None,
    date=None,
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
    headers: dict[str, str] | None = None,
) -> bytes:
    """A message; ``message_id=True`` makes a unique one, ``None``/``False`` omits it."""
    msg = EmailMessage()
    msg["From"] = from_
    msg["To"] = ", ".join(to) if isinstance(to, list) else to
    if cc:
        msg["Cc"] = ", ".join(cc) if isinstance(cc, list) else cc
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or timeutil.now())
    if message_id is True:
        msg["Message-ID"] = make_msgid(f"t{next(_counter)}", domain="mail.example.net")
    elif message_id:
        msg["Message-ID"] = message_id
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references) if isinstance(references, list) else references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()
