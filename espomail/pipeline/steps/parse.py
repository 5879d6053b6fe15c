"""parse: decode headers, bodies and attachments (never raises; repairs are noted).

Parsing comes first: it is cheap, every later step needs the decoded values, and
nothing is written before the filters have decided.
"""

from __future__ import annotations

from espomail.mail.limits import ParseLimits
from espomail.mail.parse import parse_stored
from espomail.pipeline.context import Context

NAME = "parse"


def run(ctx: Context) -> None:
    truncated = bool(ctx.email["truncated"])
    if ctx.parsed is None:  # a fetch hands over what it parsed when it stored the message
        ctx.parsed = parse_stored(ctx.raw, truncated, ParseLimits.from_settings(ctx.settings))
    detail: dict = {"attachments": len(ctx.parsed.attachments)}
    if ctx.parsed.defects:
        detail["repaired"] = ctx.parsed.defects[:10]
    if truncated:
        detail["truncated"] = True
    ctx.decide(NAME, "parsed", detail)
