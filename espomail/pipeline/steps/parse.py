"""parse: decode headers, bodies and attachments (never raises; repairs are noted).

Parsing comes first: it is cheap, every later step needs the decoded values, and
nothing is written before the filters have decided.
"""

from __future__ import annotations

from espomail.mail.parse import TRUNCATED_NOTE, parse_message
from espomail.pipeline.context import Context

NAME = "parse"


def run(ctx: Context) -> None:
    truncated = bool(ctx.email["truncated"])
    if ctx.parsed is None:  # a fetch hands over what it parsed when it stored the message
        ctx.parsed = parse_message(ctx.raw, headers_only=truncated, note=TRUNCATED_NOTE if truncated else None)
    detail: dict = {"attachments": len(ctx.parsed.attachments)}
    if ctx.parsed.defects:
        detail["repaired"] = ctx.parsed.defects[:10]
    if truncated:
        detail["truncated"] = True
    ctx.decide(NAME, "parsed", detail)
