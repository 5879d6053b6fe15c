"""Mail accounts: group mailboxes (admin) and personal mailboxes (their owner), SPEC 2, 3, 8.

Options arrive as ``model.AccountChanges`` (None = not given); accounts come from the
store as ``model.MailAccount``. Everything is validated before anything is written; a
password for the keyring is written as the last step of the transaction, after every
check, and put back as it was if the commit fails: a rejected command leaves neither a
row nor a keyring entry behind, and never replaces a live password. OAuth2 accounts
(``--auth oauth2``, SPEC 12) are planned, prepared and finished by
``services.oauth_accounts.AuthChange``; their IMAP and SMTP logins take access tokens from a
TokenManager.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from espomail import secrets, timeutil, validate
from espomail.config import Settings
from espomail.errors import Duplicate, EspomailError, InvalidInput, MailServerError, NotFound, SecretError
from espomail.mail import templates
from espomail.model import AccountChanges, AccountKind, AuthFlow, AuthMethod, Distribution, MailAccount, Security
from espomail.oauth.errors import ReauthorizationNeeded
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.services import oauth_accounts
from espomail.services.folders import resolve_group, resolve_personal
from espomail.services.oauth_accounts import AuthChange, AuthorizeUI
from espomail.services.people import get_team, get_user
from espomail.store import accounts as q
from espomail.store import folders as folders_q
from espomail.store import health as health_q
from espomail.store import people as people_q
from espomail.store import settings as settings_q
from espomail.store.db import Store

if TYPE_CHECKING:
    from espomail.mail.smtp import SmtpConfig

SECURITY = tuple(s.value for s in Security)
DEFAULT_PORTS = {Security.SSL: 993, Security.STARTTLS: 143, Security.NONE: 143}
DISTRIBUTIONS = tuple(d.value for d in Distribution)
SMTP_PORTS = {Security.SSL: 465, Security.STARTTLS: 587, Security.NONE: 25}
DISTRIBUTED = (Distribution.ROUND_ROBIN, Distribution.LEAST_BUSY)


def get_account(store: Store, name: str) -> MailAccount:
    account = q.account_by_name(store, name)
    if account is None:
        raise NotFound(f"no mail account named '{name}'; see 'espomail account list'")
    return account


def system_address(store: Store) -> str | None:
    return settings_q.get(store, "outbound_address")


def is_system(store: Store, account: MailAccount) -> bool:
    address = system_address(store)
    return bool(address and account.smtp_host and address.lower() == account.address_lower)


def account_dict(store: Store, account: MailAccount) -> dict:
    owner = people_q.user_by_id(store, account.owner_id) if account.owner_id else None
    target = people_q.team_by_id(store, account.target_team_id) if account.target_team_id else None
    assignee = people_q.user_by_id(store, account.assign_user_id) if account.assign_user_id else None
    imap_ref = secrets.SecretRef.from_json(account.secret_ref)
    smtp_ref = secrets.SecretRef.from_json(account.smtp_secret_ref)
    return {
        "id": account.id,
        "name": account.name,
        "kind": account.kind,
        "address": account.address,
        "owner": owner["username"] if owner else None,
        "active": account.is_active,
        "host": account.host,
        "port": account.port,
        "security": account.security,
        "insecure": account.insecure,
        "username": account.username,
        "auth": account.auth,
        "password": imap_ref.describe() if imap_ref else None,
        "oauth": oauth_accounts.describe(account),
        "folders": list(account.folders),
        "fetch_since": account.fetch_since,
        "mark_seen": account.mark_seen,
        "teams": people_q.team_names(store, q.team_ids(store, account.id)),
        "add_team_users": account.add_team_users,
        "group_folder": folders_q.folder_name(store, account.group_folder_id),
        "personal_folder": folders_q.folder_name(store, account.personal_folder_id),
        "folder_map": {imap: folders_q.folder_name(store, folder_id) for imap, folder_id in account.folder_map.items()},
        "create_case": account.create_case,
        "distribution": account.distribution,
        "target_team": target["name"] if target else None,
        "target_position": account.target_position,
        "assign_user": assignee["username"] if assignee else None,
        "auto_reply": account.auto_reply,
        "reply_subject": account.reply_subject,
        "reply_from_address": account.reply_from_address,
        "reply_from_name": account.reply_from_name,
        "reply_to_address": account.reply_to_address,
        "smtp_host": account.smtp_host,
        "smtp_port": account.smtp_port,
        "smtp_security": account.smtp_security,
        "smtp_username": _smtp_username(account),
        "smtp_password": smtp_ref.describe() if smtp_ref else None,
        "smtp_shared": account.smtp_shared,
        "store_sent": account.store_sent,
        "is_system": is_system(store, account),
        "last_success_at": account.last_success_at,
        "last_error": account.last_error,
    }


def _smtp_username(account: MailAccount) -> str | None:
    """An OAuth2 account's SMTP signs in with the same grant: its IMAP username unless another is given."""
    if account.uses_oauth and account.smtp_host:
        return account.smtp_username or account.username
    return account.smtp_username


