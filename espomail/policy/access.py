"""Every permission decision (SPEC 8) is made here: a table of actions and one check.

(This module was ``espomail/services/access.py``; it lives in ``espomail/policy/`` so that
the services and the import pipeline share the one table without importing each other.)

Services and pipeline steps describe what is at stake with a small *facts* object and call
``require(actor, ACTION, facts, what)``; commands never decide permissions. Levels are
``no < own < team < all``; several roles merge to the most permissive; nothing granted
means no; administrators (and the system administrator, who runs commands without
``--as``) pass every check. A denial raises PermissionDenied naming the missing
permission (exit 4) and is written to the log. The reasons behind each rule are in
docs/access.md.

| action          | facts          | rule                                                        |
|-----------------|----------------|-------------------------------------------------------------|
| admin           | -              | administrators only                                         |
| email.read      | EmailFacts     | read level: own = among its users; team = or a shared team  |
| email.edit      | EmailFacts     | edit level, the same reach as reading; and email.read       |
| email.delete    | EmailFacts     | delete level: own = its assigned user or its sender; and    |
|                 |                | email.read (one may change only what one may read)          |
| email.create    | -              | email create: yes                                           |
| email.resend    | EmailFacts     | email create: yes, and the user created (sent) the email    |
| account.manage  | AccountFacts   | group: admin; personal: its owner with personal accounts    |
| account.address | AddressFacts   | a personal account's address is one of its owner's (admin:  |
|                 |                | any; a group account's address is refused to everyone)      |
| account.send    | AccountFacts   | group send: all, or team with a shared team                 |
| secret.command  | SecretFacts    | administrators only: an option naming a command, a variable |
|                 |                | or a file that cron (the administrator) runs, reads or      |
|                 |                | writes later (--password-cmd/-env, --smtp-password-cmd/-env,|
|                 |                | --oauth-client-secret-cmd/-env, --oauth-token-file, hooks); |
|                 |                | users give secrets with --password-stdin (the keyring)      |
| filter.manage   | FilterFacts    | global/group account: admin; own inbox or own personal acct |
| user.self       | OwnerFacts     | oneself (folders, follows, notifications of a user)         |
| case.access     | CaseFacts      | its assignee, a case team, or email read level all          |
| record.create   | -              | admin, or email edit level all (a record's addresses decide |
|                 |                | the parent of every future email from or to them)           |
| record.follow   | FollowFacts    | oneself, and a record one may see (a case: case.access)     |
| email.list      | -              | read level other than no                                    |
| email.from      | SenderFacts    | one's own address or the system address (groups: send)      |

Composite checks made by the services: ``email link --parent case:N`` and ``email send
--parent case:N`` need case.access as well as email.edit / email.create; every email shown
inside another object (record and case streams, a case's email ids, notifications) is
shown only when email.read allows it (``services.emails.readable_ids``). A secret command
or variable runs only when an administrator set it (``may_run_secret_source``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import NamedTuple

from espomail.errors import PermissionDenied
from espomail.model import AccessLevel, AccountKind, FilterScope, Grant

log = logging.getLogger("espomail.access")

LEVELS = (AccessLevel.NO, AccessLevel.OWN, AccessLevel.TEAM, AccessLevel.ALL)
GROUP_SEND_LEVELS = (AccessLevel.NO, AccessLevel.TEAM, AccessLevel.ALL)
YES_NO = (Grant.NO, Grant.YES)


class Permissions(NamedTuple):
    email_create: str = Grant.NO
    email_read: str = AccessLevel.NO
    email_edit: str = AccessLevel.NO
    email_delete: str = AccessLevel.NO
    personal_accounts: str = Grant.NO
    group_send: str = AccessLevel.NO

    def as_dict(self) -> dict[str, str]:
        return dict(self._asdict())


ALL_PERMISSIONS = Permissions(Grant.YES, AccessLevel.ALL, AccessLevel.ALL, AccessLevel.ALL, Grant.YES, AccessLevel.ALL)
FIELD_LEVELS = {
    "email_create": YES_NO,
    "email_read": LEVELS,
    "email_edit": LEVELS,
    "email_delete": LEVELS,
    "personal_accounts": YES_NO,
    "group_send": GROUP_SEND_LEVELS,
}


def merge(roles: Iterable[dict[str, str]]) -> Permissions:
    """The most permissive value of each field over ``roles``; nothing granted = no."""
    best = {field: order[0] for field, order in FIELD_LEVELS.items()}
    for role in roles:
        for field, order in FIELD_LEVELS.items():
            value = role.get(field) or order[0]
            if order.index(value) > order.index(best[field]):
                best[field] = value
    return Permissions(**best)


class Actor(NamedTuple):
    """Who runs a command. ``user_id`` None is the system administrator (no ``--as``)."""

    user_id: int | None
    username: str
    is_admin: bool
    team_ids: frozenset[int] = frozenset()
    permissions: Permissions = ALL_PERMISSIONS

    @property
    def is_system(self) -> bool:
        return self.user_id is None


SYSTEM = Actor(user_id=None, username="(system administrator)", is_admin=True)


# -- facts: what the rules need to know about the target -------------------------------------


class EmailFacts(NamedTuple):
    user_ids: frozenset[int]
    team_ids: frozenset[int]
    assigned_user_id: int | None = None
    created_by_id: int | None = None


class AccountFacts(NamedTuple):
    kind: AccountKind
    owner_id: int | None
    team_ids: frozenset[int] = frozenset()


class FilterFacts(NamedTuple):
    scope: FilterScope
    account: AccountFacts | None = None
    user_id: int | None = None


class OwnerFacts(NamedTuple):
    user_id: int


class CaseFacts(NamedTuple):
    assigned_user_id: int | None
    team_ids: frozenset[int]


class AddressFacts(NamedTuple):
    owners: bool  # the address is one of the account owner's user addresses


class SecretFacts(NamedTuple):
    option: str  # the option naming a command, a variable or a file, e.g. "--password-cmd"


class FollowFacts(NamedTuple):
    user_id: int  # who would follow
    case: CaseFacts | None = None  # the case followed, if it is one


# -- the rules ------------------------------------------------------------------------------------


def level(actor: Actor, field: str) -> str:
    """The actor's level for a role field (the highest for administrators)."""
    if actor.is_admin:
        return FIELD_LEVELS[field][-1]
    return getattr(actor.permissions, field)


