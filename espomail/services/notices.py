"""Assignment notices for ``case update --assignee`` and ``email update --assignee``
(the rules: policy/assignment_notices.py; during a fetch: the assign-notice step).

``announce`` queues the notice inside the command's transaction and records why none was
queued on the log at DEBUG; ``send`` tries it once after the commit through the outbox,
which never raises for one email's sake (a failure is retried by later fetches, or with
``email resend``).
"""

from __future__ import annotations

import logging

from espomail.config import Settings
from espomail.model import MailAccount
from espomail.policy import assignment_notices
from espomail.policy.access import Actor
from espomail.policy.assignment_notices import Assigned, Assignment
from espomail.services import outbox
from espomail.store import people as people_q
from espomail.store.db import Store

log = logging.getLogger("espomail.notices")


def announce(
    store: Store,
    settings: Settings,
    actor: Actor,
    kind: Assigned,
    number: int,
    name: str,
    assignee_id: int,
    account: MailAccount | None = None,
    sender: str | None = None,
) -> int | None:
    """Queue the notice that ``actor`` assigned case/email ``number`` to ``assignee_id``."""
    assignment = Assignment(
        kind=kind,
        number=number,
        name=name or "(no subject)",
        assignee_id=assignee_id,
        by=_who(store, actor),
        actor_id=actor.user_id,
        sender=sender,
        account=account,
    )
    notice = assignment_notices.notify(store, assignment, settings.message_id_domain)
    log.debug("assignment notice for %s %s: %s", kind, number, notice.detail)
    return notice.email_id


def send(store: Store, settings: Settings, email_id: int | None) -> None:
    """One attempt at a queued notice, after the commit."""
    if email_id is not None:
        outbox.deliver(store, settings, [email_id])


def _who(store: Store, actor: Actor) -> str:
    if actor.user_id is None:
        return "the administrator"
    user = people_q.user_by_id(store, actor.user_id)
    return f"{user['name']} ({actor.username})" if user and user["name"] != actor.username else actor.username