# -- permissions ---------------------------------------------------------------------------


def account_facts(store: Store, account: MailAccount) -> access.AccountFacts:
    return access.AccountFacts(account.kind, account.owner_id, frozenset(q.team_ids(store, account.id)))


def require_manage(
    store: Store, actor: Actor, account: MailAccount | None, kind: AccountKind, owner_id: int | None
) -> None:
    """Group accounts: admins. Personal accounts: admins, or their owner with the permission."""
    name = f" '{account.name}'" if account is not None else ""
    access.require(
        actor, "account.manage", access.AccountFacts(kind, owner_id), f"manage the {kind} mail account{name}"
    )


def visible_accounts(store: Store, actor: Actor) -> list[MailAccount]:
    if actor.is_admin:
        return q.accounts(store)
    return q.accounts(store, owner_id=actor.user_id)


# -- add / update ------------------------------------------------------------------------------


def add_account(
    store: Store,
    actor: Actor,
    settings: Settings,
    kind: str,
    name: str,
    changes: AccountChanges,
) -> dict:
    """Create a group or personal account from its options (see cli/accounts.py)."""
    kind = AccountKind(kind)
    name = validate.name(name, "account name", 100)
    if any(ch.isspace() for ch in name) or "/" in name:
        raise InvalidInput(f"account name '{name}' must not contain spaces or '/'")
    _refuse_group_options(kind, changes)
    with secrets.keyring_writes() as keyring, store.atomic():
        owner_id = _owner(store, kind, changes)
        require_manage(store, actor, None, kind, owner_id)
        require_secret_sources(actor, changes, name)
        if kind == AccountKind.PERSONAL and not actor.is_admin:
            _check_personal_limit(store, actor, settings, owner_id)
        if q.account_by_name(store, name):
            raise Duplicate(f"a mail account named '{name}' exists already")
        for required in ("address", "host", "username"):
            if not getattr(changes, required):
                raise InvalidInput(f"--{required} is required for a new account")
        auth = AuthChange.plan(actor, name, changes, None)
        values = _values(store, kind, changes, creating=True)
        map_notes = _folder_map_values(store, values, changes, owner_id, None)
        _check_address(store, actor, kind, owner_id, values.get("address"))
        values.update({**auth.values(), "name": name, "kind": kind, "owner_id": owner_id})
        account_id = q.insert_account(store, values)
        _apply_relations(store, account_id, kind, changes)
        creating = auth.after is AuthMethod.PASSWORD
        _apply_secrets(store, actor, account_id, name, changes, keyring, creating=creating)
        _check_consistency(store, q.account_by_id(store, account_id))
        auth.prepare(store)
        result = account_dict(store, q.account_by_id(store, account_id))
        keyring.write()  # the last step: only the commit follows
    return _with_notes(result, auth.finish() + map_notes)