def _email_rule(
    field: str, delete: bool = False, readable: bool = False
) -> Callable[[Actor, EmailFacts], tuple[bool, str]]:
    def rule(actor: Actor, facts: EmailFacts) -> tuple[bool, str]:
        ok, missing = _reach(actor, facts, field, delete)
        if ok and readable:
            return _reach(actor, facts, "email_read")
        return ok, missing

    return rule


def _reach(actor: Actor, facts: EmailFacts, field: str, delete: bool = False) -> tuple[bool, str]:
    """Whether the actor's level of ``field`` reaches the email, and what is missing if not."""
    lvl = level(actor, field)
    missing = f"{field.replace('_', ' ')} (your level: {lvl})"
    if lvl == AccessLevel.ALL:
        return True, missing
    if lvl == AccessLevel.NO or actor.user_id is None:
        return False, missing
    if delete:
        owns = actor.user_id in (facts.assigned_user_id, facts.created_by_id)
    else:
        owns = actor.user_id in facts.user_ids
    if lvl == AccessLevel.OWN:
        return owns, missing
    return owns or bool(actor.team_ids & facts.team_ids), missing


def _email_list(actor: Actor, _facts: object) -> tuple[bool, str]:
    return level(actor, "email_read") != AccessLevel.NO, "email read (your level: no)"


class SenderFacts(NamedTuple):
    own_address: bool  # one of the user's addresses
    system_address: bool  # the system address


def _email_from(actor: Actor, facts: SenderFacts) -> tuple[bool, str]:
    ok = facts.own_address or facts.system_address
    return ok, "sending from this address (use one of yours, a shared group address or the system address)"


def _admin(actor: Actor, _facts: object) -> tuple[bool, str]:
    return actor.is_admin, "administrator"


def _email_create(actor: Actor, _facts: object) -> tuple[bool, str]:
    return level(actor, "email_create") == Grant.YES, "email create"


def _email_resend(actor: Actor, facts: EmailFacts) -> tuple[bool, str]:
    if level(actor, "email_create") != Grant.YES:
        return False, "email create"
    return facts.created_by_id == actor.user_id, "administrator (resending another user's email)"


def _account_manage(actor: Actor, facts: AccountFacts) -> tuple[bool, str]:
    if facts.kind == AccountKind.GROUP:
        return actor.is_admin, "administrator (group mail accounts)"
    if level(actor, "personal_accounts") != Grant.YES:
        return False, "personal email accounts"
    return facts.owner_id == actor.user_id, "administrator (another user's personal account)"


def _account_send(actor: Actor, facts: AccountFacts) -> tuple[bool, str]:
    lvl = level(actor, "group_send")
    missing = f"group send (your level: {lvl})"
    if lvl == AccessLevel.ALL:
        return True, missing
    return lvl == AccessLevel.TEAM and bool(actor.team_ids & facts.team_ids), missing


