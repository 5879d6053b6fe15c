"""Mail accounts: group mailboxes (admin) and personal mailboxes (their owner), SPEC 2, 3, 8.

Options arrive as a dict (None = not given). Everything is validated before anything is
written; the password goes to the keyring inside the same transaction, so a failure
leaves neither a row nor a keyring entry behind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from espomail import secrets, timeutil, validate
from espomail.config import Settings
from espomail.errors import Duplicate, EspomailError, InvalidInput, MailServerError, NotFound
from espomail.mail import templates
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.services.folders import resolve_group, resolve_personal
from espomail.services.people import get_team, get_user
from espomail.store import accounts as q
from espomail.store import folders as folders_q
from espomail.store import people as people_q
from espomail.store import settings as settings_q
from espomail.store.db import Row, Store

SECURITY = ("ssl", "starttls", "none")
DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
DISTRIBUTIONS = ("none", "direct", "round-robin", "least-busy")
SMTP_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
GROUP_ONLY = (
    "teams",
    "add_team_users",
    "create_case",
    "distribution",
    "target_team",
    "target_position",
    "assign_user",
    "auto_reply",
    "reply_subject",
    "reply_body_file",
    "reply_from_address",
    "reply_from_name",
    "reply_to_address",
    "smtp_shared",
    "group_folder",
)


def get_account(store: Store, name: str) -> Row:
    account = q.account_by_name(store, name)
    if account is None:
        raise NotFound(f"no mail account named '{name}'; see 'espomail account list'")
    return account


def system_address(store: Store) -> str | None:
    return settings_q.get(store, "outbound_address")


def is_system(store: Store, account: Row) -> bool:
    address = system_address(store)
    return bool(address and account["smtp_host"] and address.lower() == account["address_lower"])


def account_dict(store: Store, account: Row) -> dict:
    owner = people_q.user_by_id(store, account["owner_id"]) if account["owner_id"] else None
    target = people_q.team_by_id(store, account["target_team_id"]) if account["target_team_id"] else None
    assignee = people_q.user_by_id(store, account["assign_user_id"]) if account["assign_user_id"] else None
    imap_ref = secrets.SecretRef.from_json(account["secret_ref"])
    smtp_ref = secrets.SecretRef.from_json(account["smtp_secret_ref"])
    return {
        "id": account["id"],
        "name": account["name"],
        "kind": account["kind"],
        "address": account["address"],
        "owner": owner["username"] if owner else None,
        "active": bool(account["is_active"]),
        "host": account["host"],
        "port": account["port"],
        "security": account["security"],
        "insecure": bool(account["insecure"]),
        "username": account["username"],
        "password": imap_ref.describe() if imap_ref else None,
        "folders": json.loads(account["folders"]),
        "fetch_since": account["fetch_since"],
        "mark_seen": bool(account["mark_seen"]),
        "teams": people_q.team_names(store, q.team_ids(store, account["id"])),
        "add_team_users": bool(account["add_team_users"]),
        "group_folder": folders_q.folder_name(store, account["group_folder_id"]),
        "personal_folder": folders_q.folder_name(store, account["personal_folder_id"]),
        "create_case": bool(account["create_case"]),
        "distribution": account["distribution"],
        "target_team": target["name"] if target else None,
        "target_position": account["target_position"],
        "assign_user": assignee["username"] if assignee else None,
        "auto_reply": bool(account["auto_reply"]),
        "reply_subject": account["reply_subject"],
        "reply_from_address": account["reply_from_address"],
        "reply_from_name": account["reply_from_name"],
        "reply_to_address": account["reply_to_address"],
        "smtp_host": account["smtp_host"],
        "smtp_port": account["smtp_port"],
        "smtp_security": account["smtp_security"],
        "smtp_username": account["smtp_username"],
        "smtp_password": smtp_ref.describe() if smtp_ref else None,
        "smtp_shared": bool(account["smtp_shared"]),
        "store_sent": account["store_sent"],
        "is_system": is_system(store, account),
        "last_success_at": account["last_success_at"],
        "last_error": account["last_error"],
    }


# -- permissions ---------------------------------------------------------------------------


def account_facts(store: Store, account: Row) -> access.AccountFacts:
    return access.AccountFacts(account["kind"], account["owner_id"], frozenset(q.team_ids(store, account["id"])))


def require_manage(store: Store, actor: Actor, account: Row | None, kind: str, owner_id: int | None) -> None:
    """Group accounts: admins. Personal accounts: admins, or their owner with the permission."""
    name = f" '{account['name']}'" if account is not None else ""
    access.require(
        actor, "account.manage", access.AccountFacts(kind, owner_id), f"manage the {kind} mail account{name}"
    )


def visible_accounts(store: Store, actor: Actor) -> list[Row]:
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
    options: Mapping[str, Any],
) -> dict:
    """Create a group or personal account from CLI options (see cli/accounts.py)."""
    name = validate.name(name, "account name", 100)
    if any(ch.isspace() for ch in name) or "/" in name:
        raise InvalidInput(f"account name '{name}' must not contain spaces or '/'")
    _refuse_group_options(kind, options)
    with store.atomic():
        owner_id = _owner(store, kind, options)
        require_manage(store, actor, None, kind, owner_id)
        if kind == "personal" and not actor.is_admin:
            _check_personal_limit(store, actor, settings, owner_id)
        if q.account_by_name(store, name):
            raise Duplicate(f"a mail account named '{name}' exists already")
        for required in ("address", "host", "username"):
            if not options.get(required):
                raise InvalidInput(f"--{required} is required for a new account")
        values = _values(store, kind, options, creating=True)
        values.update({"name": name, "kind": kind, "owner_id": owner_id})
        account_id = q.insert_account(store, values)
        _apply_relations(store, account_id, kind, options)
        _apply_secrets(store, account_id, name, options, creating=True)
        _check_consistency(store, q.account_by_id(store, account_id))
        return account_dict(store, q.account_by_id(store, account_id))


def update_account(store: Store, actor: Actor, settings: Settings, name: str, options: Mapping[str, Any]) -> dict:
    with store.atomic():
        account = get_account(store, name)
        require_manage(store, actor, account, account["kind"], account["owner_id"])
        _refuse_group_options(account["kind"], options)
        values = _values(store, account["kind"], options, creating=False, current=account)
        q.update_account(store, account["id"], values)
        _apply_relations(store, account["id"], account["kind"], options)
        _apply_secrets(store, account["id"], name, options, creating=False)
        _check_consistency(store, q.account_by_id(store, account["id"]))
        return account_dict(store, q.account_by_id(store, account["id"]))


def _refuse_group_options(kind: str, options: Mapping[str, Any]) -> None:
    if kind != "personal":
        if options.get("user") or options.get("personal_folder"):
            raise InvalidInput("--user and --personal-folder apply to personal accounts only")
        return
    for key in GROUP_ONLY:
        value = options.get(key)
        if value not in (None, False, (), []):
            raise InvalidInput(f"--{key.replace('_', '-')} applies to group accounts only")


def _owner(store: Store, kind: str, options: Mapping[str, Any]) -> int | None:
    if kind == "group":
        return None
    if not options.get("user"):
        raise InvalidInput("a personal account needs --user U (its owner)")
    return get_user(store, options["user"])["id"]


def _check_personal_limit(store: Store, actor: Actor, settings: Settings, owner_id: int) -> None:
    if q.count_personal(store, owner_id) >= settings.max_personal_accounts:
        access.deny(
            actor,
            f"more than {settings.max_personal_accounts} personal mail accounts (config max_personal_accounts)",
            "add another personal mail account (remove one first)",
        )


def _values(store: Store, kind: str, o: Mapping[str, Any], creating: bool, current: Row | None = None) -> dict:
    values: dict[str, Any] = {}
    if o.get("address"):
        address = validate.email_address(o["address"])
        values.update(address=address, address_lower=address.lower())
    _imap_values(values, o, creating, current)
    _smtp_values(values, o, current)
    _flag_values(values, o, creating)
    if kind == "group":
        _group_values(store, values, o)
    elif o.get("personal_folder"):
        owner_id = current["owner_id"] if current else get_user(store, o["user"])["id"]
        values["personal_folder_id"] = resolve_personal(store, owner_id, o["personal_folder"])["id"]
    return values


def _imap_values(values: dict, o: Mapping[str, Any], creating: bool, current: Row | None) -> None:
    if o.get("host"):
        values["host"] = validate.name(o["host"], "--host")
    security = o.get("security") or (current["security"] if current else "ssl")
    if o.get("security"):
        values["security"] = validate.choice(o["security"], SECURITY, "--security")
    if o.get("port"):
        values["port"] = _port(o["port"], "--port")
    elif creating or o.get("security"):
        values["port"] = DEFAULT_PORTS[security]
    if o.get("username"):
        values["username"] = o["username"]
    if o.get("folders"):
        folders = [validate.name(f, "--folder") for f in o["folders"]]
        values["folders"] = json.dumps(list(dict.fromkeys(folders)))
    if o.get("fetch_since"):
        values["fetch_since"] = _date(o["fetch_since"])
    elif creating:
        values["fetch_since"] = timeutil.now().date().isoformat()
    if o.get("store_sent"):
        values["store_sent"] = validate.name(o["store_sent"], "--store-sent")


def _smtp_values(values: dict, o: Mapping[str, Any], current: Row | None) -> None:
    if o.get("smtp_host"):
        values["smtp_host"] = validate.name(o["smtp_host"], "--smtp-host")
    security = o.get("smtp_security") or (current["smtp_security"] if current else None) or "starttls"
    if o.get("smtp_security"):
        values["smtp_security"] = validate.choice(o["smtp_security"], SECURITY, "--smtp-security")
    elif o.get("smtp_host") and not (current and current["smtp_security"]):
        values["smtp_security"] = security
    if o.get("smtp_port"):
        values["smtp_port"] = _port(o["smtp_port"], "--smtp-port")
    elif o.get("smtp_host") or o.get("smtp_security"):
        values["smtp_port"] = (current["smtp_port"] if current and not o.get("smtp_security") else None) or SMTP_PORTS[
            security
        ]
    if o.get("smtp_username"):
        values["smtp_username"] = o["smtp_username"]


def _flag_values(values: dict, o: Mapping[str, Any], creating: bool) -> None:
    for key, column in (
        ("active", "is_active"),
        ("mark_seen", "mark_seen"),
        ("insecure", "insecure"),
        ("add_team_users", "add_team_users"),
        ("create_case", "create_case"),
        ("auto_reply", "auto_reply"),
        ("smtp_shared", "smtp_shared"),
    ):
        if o.get(key) is not None:
            values[column] = bool(o[key])


def _group_values(store: Store, values: dict, o: Mapping[str, Any]) -> None:
    if o.get("distribution"):
        values["distribution"] = validate.choice(o["distribution"], DISTRIBUTIONS, "--distribution")
    if o.get("target_team"):
        values["target_team_id"] = get_team(store, o["target_team"])["id"]
    if o.get("target_position") is not None:
        values["target_position"] = o["target_position"] or None
    if o.get("assign_user"):
        values["assign_user_id"] = get_user(store, o["assign_user"])["id"]
    if o.get("group_folder"):
        values["group_folder_id"] = resolve_group(store, o["group_folder"])["id"]
    if o.get("reply_subject") is not None:
        values["reply_subject"] = templates.check(o["reply_subject"], "--reply-subject")
    if o.get("reply_body_file"):
        values["reply_body"] = templates.check(_read_body(o["reply_body_file"]), "--reply-body-file")
    for key in ("reply_from_address", "reply_to_address"):
        if o.get(key):
            values[key] = validate.email_address(o[key])
    if o.get("reply_from_name") is not None:
        values["reply_from_name"] = o["reply_from_name"] or None


def _apply_relations(store: Store, account_id: int, kind: str, o: Mapping[str, Any]) -> None:
    if kind == "group" and o.get("teams"):
        q.set_teams(store, account_id, [get_team(store, t)["id"] for t in o["teams"]])


def _apply_secrets(store: Store, account_id: int, name: str, o: Mapping[str, Any], creating: bool) -> None:
    for protocol, column, prefix in (
        ("imap", "secret_ref", "password"),
        ("smtp", "smtp_secret_ref", "smtp_password"),
    ):
        ref, secret = secrets.choose(
            name, protocol, o.get(f"{prefix}_cmd"), o.get(f"{prefix}_env"), o.get(f"{prefix}_stdin")
        )
        if ref is None:
            if creating and protocol == "imap":
                raise InvalidInput("give the password with --password-cmd, --password-env or --password-stdin")
            continue
        if secret is not None:
            secrets.store_in_keyring(ref, secret)
        q.update_account(store, account_id, {column: ref.to_json()})


def _check_consistency(store: Store, account: Row) -> None:
    """Rules that involve several options (checked after every add or update)."""
    distribution = account["distribution"]
    if account["kind"] == "group":
        if distribution in ("round-robin", "least-busy") and not account["target_team_id"]:
            raise InvalidInput(f"--distribution {distribution} needs --target-team")
        if distribution == "direct" and not account["assign_user_id"]:
            raise InvalidInput("--distribution direct needs --assign-user")
        if account["target_position"]:
            team = people_q.team_by_id(store, account["target_team_id"]) if account["target_team_id"] else None
            if team is None or account["target_position"] not in json.loads(team["positions"]):
                raise InvalidInput(
                    f"--target-position {account['target_position']} is not a position of the target team"
                )
        if account["auto_reply"] and not (account["reply_subject"] and account["reply_body"]):
            raise InvalidInput("--auto-reply needs --reply-subject and --reply-body-file")
    if account["smtp_username"] and not account["smtp_secret_ref"]:
        raise InvalidInput(
            "--smtp-username needs a password: --smtp-password-cmd, --smtp-password-env or --smtp-password-stdin"
        )
    if account["store_sent"] and not account["smtp_host"]:
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
    if not actor.is_admin and account["owner_id"] != actor.user_id:
        access.require(actor, "account.manage", account_facts(store, account), f"see mail account '{name}'")
    result = account_dict(store, account)
    result["fetch_state"] = [
        {k: row[k] for k in ("folder", "uidvalidity", "last_uid", "last_date", "by_date", "uidnext")}
        for row in q.folder_states(store, account["id"])
    ]
    return result


def remove_account(store: Store, actor: Actor, name: str) -> dict:
    with store.atomic():
        account = get_account(store, name)
        require_manage(store, actor, account, account["kind"], account["owner_id"])
        result = account_dict(store, account)
        q.delete_account(store, account["id"])
    secrets.delete_from_keyring(secrets.SecretRef.from_json(account["secret_ref"]))
    secrets.delete_from_keyring(secrets.SecretRef.from_json(account["smtp_secret_ref"]))
    return result


def reset_account(store: Store, actor: Actor, name: str, since: str) -> dict:
    """Forget the fetch state: the next fetch starts again at ``since`` (duplicates are absorbed)."""
    with store.atomic():
        account = get_account(store, name)
        require_manage(store, actor, account, account["kind"], account["owner_id"])
        q.forget_state(store, account["id"])
        q.update_account(store, account["id"], {"fetch_since": _date(since)})
        return account_dict(store, q.account_by_id(store, account["id"]))


def open_imap(account: Row, settings: Settings):  # noqa: ANN201 - an ImapSession
    """Log in to an account's IMAP server (the password resolved now, never stored)."""
    from espomail.mail.imap import ImapSession

    password = secrets.resolve(secrets.SecretRef.from_json(account["secret_ref"]), account["name"], settings.timeout_s)
    return ImapSession(
        account["host"],
        account["port"],
        account["security"],
        account["username"],
        password,
        settings.timeout_s,
        bool(account["insecure"]),
    )


