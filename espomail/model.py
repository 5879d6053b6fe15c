"""The typed values that cross the layers: statuses as enums, a mail account as a dataclass.

Every status that is stored, compared or printed has one ``StrEnum`` here; a member *is*
its string, so SQL parameters, JSON output and the values read back from the store stay
exactly what they were (``EmailStatus.SENT == "Sent"``). ``MailAccount`` is a mail
account's settings, built by the store from its row; ``AccountChanges`` the options of
``account add-group``/``add-personal``/``update``. This module imports no other layer.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable, Mapping
from typing import Any


class EmailStatus(enum.StrEnum):
    """An email's status (EspoCRM's): fetched mail is Archived."""

    ARCHIVED = "Archived"
    SENT = "Sent"
    FAILED = "Failed"
    DRAFT = "Draft"
    SENDING = "Sending"


class ProcessingState(enum.StrEnum):
    """How far the import pipeline got with an email."""

    PENDING = "pending"
    PROCESSED = "processed"
    FAILED = "failed"
    FILTERED = "filtered"


class DeliveryState(enum.StrEnum):
    """One account (or one import) bringing one email."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    FILTERED = "filtered"
    DROPPED = "dropped"  # the loop guard: our own system mail coming back


UNFINISHED = (DeliveryState.PENDING, DeliveryState.FAILED)  # deliveries processing retries


class CaseStatus(enum.StrEnum):
    NEW = "New"
    ASSIGNED = "Assigned"
    PENDING = "Pending"
    CLOSED = "Closed"
    REJECTED = "Rejected"
    DUPLICATE = "Duplicate"


NOT_ACTUAL = (CaseStatus.CLOSED, CaseStatus.REJECTED, CaseStatus.DUPLICATE)  # not counted as open


class CasePriority(enum.StrEnum):
    LOW = "Low"
    NORMAL = "Normal"
    HIGH = "High"
    URGENT = "Urgent"


class Distribution(enum.StrEnum):
    """How a group account assigns its new cases (SPEC 5)."""

    NONE = "none"
    DIRECT = "direct"
    ROUND_ROBIN = "round-robin"
    LEAST_BUSY = "least-busy"


class Security(enum.StrEnum):
    """Transport security of an IMAP or SMTP connection."""

    SSL = "ssl"
    STARTTLS = "starttls"
    NONE = "none"


class FilterAction(enum.StrEnum):
    SKIP = "skip"
    MOVE_TO_FOLDER = "move-to-folder"
    MOVE_TO_GROUP_FOLDER = "move-to-group-folder"
    NONE = "none"


class FilterScope(enum.StrEnum):
    GLOBAL = "global"
    ACCOUNT = "account"
    USER = "user"


class AccessLevel(enum.StrEnum):
    """A role's reach over emails (read, edit, delete; group send uses no/team/all)."""

    NO = "no"
    OWN = "own"
    TEAM = "team"
    ALL = "all"


class Grant(enum.StrEnum):
    """A yes/no role field (email create, personal accounts)."""

    NO = "no"
    YES = "yes"


class FetchStatus(enum.StrEnum):
    """The outcome of fetching one account (a run row is ``running`` until it ends)."""

    OK = "ok"
    ERROR = "error"
    LOCKED = "locked"
    SKIPPED = "skipped"
    RUNNING = "running"


class AccountKind(enum.StrEnum):
    GROUP = "group"
    PERSONAL = "personal"


class FolderKind(enum.StrEnum):
    PERSONAL = "personal"
    GROUP = "group"


class AuthMethod(enum.StrEnum):
    """How an account logs in to IMAP and SMTP (SPEC 12)."""

    PASSWORD = "password"
    OAUTH2 = "oauth2"


class AuthFlow(enum.StrEnum):
    """How ``espomail account authorize`` obtains an OAuth2 grant."""

    DEVICE = "device"
    BROWSER = "browser"
    REFRESH_TOKEN = "refresh-token"


class WatchMode(enum.StrEnum):
    """How ``espomail watch`` follows one account folder (its heartbeat row's mode)."""

    IDLE = "idle"  # an IMAP IDLE connection: new mail is reported at once
    POLL = "poll"  # the server has no IDLE: a fetch every poll_interval_s
    CONNECTING = "connecting"  # (re)connecting, with backoff after an error