def update_account(store: Store, actor: Actor, settings: Settings, name: str, changes: AccountChanges) -> dict:
    with secrets.keyring_writes() as keyring, store.atomic():
        account = get_account(store, name)
        require_manage(store, actor, account, account.kind, account.owner_id)
        require_secret_sources(actor, changes, name)
        _refuse_group_options(account.kind, changes)
        auth = AuthChange.plan(actor, name, changes, account)
        values = _values(store, account.kind, changes, creating=False, current=account)
        map_notes = _folder_map_values(store, values, changes, account.owner_id, account)
        _check_address(store, actor, account.kind, account.owner_id, values.get("address"))
        q.update_account(store, account.id, {**values, **auth.values()})
        _apply_relations(store, account.id, account.kind, changes)
        _apply_secrets(store, actor, account.id, name, changes, keyring, creating=False)
        _check_consistency(store, q.account_by_id(store, account.id))
        auth.prepare(store)
        health_q.clear_backoff(store, account.id)  # new settings: the next fetch tries at once
        updated = q.account_by_id(store, account.id)
        result = account_dict(store, updated)
        keyring.write()  # the last step: only the commit follows
    _forget_replaced_secrets(account, updated)
    return _with_notes(result, auth.finish() + map_notes)


def _forget_replaced_secrets(before: MailAccount, after: MailAccount) -> None:
    """A keyring password replaced by a command or a variable is deleted from the keyring."""
    for old, new in ((before.secret_ref, after.secret_ref), (before.smtp_secret_ref, after.smtp_secret_ref)):
        old_ref, new_ref = secrets.SecretRef.from_json(old), secrets.SecretRef.from_json(new)
        if old_ref is not None and old_ref.method == "keyring" and old_ref != new_ref:
            secrets.delete_from_keyring(old_ref)


def _with_notes(result: dict, notes: list[str]) -> dict:
    """``notes``: what the user should know or do next (the CLI prints them on stderr)."""
    if notes:
        result["notes"] = notes
    return result


# Options whose value the administrator's processes (cron fetch, sending) run or read later:
# only administrators set them (policy.access 'secret.command'). Users give a password with
# --password-stdin / --smtp-password-stdin, which puts the secret itself in the keyring.
SECRET_SOURCES = {
    "password_cmd": "--password-cmd",
    "password_env": "--password-env",
    "smtp_password_cmd": "--smtp-password-cmd",
    "smtp_password_env": "--smtp-password-env",
}


def require_secret_sources(actor: Actor, changes: AccountChanges, name: str) -> None:
    """Refuse (exit 4, before anything is written) a command or variable given by a user."""
    for field, option in SECRET_SOURCES.items():
        if getattr(changes, field) is not None:
            access.require(actor, "secret.command", access.SecretFacts(option), f"set {option} of account '{name}'")


def _check_address(store: Store, actor: Actor, kind: AccountKind, owner_id: int | None, address: str | None) -> None:
    """A personal account takes one of its owner's addresses (users) and never a group account's."""
    if address is None or kind != AccountKind.PERSONAL:
        return
    owners = {a.lower() for a in people_q.addresses_of(store, "user", owner_id)}
    access.require(
        actor, "account.address", access.AddressFacts(address.lower() in owners), f"use the address {address}"
    )
    for other in q.accounts_by_address(store, address):
        if other.kind == AccountKind.GROUP:
            raise InvalidInput(
                f"{address} is the address of group account '{other.name}'; a personal account needs another"
            )


def _refuse_group_options(kind: AccountKind, changes: AccountChanges) -> None:
    if kind != AccountKind.PERSONAL:
        if changes.user or changes.personal_folder or changes.folder_map:
            raise InvalidInput("--user, --personal-folder and --folder-map apply to personal accounts only")
        return
    for option in changes.given_group_options():
        raise InvalidInput(f"--{option.replace('_', '-')} applies to group accounts only")


def _owner(store: Store, kind: AccountKind, changes: AccountChanges) -> int | None:
    if kind == AccountKind.GROUP:
        return None
    if not changes.user:
        raise InvalidInput("a personal account needs --user U (its owner)")
    return get_user(store, changes.user)["id"]


def _check_personal_limit(store: Store, actor: Actor, settings: Settings, owner_id: int) -> None:
    if q.count_personal(store, owner_id) >= settings.max_personal_accounts:
        access.deny(
            actor,
            f"more than {settings.max_personal_accounts} personal mail accounts (config max_personal_accounts)",
            "add another personal mail account (remove one first)",
        )