def test_account(store: Store, actor: Actor, settings: Settings, name: str) -> dict:
    """Log in, list folders, check the monitored ones exist (and try SMTP when configured)."""
    account = get_account(store, name)
    require_manage(store, actor, account, account["kind"], account["owner_id"])
    result: dict[str, Any] = {"account": name, "ok": False, "imap": None, "smtp": None}
    try:
        with open_imap(account, settings) as session:
            folders = session.list_folders()
        monitored = json.loads(account["folders"])
        missing = [f for f in monitored if f not in folders and f.upper() != "INBOX"]
        result["imap"] = {"ok": not missing, "folders": folders, "missing_folders": missing}
        if missing:
            result["imap"]["error"] = (
                f"monitored folder(s) {', '.join(missing)} not on the server; "
                f"fix with 'espomail account update {name} --folder F'"
            )
    except EspomailError as exc:
        result["imap"] = {"ok": False, "error": exc.message}
    if account["smtp_host"]:
        result["smtp"] = _test_smtp(account, settings)
    result["ok"] = bool(result["imap"]["ok"] and (result["smtp"] is None or result["smtp"]["ok"]))
    return result


def _test_smtp(account: Row, settings: Settings) -> dict:
    from espomail.mail import smtp

    try:
        smtp.check(smtp.SmtpConfig.from_account(account, settings), settings.timeout_s)
        return {"ok": True}
    except (MailServerError, EspomailError) as exc:
        return {"ok": False, "error": exc.message}
