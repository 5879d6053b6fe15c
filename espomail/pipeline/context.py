"""What the import steps share while one delivery of one email is processed.

A *delivery* is one account (or one ``email import``) bringing one email. The first
delivery of an email imports it (``is_new``); later deliveries, from other accounts, only
add relations (SPEC 3: duplicates). Steps read and fill this context and record every
decision with ``ctx.decide()``; ``email explain`` prints those decisions later.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from espomail.config import Settings
from espomail.mail.parse import ParsedEmail
from espomail.model import DeliveryState, MailAccount, UserState
from espomail.pipeline.lookups import Lookups
from espomail.pipeline.writes import BatchWriter, Writes
from espomail.store.db import Row, Store


@dataclasses.dataclass
class Context:
    store: Store
    settings: Settings
    email: Row
    delivery: Row | None
    account: MailAccount | None
    raw: bytes
    is_new: bool
    lookups: Lookups
    batch: BatchWriter
    parsed: ParsedEmail | None = None
    stopped: DeliveryState | None = None  # DROPPED (loop guard) or FILTERED (account filter)
    parent: tuple[str, int] | None = None
    crm_account_id: int | None = None
    replied_id: int | None = None
    replied_parent: tuple[str, int] | None = None
    users: dict[int, UserState] = dataclasses.field(default_factory=dict)
    existing_users: set[int] = dataclasses.field(default_factory=set)
    teams: set[int] = dataclasses.field(default_factory=set)
    assigned_user_id: int | None = None
    group_folder_id: int | None = None
    case_id: int | None = None
    case_created: bool = False
    auto_reply_id: int | None = None
    events: list[tuple[str, str, str | None]] = dataclasses.field(default_factory=list)
    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    writes: Writes = dataclasses.field(default_factory=Writes)

    @property
    def email_id(self) -> int:
        return self.email["id"]

    def decide(self, step: str, decision: str, detail: Any = None) -> None:
        """Record what a step decided (and why) for ``email explain``."""
        self.events.append((step, decision, detail))

    def complete(self) -> ParsedEmail:
        """The full parse (bodies, every header), when ``parsed`` is only a summary."""
        if self.parsed is None or not self.parsed.complete:
            from espomail.mail.limits import ParseLimits
            from espomail.mail.parse import parse_stored
            from espomail.store import emails as emails_q

            raw = self.raw or emails_q.raw_of(self.store, self.email_id)
            limits = ParseLimits.from_settings(self.settings)
            self.parsed = parse_stored(raw, bool(self.email["truncated"]), limits)
        return self.parsed

    def stop(self, how: DeliveryState) -> None:
        self.stopped = how

    def add_user(self, user_id: int, reason: str, **state: Any) -> bool:
        """Add a user the email reaches; False when it reached them already."""
        if user_id in self.users or user_id in self.existing_users:
            return False
        self.users[user_id] = UserState(reason=reason, **state)
        return True

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def allows(self, side_effect: str) -> bool:
        """Whether this delivery may cause ``side_effect`` ('auto_reply' or 'case'):
        ``email import`` stores its deliveries without either unless asked."""
        return self.delivery is None or bool(self.delivery[f"allow_{side_effect}"])

    def old_mail(self) -> str | None:
        """Why this email is too old for auto-replies and notifications (SPEC 11), or None."""
        from espomail import timeutil
        from espomail.policy.side_effects import too_old

        date = self.parsed.date if self.parsed is not None else None
        if date is None and self.email["date_sent"]:
            date = timeutil.parse_iso(self.email["date_sent"])
        arrived = self.delivery["arrived_at"] if self.delivery is not None else None
        arrived_at = timeutil.parse_iso(arrived) if arrived else None
        return too_old(date, arrived_at, self.settings.side_effects_max_age_days)