def _values(
    store: Store, kind: AccountKind, c: AccountChanges, creating: bool, current: MailAccount | None = None
) -> dict:
    """The columns ``c`` sets, validated."""
    values: dict[str, Any] = {}
    if c.address:
        address = validate.email_address(c.address)
        values.update(address=address, address_lower=address.lower())
    _imap_values(values, c, creating, current)
    _smtp_values(values, c, current)
    _flag_values(values, c)
    if kind == AccountKind.GROUP:
        _group_values(store, values, c)
    elif c.personal_folder:
        owner_id = current.owner_id if current else get_user(store, c.user)["id"]
        values["personal_folder_id"] = resolve_personal(store, owner_id, c.personal_folder)["id"]
    return values


def _folder_map_values(
    store: Store, values: dict, c: AccountChanges, owner_id: int | None, current: MailAccount | None
) -> list[str]:
    """A personal account's folder map (monitored IMAP folder -> a personal folder of the owner)
    after ``--folder-map IMAPFOLDER=FOLDER`` (``IMAPFOLDER=``: remove the entry) and ``--folder``;
    sets ``values["folder_map"]`` when it changes. Returns notes: entries of folders no longer
    monitored are dropped."""
    if owner_id is None or not (c.folder_map or "folders" in values):
        return []
    before = dict(current.folder_map) if current else {}
    monitored = (
        json.loads(values["folders"]) if "folders" in values else list(current.folders if current else ["INBOX"])
    )
    mapping = dict(before)
    for entry in c.folder_map:
        imap_name, sep, folder = entry.partition("=")
        if not sep or not imap_name.strip():
            raise InvalidInput(f"--folder-map takes IMAPFOLDER=FOLDER (FOLDER empty: remove the entry), not '{entry}'")
        name = _monitored(imap_name.strip(), monitored)
        if name is None:
            raise InvalidInput(
                f"--folder-map {entry}: '{imap_name.strip()}' is not a monitored folder "
                f"({', '.join(monitored)}); add it with --folder"
            )
        if folder.strip():
            mapping[name] = resolve_personal(store, owner_id, folder.strip())["id"]
        else:
            mapping.pop(name, None)
    dropped = [name for name in mapping if _monitored(name, monitored) is None]
    for name in dropped:
        del mapping[name]
    if mapping != before:
        values["folder_map"] = json.dumps(mapping, ensure_ascii=False)
    return [f"the --folder-map entry of '{name}' was dropped: that folder is no longer monitored" for name in dropped]


def _monitored(name: str, monitored: list[str]) -> str | None:
    """The monitored folder ``name`` is (INBOX in any case, as IMAP has it), else None."""
    for folder in monitored:
        if folder == name or (folder.upper() == "INBOX" and name.upper() == "INBOX"):
            return folder
    return None


def _imap_values(values: dict, c: AccountChanges, creating: bool, current: MailAccount | None) -> None:
    if c.host:
        values["host"] = validate.name(c.host, "--host")
    security = c.security or (current.security if current else Security.SSL)
    if c.security:
        values["security"] = validate.choice(c.security, SECURITY, "--security")
    if c.port:
        values["port"] = _port(c.port, "--port")
    elif creating or (c.security and _follows_default(current.port, current.security, DEFAULT_PORTS)):
        values["port"] = DEFAULT_PORTS[security]
    if c.username:
        values["username"] = validate.single_line(c.username, "--username")
    if c.folders:
        folders = [_imap_folder(f, "--folder") for f in c.folders]
        values["folders"] = json.dumps(list(dict.fromkeys(folders)))
    if c.fetch_since:
        values["fetch_since"] = _date(c.fetch_since)
    elif creating:
        values["fetch_since"] = timeutil.now().date().isoformat()
    if c.store_sent:
        values["store_sent"] = _imap_folder(c.store_sent, "--store-sent")


def _imap_folder(value: str, option: str) -> str:
    """An IMAP folder name: it goes into IMAP commands (quoted), so no control characters."""
    name = validate.name(value, option)
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in name):
        raise InvalidInput(f"{option} {name!r} must not contain control characters")
    return name


