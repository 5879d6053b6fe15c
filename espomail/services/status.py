"""``espomail status``: what a monitoring script needs to know about each account."""

from __future__ import annotations

from espomail.model import DeliveryState
from espomail.policy.access import Actor
from espomail.services.accounts import visible_accounts
from espomail.services.oauth_accounts import authorization_problem
from espomail.store import accounts as accounts_q
from espomail.store import emails as emails_q
from espomail.store.db import Store


def account_status(store: Store, actor: Actor) -> list[dict]:
    result = []
    for account in visible_accounts(store, actor):
        authorization = authorization_problem(account) if account.is_active else None
        last = accounts_q.last_run(store, account.id)
        counts = emails_q.unfinished_counts(store, account.id)
        result.append(
            {
                "name": account.name,
                "kind": account.kind,
                "active": account.is_active,
                "last_success_at": account.last_success_at,
                "last_error": account.last_error or authorization,
                "auth": account.auth,
                "authorization_error": authorization,  # OAuth2: only 'espomail account authorize' helps
                "last_error_at": account.last_error_at,
                "last_run_at": last["finished_at"] if last else None,
                "last_run_new": last["new"] if last else 0,
                "backlog": last["backlog"] if last else 0,
                "failed_emails": counts.get(DeliveryState.FAILED, 0),
                "pending_emails": counts.get(DeliveryState.PENDING, 0),
            }
        )
    return result
