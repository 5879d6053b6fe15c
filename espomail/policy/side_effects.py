"""No side effects on old mail (SPEC 11).

Auto-replies (also for new cases) and notifications are only for mail that is recent when
espomail fetches or imports it. A message is old when its Date header **or** its arrival
time on the server (IMAP INTERNALDATE, when it was fetched) is older than
``side_effects_max_age_days``: either is enough, so an old archive moved into a mailbox
(fresh arrival, old Date) and old mail re-dated by a server (old arrival) both stay silent.
Old mail is still stored, linked and cased; ``email explain`` gives the reason.
"""

from __future__ import annotations

import datetime as dt

from espomail import timeutil


def too_old(
    date: dt.datetime | None, arrived: dt.datetime | None, max_age_days: int, now: dt.datetime | None = None
) -> str | None:
    """Why mail with this Date and arrival time gets no side effects, or None when it is recent."""
    now = now or timeutil.now()
    limit = now - dt.timedelta(days=max_age_days)
    for what, when in (("arrived on the server", arrived), ("is dated", date)):
        if when is not None and _aware(when) < limit:
            return (
                f"old mail: {what} {timeutil.iso(when)}, more than {max_age_days} day(s) ago "
                "(side_effects_max_age_days): stored, linked and cased without auto-reply or notification"
            )
    return None


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