def _smtp_values(values: dict, c: AccountChanges, current: MailAccount | None) -> None:
    if c.smtp_host:
        values["smtp_host"] = validate.name(c.smtp_host, "--smtp-host")
    security = c.smtp_security or (current.smtp_security if current else None) or Security.STARTTLS
    if c.smtp_security:
        values["smtp_security"] = validate.choice(c.smtp_security, SECURITY, "--smtp-security")
    elif c.smtp_host and not (current and current.smtp_security):
        values["smtp_security"] = security
    if c.smtp_port:
        values["smtp_port"] = _port(c.smtp_port, "--smtp-port")
    elif c.smtp_host or c.smtp_security:
        kept = current.smtp_port if current else None
        if c.smtp_security and current and _follows_default(kept, current.smtp_security, SMTP_PORTS):
            kept = None
        values["smtp_port"] = kept or SMTP_PORTS[security]
    if c.smtp_username:
        values["smtp_username"] = validate.single_line(c.smtp_username, "--smtp-username")


def _follows_default(port: int | None, security: Security | None, defaults: dict) -> bool:
    """Whether a port changes with a new --security: only when it is unset or was the default of
    the old security (an explicit --port 1143 stays when --security changes)."""
    return port is None or security is None or port == defaults.get(security)


FLAGS = (  # (option, column)
    ("active", "is_active"),
    ("mark_seen", "mark_seen"),
    ("insecure", "insecure"),
    ("add_team_users", "add_team_users"),
    ("create_case", "create_case"),
    ("auto_reply", "auto_reply"),
    ("smtp_shared", "smtp_shared"),
)


def _flag_values(values: dict, c: AccountChanges) -> None:
    for option, column in FLAGS:
        if getattr(c, option) is not None:
            values[column] = bool(getattr(c, option))


def _group_values(store: Store, values: dict, c: AccountChanges) -> None:
    if c.distribution:
        values["distribution"] = validate.choice(c.distribution, DISTRIBUTIONS, "--distribution")
    if c.target_team:
        values["target_team_id"] = get_team(store, c.target_team)["id"]
    if c.target_position is not None:
        values["target_position"] = c.target_position or None
    if c.assign_user:
        values["assign_user_id"] = get_user(store, c.assign_user)["id"]
    if c.group_folder:
        values["group_folder_id"] = resolve_group(store, c.group_folder)["id"]
    if c.reply_subject is not None:
        values["reply_subject"] = templates.check(c.reply_subject, "--reply-subject")
    if c.reply_body_file:
        values["reply_body"] = templates.check(_read_body(c.reply_body_file), "--reply-body-file")
    for option in ("reply_from_address", "reply_to_address"):
        if getattr(c, option):
            values[option] = validate.email_address(getattr(c, option))
    if c.reply_from_name is not None:
        values["reply_from_name"] = validate.display_name(c.reply_from_name, "--reply-from-name")


def _apply_relations(store: Store, account_id: int, kind: AccountKind, c: AccountChanges) -> None:
    if kind == AccountKind.GROUP and c.teams:
        q.set_teams(store, account_id, [get_team(store, t)["id"] for t in c.teams])


def _apply_secrets(
    store: Store,
    actor: Actor,
    account_id: int,
    name: str,
    c: AccountChanges,
    keyring: secrets.KeyringWrites,
    creating: bool,
) -> None:
    """Store the password references; the passwords go to ``keyring``, written last by the caller
    (after every check, so that a rejected command leaves the keyring as it was)."""
    for protocol, column, given in (
        ("imap", "secret_ref", (c.password_cmd, c.password_env, c.password_stdin)),
        ("smtp", "smtp_secret_ref", (c.smtp_password_cmd, c.smtp_password_env, c.smtp_password_stdin)),
    ):
        ref, secret = secrets.choose(name, protocol, *given)
        if ref is None:
            if creating and protocol == "imap":
                how = "--password-cmd, --password-env or --password-stdin" if actor.is_admin else "--password-stdin"
                raise InvalidInput(f"give the password with {how}")
            continue
        if ref.runs_something:
            ref = dataclasses.replace(ref, set_by="admin" if actor.is_admin else "user")
        if secret is not None:
            keyring.add(ref, secret)
        q.update_account(store, account_id, {column: ref.to_json()})