def _filter_manage(actor: Actor, facts: FilterFacts) -> tuple[bool, str]:
    if facts.scope == FilterScope.GLOBAL:
        return actor.is_admin, "administrator (global filters)"
    if facts.scope == FilterScope.ACCOUNT:
        if facts.account.kind == AccountKind.GROUP:
            return actor.is_admin, "administrator (group account filters)"
        return facts.account.owner_id == actor.user_id, "administrator (another user's account filters)"
    return facts.user_id == actor.user_id, "administrator (another user's filters)"


def _user_self(actor: Actor, facts: OwnerFacts) -> tuple[bool, str]:
    return facts.user_id == actor.user_id, "administrator (another user's data)"


def _case_access(actor: Actor, facts: CaseFacts) -> tuple[bool, str]:
    if level(actor, "email_read") == AccessLevel.ALL:
        return True, ""
    ok = facts.assigned_user_id == actor.user_id or bool(actor.team_ids & facts.team_ids)
    return ok, "case access (its assignee, a case team, or email read all)"


def _account_address(actor: Actor, facts: AddressFacts) -> tuple[bool, str]:
    return facts.owners, "administrator (an address that is not one of the account owner's user addresses)"


def _secret_command(actor: Actor, facts: SecretFacts) -> tuple[bool, str]:
    return actor.is_admin, (
        f"administrator ({facts.option}: a command, variable or file the administrator's fetch runs or reads; "
        "give a password with --password-stdin instead)"
    )


def _record_create(actor: Actor, _facts: object) -> tuple[bool, str]:
    lvl = level(actor, "email_edit")
    return lvl == AccessLevel.ALL, f"email edit all (your level: {lvl}): a record's addresses link future email"


def _record_follow(actor: Actor, facts: FollowFacts) -> tuple[bool, str]:
    if facts.user_id != actor.user_id:
        return False, "administrator (another user's follows)"
    if facts.case is not None:
        return _case_access(actor, facts.case)
    return True, ""


def may_run_secret_source(method: str, set_by: str | None, kind: AccountKind) -> bool:
    """Whether the administrator's process (cron fetch, sending) may run this secret command or
    read this variable: only when an administrator set it. A reference stored before espomail
    recorded who set it (``set_by`` None) runs on group accounts only, which only
    administrators could ever change. Keyring entries hold a secret, not a command: always."""
    if method not in ("cmd", "env"):
        return True
    return set_by == "admin" or (set_by is None and kind == AccountKind.GROUP)


RULES: dict[str, Callable[[Actor, object], tuple[bool, str]]] = {
    "admin": _admin,
    "email.read": _email_rule("email_read"),
    "email.edit": _email_rule("email_edit", readable=True),
    "email.delete": _email_rule("email_delete", delete=True, readable=True),
    "email.create": _email_create,
    "email.resend": _email_resend,
    "email.list": _email_list,
    "email.from": _email_from,
    "account.manage": _account_manage,
    "account.address": _account_address,
    "account.send": _account_send,
    "secret.command": _secret_command,
    "filter.manage": _filter_manage,
    "user.self": _user_self,
    "case.access": _case_access,
    "record.create": _record_create,
    "record.follow": _record_follow,
}


def allowed(actor: Actor, action: str, facts: object = None) -> bool:
    if actor.is_admin:
        return True
    return RULES[action](actor, facts)[0]


def require(actor: Actor, action: str, facts: object = None, what: str = "do this") -> None:
    """Raise PermissionDenied (exit 4) naming the missing permission, and log it."""
    if actor.is_admin:
        return
    ok, missing = RULES[action](actor, facts)
    if not ok:
        deny(actor, missing, what)


def case_scope(actor: Actor) -> str:
    """How far case lists reach: 'all', or 'mine' (assigned to the actor or a team of theirs)."""
    return "all" if actor.is_admin or level(actor, "email_read") == AccessLevel.ALL else "mine"


def read_scope(actor: Actor) -> str:
    """How far the actor's email lists reach: 'all', 'team', 'own' or 'no'."""
    return level(actor, "email_read")


def deny(actor: Actor, permission: str, what: str) -> None:
    log.warning("permission denied: user=%s permission=%r action=%r", actor.username, permission, what)
    if permission.startswith("administrator"):  # no role grants it: say so, not "ask for a role"
        hint = "only administrators may (user add/update --admin); no role grants it"
    else:
        hint = "ask an administrator to grant it in a role"
    raise PermissionDenied(f"{actor.username} may not {what}: missing permission '{permission}'; {hint}")
