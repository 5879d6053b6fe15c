"""Mail accounts: group mailboxes (admin) and personal mailboxes (their owner), SPEC 2, 3, 8.

Options arrive as ``model.AccountChanges`` (None = not given); accounts come from the
store as ``model.MailAccount``. Everything is validated before anything is written; a
password for the keyring is written as the last step of the transaction, after every
check, and put back as it was if the commit fails: a rejected command leaves neither a
row nor a keyring entry behind, and never replaces a live password.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from espomail import secrets, timeutil, validate
from espomail.config import Settings
from espomail.errors import Duplicate, EspomailError, InvalidInput, MailServerError, NotFound
from espomail.mail import templates
from espomail.model import AccountChanges, AccountKind, Distribution, MailAccount, Security
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.services.folders import resolve_group, resolve_personal
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
        "password": imap_ref.describe() if imap_ref else None,
        "folders": list(account.folders),
        "fetch_since": account.fetch_since,
        "mark_seen": account.mark_seen,
        "teams": people_q.team_names(store, q.team_ids(store, account.id)),
        "add_team_users": account.add_team_users,
        "group_folder": folders_q.folder_name(store, account.group_folder_id),
        "personal_folder": folders_q.folder_name(store, account.personal_folder_id),
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
        "smtp_username": account.smtp_username,
        "smtp_password": smtp_ref.describe() if smtp_ref else None,
        "smtp_shared": account.smtp_shared,
        "store_sent": account.store_sent,
        "is_system": is_system(store, account),
        "last_success_at": account.last_success_at,
        "last_error": account.last_error,
    }


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
        if kind == AccountKind.PERSONAL and not actor.is_admin:
            _check_personal_limit(store, actor, settings, owner_id)
        if q.account_by_name(store, name):
            raise Duplicate(f"a mail account named '{name}' exists already")
        for required in ("address", "host", "username"):
            if not getattr(changes, required):
                raise InvalidInput(f"--{required} is required for a new account")
        values = _values(store, kind, changes, creating=True)
        values.update({"name": name, "kind": kind, "owner_id": owner_id})
        account_id = q.insert_account(store, values)
        _apply_relations(store, account_id, kind, changes)
        _apply_secrets(store, account_id, name, changes, keyring, creating=True)
        _check_consistency(store, q.account_by_id(store, account_id))
        result = account_dict(store, q.account_by_id(store, account_id))
        keyring.write()  # the last step: only the commit follows
    return result


def update_account(store: Store, actor: Actor, settings: Settings, name: str, changes: AccountChanges) -> dict:
    with secrets.keyring_writes() as keyring, store.atomic():
        account = get_account(store, name)
        require_manage(store, actor, account, account.kind, account.owner_id)
        _refuse_group_options(account.kind, changes)
        values = _values(store, account.kind, changes, creating=False, current=account)
        q.update_account(store, account.id, values)
        _apply_relations(store, account.id, account.kind, changes)
        _apply_secrets(store, account.id, name, changes, keyring, creating=False)
        _check_consistency(store, q.account_by_id(store, account.id))
        health_q.clear_backoff(store, account.id)  # new settings: the next fetch tries at once
        updated = q.account_by_id(store, account.id)
        result = account_dict(store, updated)
        keyring.write()  # the last step: only the commit follows
    _forget_replaced_secrets(account, updated)
    return result


def _forget_replaced_secrets(before: MailAccount, after: MailAccount) -> None:
    """A keyring password replaced by a command or a variable is deleted from the keyring."""
    for old, new in ((before.secret_ref, after.secret_ref), (before.smtp_secret_ref, after.smtp_secret_ref)):
        old_ref, new_ref = secrets.SecretRef.from_json(old), secrets.SecretRef.from_json(new)
        if old_ref is not None and old_ref.method == "keyring" and old_ref != new_ref:
            secrets.delete_from_keyring(old_ref)


def _refuse_group_options(kind: AccountKind, changes: AccountChanges) -> None:
    if kind != AccountKind.PERSONAL:
        if changes.user or changes.personal_folder:
            raise InvalidInput("--user and --personal-folder apply to personal accounts only")
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


def _imap_values(values: dict, c: AccountChanges, creating: bool, current: MailAccount | None) -> None:
    if c.host:
        values["host"] = validate.name(c.host, "--host")
    security = c.security or (current.security if current else Security.SSL)
    if c.security:
        values["security"] = validate.choice(c.security, SECURITY, "--security")
    if c.port:
        values["port"] = _port(c.port, "--port")
    elif creating or c.security:
        values["port"] = DEFAULT_PORTS[security]
    if c.username:
        values["username"] = validate.single_line(c.username, "--username")
    if c.folders:
        folders = [validate.name(f, "--folder") for f in c.folders]
        values["folders"] = json.dumps(list(dict.fromkeys(folders)))
    if c.fetch_since:
        values["fetch_since"] = _date(c.fetch_since)
    elif creating:
        values["fetch_since"] = timeutil.now().date().isoformat()
    if c.store_sent:
        values["store_sent"] = validate.name(c.store_sent, "--store-sent")


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
        kept = current.smtp_port if current and not c.smtp_security else None
        values["smtp_port"] = kept or SMTP_PORTS[security]
    if c.smtp_username:
        values["smtp_username"] = validate.single_line(c.smtp_username, "--smtp-username")


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
    store: Store, account_id: int, name: str, c: AccountChanges, keyring: secrets.KeyringWrites, creating: bool
) -> None:
    for protocol, column, given in (
        ("imap", "secret_ref", (c.password_cmd, c.password_env, c.password_stdin)),
        ("smtp", "smtp_secret_ref", (c.smtp_password_cmd, c.smtp_password_env, c.smtp_password_stdin)),
    ):
        ref, secret = secrets.choose(name, protocol, *given)
        if ref is None:
            if creating and protocol == "imap":
                raise InvalidInput("give the password with --password-cmd, --password-env or --password-stdin")
            continue
        if secret is not None:
            keyring.add(ref, secret)
        q.update_account(store, account_id, {column: ref.to_json()})


def _check_consistency(store: Store, account: MailAccount) -> None:
    """Rules that involve several options (checked after every add or update)."""
    distribution = account.distribution
    if account.is_group:
        if distribution in DISTRIBUTED and not account.target_team_id:
            raise InvalidInput(f"--distribution {distribution} needs --target-team")
        if distribution == Distribution.DIRECT and not account.assign_user_id:
            raise InvalidInput("--distribution direct needs --assign-user")
        if account.target_position:
            team = people_q.team_by_id(store, account.target_team_id) if account.target_team_id else None
            if team is None or account.target_position not in json.loads(team["positions"]):
                raise InvalidInput(f"--target-position {account.target_position} is not a position of the target team")
        if account.auto_reply and not (account.reply_subject and account.reply_body):
            raise InvalidInput("--auto-reply needs --reply-subject and --reply-body-file")
    if account.smtp_username and not account.smtp_secret_ref:
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


def remove_account(store: Store, actor: Actor, name: str) -> dict:
    with store.atomic():
        account = get_account(store, name)
        require_manage(store, actor, account, account.kind, account.owner_id)
        result = account_dict(store, account)
        q.delete_account(store, account.id)
    secrets.delete_from_keyring(secrets.SecretRef.from_json(account.secret_ref))
    secrets.delete_from_keyring(secrets.SecretRef.from_json(account.smtp_secret_ref))
    return result


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
    """Log in to an account's IMAP server (the password resolved now, never stored)."""
    from espomail.mail.imap import ImapSession

    password = secrets.resolve(secrets.SecretRef.from_json(account.secret_ref), account.name, settings.timeout_s)
    return ImapSession(
        account.host,
        account.port,
        account.security,
        account.username,
        password,
        settings.timeout_s,
        account.insecure,
    )