def _check_consistency(store: Store, account: MailAccount) -> None:
    """Rules that involve several options (checked after every add or update)."""
    distribution = account.distribution
    if account.is_group:
        if distribution in DISTRIBUTED and not account.target_team_id:
            raise InvalidInput(f"--distribution {distribution} needs --target-team T (or give --distribution none)")
        if distribution == Distribution.DIRECT and not account.assign_user_id:
            raise InvalidInput("--distribution direct needs --assign-user U (or give --distribution none)")
        if account.target_position:
            team = people_q.team_by_id(store, account.target_team_id) if account.target_team_id else None
            if team is None or account.target_position not in json.loads(team["positions"]):
                raise InvalidInput(f"--target-position {account.target_position} is not a position of the target team")
        if account.auto_reply and not (account.reply_subject and account.reply_body):
            raise InvalidInput("--auto-reply needs --reply-subject and --reply-body-file")
    if account.smtp_username and not account.smtp_secret_ref and not account.uses_oauth:
        raise InvalidInput(
            "--smtp-username needs a password: --smtp-password-cmd, --smtp-password-env or --smtp-password-stdin"
        )
    if account.store_sent and not account.smtp_host:
        raise InvalidInput("--store-sent needs SMTP (--smtp-host): only sent mail is stored there")