# -- how an email reaches a user -------------------------------------------------------------------


@dataclasses.dataclass
class UserState:
    """How the email reaches one user, and that user's per-email state (an email_users row)."""

    reason: str
    folder_id: int | None = None
    is_read: bool = False
    in_trash: bool = False
    skip_notification: bool = False
    is_sender: bool = False


# -- lists ------------------------------------------------------------------------------------------

COUNTED_AT_LEAST = 1000  # a list that is costly to count is counted this far (or to its page's end)


def counted_up_to(offset: int, limit: int) -> int:
    """How far a costly list is counted for its total: 1,000 rows, or the end of the page
    rounded up to a thousand; beyond that its total is "more than N" (docs/cli.md)."""
    end = offset + limit
    return max(COUNTED_AT_LEAST, -(-end // COUNTED_AT_LEAST) * COUNTED_AT_LEAST)


@dataclasses.dataclass
class Page:
    """A page of a list as a service gives it.

    ``total``: how many rows the whole list has (None: not counted), exactly, or (``exact``
    False) more than that many. ``next``: when the list offers a keyset cursor, ``next(n)``
    gives the ``n`` rows that follow this page's last one, as a Page (``--all`` reads on with
    it instead of OFFSET, which rereads every row it skips).
    """

    items: list
    total: int | None = None
    exact: bool = True
    next: Callable[[int], Page] | None = None


# -- mail accounts ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)  # compared by identity: no 40-field __eq__ to build at start-up
class MailAccount:
    """A mail account's settings (a mail_accounts row, typed)."""

    id: int
    name: str
    kind: AccountKind
    owner_id: int | None
    address: str
    address_lower: str
    is_active: bool
    host: str | None
    port: int | None
    security: Security
    insecure: bool
    username: str | None
    secret_ref: str | None  # secrets.SecretRef as JSON, never the secret
    folders: tuple[str, ...]
    fetch_since: str | None
    mark_seen: bool
    add_team_users: bool
    group_folder_id: int | None
    personal_folder_id: int | None
    folder_map: Mapping[str, int]  # IMAP folder -> personal folder id
    create_case: bool = False
    distribution: Distribution = Distribution.NONE
    target_team_id: int | None = None
    target_position: str | None = None
    assign_user_id: int | None = None
    auto_reply: bool = False
    reply_subject: str | None = None
    reply_body: str | None = None
    reply_from_address: str | None = None
    reply_from_name: str | None = None
    reply_to_address: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: Security | None = None
    smtp_username: str | None = None
    smtp_secret_ref: str | None = None
    smtp_shared: bool = False
    store_sent: str | None = None
    last_success_at: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    auth: AuthMethod = AuthMethod.PASSWORD
    oauth_config: str | None = None  # oauth.OAuthConfig as JSON (no secret, no token)

    @property
    def is_group(self) -> bool:
        return self.kind == AccountKind.GROUP

    @property
    def uses_oauth(self) -> bool:
        return self.auth == AuthMethod.OAUTH2

    @classmethod
    def from_row(cls, row: Any) -> MailAccount:  # noqa: ANN401 - a store row (read by column name)
        return cls(
            id=row["id"],
            name=row["name"],
            kind=AccountKind(row["kind"]),
            owner_id=row["owner_id"],
            address=row["address"],
            address_lower=row["address_lower"],
            is_active=bool(row["is_active"]),
            host=row["host"],
            port=row["port"],
            security=Security(row["security"]),
            insecure=bool(row["insecure"]),
            username=row["username"],
            secret_ref=row["secret_ref"],
            folders=tuple(json.loads(row["folders"] or "[]")),
            fetch_since=row["fetch_since"],
            mark_seen=bool(row["mark_seen"]),
            add_team_users=bool(row["add_team_users"]),
            group_folder_id=row["group_folder_id"],
            personal_folder_id=row["personal_folder_id"],
            folder_map=json.loads(row["folder_map"] or "{}"),
            create_case=bool(row["create_case"]),
            distribution=Distribution(row["distribution"]),
            target_team_id=row["target_team_id"],
            target_position=row["target_position"],
            assign_user_id=row["assign_user_id"],
            auto_reply=bool(row["auto_reply"]),
            reply_subject=row["reply_subject"],
            reply_body=row["reply_body"],
            reply_from_address=row["reply_from_address"],
            reply_from_name=row["reply_from_name"],
            reply_to_address=row["reply_to_address"],
            smtp_host=row["smtp_host"],
            smtp_port=row["smtp_port"],
            smtp_security=Security(row["smtp_security"]) if row["smtp_security"] else None,
            smtp_username=row["smtp_username"],
            smtp_secret_ref=row["smtp_secret_ref"],
            smtp_shared=bool(row["smtp_shared"]),
            store_sent=row["store_sent"],
            last_success_at=row["last_success_at"],
            last_error=row["last_error"],
            last_error_at=row["last_error_at"],
            auth=AuthMethod(row["auth"] or AuthMethod.PASSWORD),
            oauth_config=row["oauth_config"],
        )


@dataclasses.dataclass(frozen=True, eq=False)
class AccountChanges:
    """The options of ``account add-group``, ``add-personal`` and ``update``: None = not given.

    ``password_stdin``/``smtp_password_stdin`` hold a password read from stdin (kept out of
    ``repr``); ``*_cmd`` and ``*_env`` name where the password is read at fetch time.
    ``auth`` and the ``oauth_*`` options are SPEC 12's (``--auth oauth2``).
    """

    address: str | None = None
    host: str | None = None
    port: int | None = None
    security: str | None = None
    insecure: bool | None = None
    username: str | None = None
    password_cmd: str | None = None
    password_env: str | None = None
    password_stdin: str | None = dataclasses.field(default=None, repr=False)
    folders: tuple[str, ...] = ()
    fetch_since: str | None = None
    mark_seen: bool | None = None
    active: bool | None = None
    store_sent: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str | None = None
    smtp_username: str | None = None
    smtp_password_cmd: str | None = None
    smtp_password_env: str | None = None
    smtp_password_stdin: str | None = dataclasses.field(default=None, repr=False)
    # group accounts
    teams: tuple[str, ...] = ()
    add_team_users: bool | None = None
    group_folder: str | None = None
    create_case: bool | None = None
    distribution: str | None = None
    target_team: str | None = None
    target_position: str | None = None
    assign_user: str | None = None
    auto_reply: bool | None = None
    reply_subject: str | None = None
    reply_body_file: str | None = None
    reply_from_address: str | None = None
    reply_from_name: str | None = None
    reply_to_address: str | None = None
    smtp_shared: bool | None = None
    # personal accounts
    user: str | None = None
    personal_folder: str | None = None
    folder_map: tuple[str, ...] = ()  # IMAPFOLDER=FOLDER entries (FOLDER empty: remove the entry)
    # OAuth2 (SPEC 12)
    auth: str | None = None
    oauth_provider: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret_env: str | None = None
    oauth_client_secret_cmd: str | None = None
    oauth_tenant: str | None = None
    oauth_token_url: str | None = None
    oauth_device_url: str | None = None
    oauth_auth_url: str | None = None
    oauth_scopes: tuple[str, ...] = ()
    oauth_token_file: str | None = None

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

    OAUTH = (
        "oauth_provider",
        "oauth_client_id",
        "oauth_client_secret_env",
        "oauth_client_secret_cmd",
        "oauth_tenant",
        "oauth_token_url",
        "oauth_device_url",
        "oauth_auth_url",
        "oauth_scopes",
        "oauth_token_file",
    )
    PASSWORDS = (
        "password_cmd",
        "password_env",
        "password_stdin",
        "smtp_password_cmd",
        "smtp_password_env",
        "smtp_password_stdin",
    )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> AccountChanges:
        """From keyword options (the CLI's); an unknown name is a TypeError (a bug, not input)."""
        values = dict(options)
        for many in ("folders", "teams", "oauth_scopes", "folder_map"):
            values[many] = tuple(values.get(many) or ())
        return cls(**values)

    def given_oauth_options(self) -> list[str]:
        """The ``--oauth-*`` options that were given."""
        return [name for name in self.OAUTH if getattr(self, name) not in (None, ())]

    def given_password_options(self) -> list[str]:
        """The ``--password-*``/``--smtp-password-*`` options that were given."""
        return [name for name in self.PASSWORDS if getattr(self, name) is not None]

    def given_group_options(self) -> list[str]:
        """The group-only options that were given (refused for a personal account)."""
        return [name for name in self.GROUP_ONLY if getattr(self, name) not in (None, False, ())]