def smtp_config(account: MailAccount) -> SmtpConfig:
    """How to reach an account's SMTP server (the password is resolved when sending)."""
    from espomail.mail.smtp import SmtpConfig

    return SmtpConfig(
        account=account.name,
        host=account.smtp_host,
        port=account.smtp_port or 587,
        security=account.smtp_security or Security.STARTTLS,
        username=account.smtp_username,
        secret=secrets.SecretRef.from_json(account.smtp_secret_ref),
        insecure=account.insecure,
    )


def test_account(store: Store, actor: Actor, settings: Settings, name: str) -> dict:
    """Log in, list folders, check the monitored ones exist (and try SMTP when configured)."""
    account = get_account(store, name)
    require_manage(store, actor, account, account.kind, account.owner_id)
    result: dict[str, Any] = {"account": name, "ok": False, "imap": None, "smtp": None}
    try:
        with open_imap(account, settings) as session:
            folders = session.list_folders()
        monitored = list(account.folders)
        missing = [f for f in monitored if f not in folders and f.upper() != "INBOX"]
        result["imap"] = {"ok": not missing, "folders": folders, "missing_folders": missing}
        if missing:
            result["imap"]["error"] = (
                f"monitored folder(s) {', '.join(missing)} not on the server; "
                f"fix with 'espomail account update {name} --folder F'"
            )
    except EspomailError as exc:
        result["imap"] = {"ok": False, "error": exc.message}
    if account.smtp_host:
        result["smtp"] = _test_smtp(account, settings)
    result["ok"] = bool(result["imap"]["ok"] and (result["smtp"] is None or result["smtp"]["ok"]))
    return result


def _test_smtp(account: MailAccount, settings: Settings) -> dict:
    from espomail.mail import smtp

    try:
        smtp.check(smtp_config(account), settings.timeout_s)
        return {"ok": True}
    except (MailServerError, EspomailError) as exc:
        return {"ok": False, "error": exc.message}
