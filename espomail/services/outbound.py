"""The system sender (SPEC 7): the group account with SMTP whose address is the outbound address."""

from __future__ import annotations

from espomail import validate
from espomail.errors import InvalidInput
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.services.outbox import system_account
from espomail.store import settings as settings_q
from espomail.store.db import Store

KEYS = ("outbound_address", "outbound_name", "outbound_shared")


def show(store: Store, actor: Actor) -> dict:
    account = system_account(store)
    return {
        "address": settings_q.get(store, "outbound_address"),
        "name": settings_q.get(store, "outbound_name"),
        "shared": settings_q.get(store, "outbound_shared") == "1",
        "account": account.name if account else None,
    }


def set_outbound(store: Store, actor: Actor, address: str, name: str | None, shared: bool | None) -> dict:
    access.require(actor, "admin", None, "change the outbound settings")
    address = validate.email_address(address)
    with store.atomic():
        settings_q.put(store, "outbound_address", address)
        if name is not None:
            settings_q.put(store, "outbound_name", validate.display_name(name, "--name"))
        if shared is not None:
            settings_q.put(store, "outbound_shared", "1" if shared else "0")
        if system_account(store) is None:
            raise InvalidInput(
                f"no active group account with SMTP has the address {address}; add one first "
                "('espomail account add-group ... --smtp-host H'), then run this again"
            )
        return show(store, actor)