def _port(value: Any, what: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise InvalidInput(f"{what} must be a number from 1 to 65535, not '{value}'")
    return port


def _date(value: str) -> str:
    try:
        return timeutil.parse_date(value).isoformat()
    except ValueError:
        raise InvalidInput(f"'{value}' is not a date; use YYYY-MM-DD") from None


def _read_body(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"no file {path} (given to --reply-body-file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None


# -- list / show / remove / reset / test ---------------------------------------------------------


def list_accounts(store: Store, actor: Actor) -> list[dict]:
    return [account_dict(store, a) for a in visible_accounts(store, actor)]


def show_account(store: Store, actor: Actor, name: str) -> dict:
    account = get_account(store, name)
    if not actor.is_admin and account.owner_id != actor.user_id:
        access.require(actor, "account.manage", account_facts(store, account), f"see mail account '{name}'")
    result = account_dict(store, account)
    result["fetch_state"] = [
        {k: row[k] for k in ("folder", "uidvalidity", "last_uid", "last_date", "by_date", "uidnext")}
        for row in q.folder_states(store, account.id)
    ]
    return result


def forget_secrets(account: MailAccount) -> list[str]:
    """After a removed account's transaction: its keyring entries (passwords, OAuth2 tokens) go;
    returns notes (a token file is left where it is). Removing is services/removals.py."""
    secrets.delete_from_keyring(secrets.SecretRef.from_json(account.secret_ref))
    secrets.delete_from_keyring(secrets.SecretRef.from_json(account.smtp_secret_ref))
    return oauth_accounts.forget_tokens(account)


def reset_account(store: Store, actor: Actor, name: str, since: str) -> dict:
    """Forget the fetch state: the next fetch starts again at ``since`` (duplicates are absorbed)."""
    with store.atomic():
        account = get_account(store, name)
        require_manage(store, actor, account, account.kind, account.owner_id)
        q.forget_state(store, account.id)
        q.update_account(store, account.id, {"fetch_since": _date(since)})
        health_q.clear_backoff(store, account.id)
        return account_dict(store, q.account_by_id(store, account.id))


def open_imap(account: MailAccount, settings: Settings):  # noqa: ANN201 - an ImapSession
    """Log in to an account's IMAP server (the password resolved now, never stored; OAuth2: a token)."""
    from espomail.mail.imap import ImapSession

    if account.uses_oauth:
        credentials = oauth_accounts.token_manager(account, settings.timeout_s)
    else:
        credentials = secrets.resolve(account_secret(account, "imap"), account.name, settings.timeout_s)
    return ImapSession(
        account.host,
        account.port,
        account.security,
        account.username,
        credentials,
        settings.timeout_s,
        account.insecure,
    )


def smtp_config(account: MailAccount, timeout_s: float = 60.0) -> SmtpConfig:
    """How to reach an account's SMTP server (the password is resolved, or the token asked for, when sending)."""
    from espomail.mail.smtp import SmtpConfig

    return SmtpConfig(
        account=account.name,
        host=account.smtp_host,
        port=account.smtp_port or 587,
        security=account.smtp_security or Security.STARTTLS,
        username=_smtp_username(account),
        secret=account_secret(account, "smtp") if account.smtp_username else None,
        insecure=account.insecure,
        oauth=oauth_accounts.token_manager(account, timeout_s) if account.uses_oauth else None,
    )


def account_secret(account: MailAccount, protocol: str) -> secrets.SecretRef | None:
    """The account's secret reference for ``protocol`` (imap or smtp); SecretError when it is a
    command or variable that no administrator set (policy.access.may_run_secret_source)."""
    ref = secrets.SecretRef.from_json(account.secret_ref if protocol == "imap" else account.smtp_secret_ref)
    if ref is None or access.may_run_secret_source(ref.method, ref.set_by, account.kind):
        return ref
    option = "--password" if protocol == "imap" else "--smtp-password"
    raise SecretError(
        f"account '{account.name}': its {protocol.upper()} password {ref.describe()} was not set by an "
        f"administrator, so it is not run; its owner sets the password with '{option}-stdin', or an "
        f"administrator with 'espomail account update {account.name} {option}-cmd CMD'"
    )


def test_account(store: Store, actor: Actor, settings: Settings, name: str) -> dict:
    """Log in, list folders, check the monitored ones exist (and try SMTP when configured)."""
    account = get_account(store, name)
    require_manage(store, actor, account, account.kind, account.owner_id)
    result: dict[str, Any] = {"account": name, "auth": account.auth, "ok": False, "imap": None, "smtp": None}
    try:
        with open_imap(account, settings) as session:
            folders = session.list_folders()
    except ReauthorizationNeeded as exc:  # the same grant serves SMTP: one error says it all
        result["error"] = exc.message
        return result
    except EspomailError as exc:
        result["imap"] = {"ok": False, "error": exc.message}
    else:
        result["imap"] = _folders_checked(name, list(account.folders), folders)
    if account.smtp_host:
        result["smtp"] = _test_smtp(account, settings)
    result["ok"] = bool(result["imap"]["ok"] and (result["smtp"] is None or result["smtp"]["ok"]))
    return result


def _folders_checked(name: str, monitored: list[str], folders: list[str]) -> dict:
    missing = [f for f in monitored if f not in folders and f.upper() != "INBOX"]
    checked: dict[str, Any] = {"ok": not missing, "folders": folders, "missing_folders": missing}
    if missing:
        checked["error"] = (
            f"monitored folder(s) {', '.join(missing)} not on the server; "
            f"fix with 'espomail account update {name} --folder F'"
        )
    return checked


def _test_smtp(account: MailAccount, settings: Settings) -> dict:
    from espomail.mail import smtp

    try:
        smtp.check(smtp_config(account, settings.timeout_s), settings.timeout_s)
        return {"ok": True}
    except (MailServerError, EspomailError) as exc:
        return {"ok": False, "error": exc.message}


# -- OAuth2: account authorize ---------------------------------------------------------------


def authorize_account(
    store: Store,
    actor: Actor,
    settings: Settings,
    name: str,
    flow: AuthFlow | None,
    ui: AuthorizeUI,
    refresh_token: str | None = None,
) -> dict:
    """Obtain and save a grant for an OAuth2 account; a new one clears its "authorize again" error."""
    account = get_account(store, name)
    require_manage(store, actor, account, account.kind, account.owner_id)
    result = oauth_accounts.authorize(account, settings.timeout_s, flow, ui, refresh_token)
    with store.atomic():
        q.clear_error(store, account.id, oauth_accounts.authorization_errors(account.name))
        health_q.clear_backoff(store, account.id)  # a new grant: the next fetch tries at once
    return result
