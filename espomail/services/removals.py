"""Removing teams, users, roles, mail accounts, folders and filters safely (issue 17).

Every removal has two halves. ``plan_*`` checks who may remove the thing, that it exists and
what still uses it, and writes nothing: the CLI refuses a thing in use without ``--force``
and asks its question (``Removal.question``) on a terminal, or wants ``--yes`` elsewhere.
``remove_*`` plans again inside its transaction (a use added meanwhile is not missed),
refuses the same way, keeps every dependant consistent (an account whose target team goes
gets distribution none, not round-robin without a team), then deletes. It returns the
removed thing's JSON, with ``notes`` saying what changed around it.

What counts as a use, and what --force does with it: docs/cli.md, "Removals".
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from espomail.errors import InvalidInput
from espomail.model import AccountKind, Distribution, MailAccount
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.services import accounts, filters, folders, people
from espomail.store import accounts as accounts_q
from espomail.store import folders as folders_q
from espomail.store import people as people_q
from espomail.store import usage as q
from espomail.store.db import Row, Store

SHOWN_NAMES = 3  # names listed in a use before "and N more"


@dataclasses.dataclass(frozen=True)
class Removal:
    """What removing ``what`` would break: ``roles`` it plays for others ("the team of account
    'support'") and other ``facts`` ("3 users are members"); none of either: not in use."""

    what: str
    roles: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()

    @property
    def in_use(self) -> bool:
        return bool(self.roles or self.facts)

    def uses(self) -> str:
        """``team 'support' is the team of account 'support'; 3 users are members``."""
        clauses = list(self.facts)
        if self.roles:
            head = f"{self.what} is {_and(self.roles)}"
        else:
            head = f"{self.what} is in use: {clauses.pop(0)}"
        return "; ".join([head, *clauses])

    def refuse_unless(self, force: bool) -> None:
        """Refuse (exit 2, naming every use) a thing still in use, unless ``force``."""
        if self.in_use and not force:
            raise InvalidInput(f"{self.uses()}; use --force to remove it anyway")

    def question(self) -> str:
        """What a terminal is asked before the removal."""
        if not self.in_use:
            return f"Remove {self.what}?"
        return f"{self.uses()}. Remove it anyway?"


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _names(names: Sequence[str]) -> str:
    """``'a', 'b', 'c' and 2 more``."""
    quoted = [f"'{n}'" for n in names[:SHOWN_NAMES]]
    if len(names) > SHOWN_NAMES:
        quoted.append(f"{len(names) - SHOWN_NAMES} more")
    return _and(quoted)


def _count(number: int, one: str, many: str) -> str:
    return f"{number:,} {one if number == 1 else many}"


def _result(result: dict, notes: list[str]) -> dict:
    if notes:
        result["notes"] = notes
    return result


# -- teams ------------------------------------------------------------------------------------


def plan_team(store: Store, actor: Actor, name: str) -> Removal:
    return _team_removal(store, actor, name)[0]


def _team_removal(store: Store, actor: Actor, name: str) -> tuple[Removal, Row]:
    access.require(actor, "admin", None, "remove teams")
    team = people.get_team(store, name)
    return Removal(f"team '{team['name']}'", _team_roles(store, team["id"]), _team_facts(store, team["id"])), team


def _team_roles(store: Store, team_id: int) -> tuple[str, ...]:
    roles = _team_account_roles(q.accounts_with_team(store, team_id), q.accounts_targeting_team(store, team_id))
    folders_of_team = q.group_folders_of_team(store, team_id)
    if folders_of_team:
        kind = "group folder" if len(folders_of_team) == 1 else "group folders"
        roles.append(f"a team of {kind} {_names(folders_of_team)}")
    return tuple(roles)


def _team_facts(store: Store, team_id: int) -> tuple[str, ...]:
    facts = []
    members = len(people_q.team_members(store, team_id))
    if members:
        facts.append("1 user is a member" if members == 1 else f"{members:,} users are members")
    counts = (
        (q.emails_shared_with_team(store, team_id), "email", "emails"),
        (q.cases_shared_with_team(store, team_id), "case", "cases"),
    )
    shared = [(n, _count(n, one, many)) for n, one, many in counts if n]
    if shared:
        verb = "is" if len(shared) == 1 and shared[0][0] == 1 else "are"
        facts.append(f"{_and([text for _, text in shared])} {verb} shared with it")
    return tuple(facts)


def _team_account_roles(with_team: list[str], targeting: list[Row]) -> list[str]:
    targets = [r["name"] for r in targeting]
    names = sorted(set(with_team) | set(targets))
    if len(names) > SHOWN_NAMES:
        return [f"the team or target team of {len(names)} mail accounts ({_names(names)})"]
    roles = []
    for name in names:
        if name in with_team and name in targets:
            roles.append(f"the team of account '{name}' and the target team of its case distribution")
        elif name in with_team:
            roles.append(f"the team of account '{name}'")
        else:
            roles.append(f"the target team of the case distribution of account '{name}'")
    return roles


def remove_team(store: Store, actor: Actor, name: str, force: bool = False) -> dict:
    """Remove a team; forced, its accounts lose it (and a distribution that needs it becomes
    none), its members and group folders lose it, its emails and cases are no longer shared with it."""
    with store.atomic():
        removal, team = _team_removal(store, actor, name)
        removal.refuse_unless(force)
        result = people.team_dict(store, team)
        notes = [_target_team_note(row) for row in q.accounts_targeting_team(store, team["id"])]
        q.release_target_team(store, team["id"])
        people_q.delete_team(store, team["id"])
    return _result(result, notes)


def _target_team_note(account: Row) -> str:
    note = f"account '{account['name']}' has no target team now"
    if account["distribution"] in accounts.DISTRIBUTED:
        note += f": its distribution {account['distribution']} became none"
    return note


# -- users ------------------------------------------------------------------------------------


def plan_user(store: Store, actor: Actor, username: str) -> Removal:
    return _user_removal(store, actor, username)[0]


def _user_removal(store: Store, actor: Actor, username: str) -> tuple[Removal, Row]:
    access.require(actor, "admin", None, "remove users")
    user = people.get_user(store, username)
    owned = [a.name for a in accounts_q.accounts(store, owner_id=user["id"])]
    roles = []
    if owned:
        kind = "personal account" if len(owned) == 1 else "personal accounts"
        roles.append(f"the owner of {kind} {_names(owned)}")
    assigning = [r["name"] for r in q.accounts_assigning(store, user["id"])]
    if assigning:
        kind = "account" if len(assigning) == 1 else "accounts"
        roles.append(f"the assign-to user of {kind} {_names(assigning)}")
    facts = []
    cases = q.open_cases_of(store, user["id"])
    if cases:
        facts.append(f"{_count(cases, 'open case is', 'open cases are')} assigned to them")
    return Removal(f"user '{user['username']}'", tuple(roles), tuple(facts)), user


def remove_user(store: Store, actor: Actor, username: str, force: bool = False) -> dict:
    """Remove a user (their per-user email state, folders, filters and follows go with them);
    forced, their personal accounts go too (keyring entries included), accounts that assign to
    them stop (direct distribution becomes none) and their cases are unassigned (Assigned: New)."""
    with store.atomic():
        removal, user = _user_removal(store, actor, username)
        removal.refuse_unless(force)
        result = people.user_dict(store, user)
        owned = accounts_q.accounts(store, owner_id=user["id"])
        notes = [f"personal account '{a.name}' was removed with the user" for a in owned]
        for row in q.accounts_assigning(store, user["id"]):
            became = ": its distribution direct became none" if row["distribution"] == Distribution.DIRECT else ""
            notes.append(f"account '{row['name']}' has no assign-to user now{became}")
        q.release_assign_user(store, user["id"])
        unassigned = q.unassign_cases(store, user["id"])
        if unassigned:
            notes.append(f"{_count(unassigned, 'case is', 'cases are')} unassigned now (Assigned ones are New again)")
        for account in owned:
            accounts_q.delete_account(store, account.id)
        people_q.delete_user(store, user["id"])
    for account in owned:
        notes += accounts.forget_secrets(account)
    return _result(result, notes)


# -- roles ------------------------------------------------------------------------------------


def plan_role(store: Store, actor: Actor, name: str) -> Removal:
    return _role_removal(store, actor, name)[0]


def _role_removal(store: Store, actor: Actor, name: str) -> tuple[Removal, Row]:
    access.require(actor, "admin", None, "remove roles")
    role = people.get_role(store, name)
    holders = people_q.role_users(store, role["id"])
    roles = (f"the role of {_count(len(holders), 'user', 'users')} ({_names(holders)})",) if holders else ()
    return Removal(f"role '{role['name']}'", roles), role


def remove_role(store: Store, actor: Actor, name: str, force: bool = False) -> dict:
    """Remove a role; forced, its users lose what it granted."""
    with store.atomic():
        removal, role = _role_removal(store, actor, name)
        removal.refuse_unless(force)
        result = people.role_dict(store, role)
        people_q.delete_role(store, role["id"])
    return result


# -- mail accounts ----------------------------------------------------------------------------


def plan_account(store: Store, actor: Actor, name: str) -> Removal:
    return _account_removal(store, actor, name)[0]


def _account_removal(store: Store, actor: Actor, name: str) -> tuple[Removal, MailAccount]:
    account = accounts.get_account(store, name)
    accounts.require_manage(store, actor, account, account.kind, account.owner_id)
    roles = ("the system's outbound sender ('espomail outbound show')",) if accounts.is_system(store, account) else ()
    facts = []
    own_filters = q.filters_of_account(store, account.id)
    if own_filters:
        facts.append(
            f"{_count(len(own_filters), 'filter', 'filters')} of its own ({_names(own_filters)}) would go with it"
        )
    cases = q.open_cases_through(store, account.id)
    if cases:
        facts.append(f"{_count(cases, 'open case', 'open cases')} came in through it (replies use its Reply-To)")
    return Removal(f"account '{account.name}'", roles, tuple(facts)), account


def remove_account(store: Store, actor: Actor, name: str, force: bool = False) -> dict:
    """Remove a mail account (its emails stay) and its keyring entries; forced, its filters go
    with it and its cases keep no inbound account."""
    with store.atomic():
        removal, account = _account_removal(store, actor, name)
        removal.refuse_unless(force)
        result = accounts.account_dict(store, account)
        was_system = result["is_system"]
        accounts_q.delete_account(store, account.id)
        notes = []
        if was_system and accounts_q.system_account(store, account.address) is None:
            notes.append("system mail has no sender now; name one with 'espomail outbound set --address ADDR'")
    return _result(result, notes + accounts.forget_secrets(account))


# -- folders ----------------------------------------------------------------------------------


def plan_folder(store: Store, actor: Actor, name: str, user: str | None, group: bool) -> Removal:
    return _folder_removal(store, actor, name, user, group)[0]


def _folder_removal(store: Store, actor: Actor, name: str, user: str | None, group: bool) -> tuple[Removal, Row, int]:
    """The removal, the folder and how many emails are in it."""
    if bool(user) == bool(group):
        raise InvalidInput("give either --user U (a personal folder of U) or --group (a group folder)")
    if group:
        access.require(actor, "admin", None, "remove group folders")
        folder = folders.resolve_group(store, name)
        emails = q.emails_in_group_folder(store, folder["id"])
    else:
        owner = people.get_user(store, user)
        access.require(actor, "user.self", access.OwnerFacts(owner["id"]), f"remove folders of user '{user}'")
        folder = folders.resolve_personal(store, owner["id"], name)
        emails = q.emails_in_personal_folder(store, owner["id"], folder["id"])
    roles = [
        f"the {'group' if row['group_folder_id'] == folder['id'] else 'personal'} folder of account '{row['name']}'"
        for row in q.accounts_filing_into(store, folder["id"])
    ]
    roles += [
        f"where account '{account.name}' files IMAP folder '{imap}'" for account, imap in _mapped_into(store, folder)
    ]
    facts = []
    moving = q.filters_into_folder(store, folder["id"])
    if moving:
        verb = "moves" if len(moving) == 1 else "move"
        facts.append(f"{'filter' if len(moving) == 1 else 'filters'} {_names(moving)} {verb} mail to it")
    if emails:
        facts.append(f"{_count(emails, 'email is', 'emails are')} in it")
    what = f"group folder '{folder['name']}'" if group else f"folder '{folder['name']}' of user '{user}'"
    return Removal(what, tuple(roles), tuple(facts)), folder, emails


def _mapped_into(store: Store, folder: Row) -> list[tuple[MailAccount, str]]:
    """(account, IMAP folder) of the folder-map entries that file into a personal folder."""
    if folder["owner_id"] is None:
        return []
    return [
        (account, imap)
        for account in accounts_q.accounts(store, owner_id=folder["owner_id"])
        if account.kind == AccountKind.PERSONAL
        for imap, folder_id in account.folder_map.items()
        if folder_id == folder["id"]
    ]


def remove_folder(store: Store, actor: Actor, name: str, user: str | None, group: bool, force: bool = False) -> dict:
    """Remove a folder; forced, accounts stop filing into it (their inbox instead), the filters
    that move mail to it go, and its emails are back in the inbox."""
    with store.atomic():
        removal, folder, emails = _folder_removal(store, actor, name, user, group)
        removal.refuse_unless(force)
        result = folders.folder_dict(store, folder)
        notes = [f"filter '{f}' was removed with it" for f in q.filters_into_folder(store, folder["id"])]
        for account, imap in _mapped_into(store, folder):
            kept = {k: v for k, v in account.folder_map.items() if k != imap}
            q.set_folder_map(store, account.id, json.dumps(kept, ensure_ascii=False))
            notes.append(f"account '{account.name}' files IMAP folder '{imap}' in the inbox now")
        if emails:
            notes.append(f"{_count(emails, 'email is', 'emails are')} back in the inbox")
        folders_q.delete_folder(store, folder["id"])
    return _result(result, notes)


# -- filters ----------------------------------------------------------------------------------


def plan_filter(store: Store, actor: Actor, ref: str) -> Removal:
    row = filters.filter_to_change(store, actor, ref)
    return Removal(f"filter '{row['name']}'")


def remove_filter(store: Store, actor: Actor, ref: str) -> dict:
    return filters.remove_filter(store, actor, ref)
