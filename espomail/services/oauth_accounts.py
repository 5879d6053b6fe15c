"""OAuth2 mail accounts (SPEC 12): the ``--auth``/``--oauth-*`` options, where the tokens live, authorizing.

services/accounts.py calls in here:

- ``AuthChange.plan(...)`` when an account is added or updated: checks ``--auth`` and the
  ``--oauth-*`` options before anything is written and gives the columns to set;
  ``prepare(store)`` runs last inside the transaction (the token store is usable, a token file
  is not another account's, saved tokens follow a new storage); ``finish()`` runs after the
  commit (keyring entries no longer used are deleted) and returns notes for the user;
- ``token_manager(account, timeout)``: the TokenProvider of an account's IMAP and SMTP logins;
- ``authorize(...)``: the device, browser or stdin flow of ``espomail account authorize``;
- ``forget_tokens(account)`` when an account is removed.

The store keeps ``OAuthConfig.to_json()`` (provider, client id, endpoints, where the client
secret is read, where the tokens are kept): never a token, never a client secret.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from espomail import secrets, validate
from espomail.errors import InvalidInput, SecretError
from espomail.model import AccountChanges, AuthFlow, AuthMethod, MailAccount
from espomail.oauth.config import OAuthConfig, Provider
from espomail.oauth.errors import AuthorizationExpired, NotAuthorized
from espomail.oauth.storage import TokenStore, token_store
from espomail.policy import access
from espomail.policy.access import Actor
from espomail.store import accounts as q
from espomail.store.db import Store

if TYPE_CHECKING:
    from espomail.oauth.flows import DevicePrompt
    from espomail.oauth.tokens import TokenManager

AUTH_METHODS = tuple(m.value for m in AuthMethod)


def option_name(field: str) -> str:
    """``oauth_scopes`` -> ``--oauth-scope``, ``password_stdin`` -> ``--password-stdin``."""
    return "--" + field.removesuffix("s" if field == "oauth_scopes" else "").replace("_", "-")


def config_of(account: MailAccount) -> OAuthConfig:
    """The OAuthConfig of an OAuth2 account; InvalidInput for a password account."""
    if not account.uses_oauth or not account.oauth_config:
        raise InvalidInput(
            f"account '{account.name}' signs in with a password; to use OAuth2 run 'espomail account update "
            f"{account.name} --auth oauth2 --oauth-provider P --oauth-client-id ID' first"
        )
    return OAuthConfig.from_json(account.oauth_config)


def describe(account: MailAccount) -> dict[str, Any] | None:
    """The OAuth2 settings safe to show: where the client secret and the tokens are, never what they are.

    ``tenant`` for microsoft, the endpoints and scopes for custom; the presets' are in the code.
    """
    if not account.uses_oauth or not account.oauth_config:
        return None
    config = OAuthConfig.from_json(account.oauth_config)
    full = config.describe()
    shown = {"provider": full["provider"], "client_id": full["client_id"]}
    shown["client_secret"] = config.client_secret.describe() if config.client_secret else None
    if config.provider is Provider.MICROSOFT:
        shown["tenant"] = config.tenant
    if config.provider is Provider.CUSTOM:
        shown.update({key: full[key] for key in ("token_url", "device_url", "auth_url", "scopes")})
    shown["token_storage"] = "file" if config.token_file else "keyring"
    shown["token_file"] = full["token_file"]
    return shown


def token_manager(account: MailAccount, timeout: float) -> TokenManager:
    """What the IMAP and SMTP logins of an OAuth2 account ask for access tokens."""
    from espomail.oauth.tokens import TokenManager

    return TokenManager.for_account(config_of(account), account.name, timeout)


def authorization_errors(name: str) -> tuple[str, str]:
    """The errors a fetch records when the account needs ``espomail account authorize``."""
    return AuthorizationExpired(name).message, NotAuthorized(name).message


def authorization_problem(account: MailAccount) -> str | None:
    """For ``status``: why an OAuth2 account cannot sign in without a new authorization, if it cannot."""
    if not account.uses_oauth:
        return None
    if account.last_error in authorization_errors(account.name):
        return account.last_error
    config = config_of(account)
    try:
        saved = token_store(config.token_file, account.name).load()
    except SecretError as exc:
        return exc.message
    return None if saved is not None else NotAuthorized(account.name).message


def forget_tokens(account: MailAccount) -> list[str]:
    """After the account is gone: delete its keyring entry; a token file (the user's path) stays, said in a note."""
    if not account.uses_oauth or not account.oauth_config:
        return []
    return _forget(OAuthConfig.from_json(account.oauth_config), account.name)


def _forget(config: OAuthConfig, name: str) -> list[str]:
    if config.token_file is not None:
        if not config.token_file.exists():
            return []
        return [f"the token file {config.token_file} was left in place; delete it if nothing else uses it"]
    token_store(None, name).delete()
    return []


# -- authorizing ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AuthorizeUI:
    """How ``account authorize`` talks to the person (the CLI prints; tests record)."""

    show_device: Callable[[DevicePrompt], None]
    show_url: Callable[[str], None]
    open_browser: bool = True


def default_flow(config: OAuthConfig) -> AuthFlow:
    """The device flow when the provider has one that allows mail scopes, else the browser."""
    if config.provider is Provider.GOOGLE:
        return AuthFlow.BROWSER  # Google's device flow does not allow the https://mail.google.com/ scope
    return AuthFlow.DEVICE if config.endpoints().device_url else AuthFlow.BROWSER


def authorize(
    account: MailAccount, timeout: float, flow: AuthFlow | None, ui: AuthorizeUI, refresh_token: str | None
) -> dict[str, Any]:
    """Run one flow; the tokens are saved only when it succeeds. Returns what to show (never a token)."""
    from espomail.oauth.flows import Authorizer

    config = config_of(account)
    flow = flow or default_flow(config)
    authorizer = Authorizer.for_account(config, account.name, timeout)
    if flow is AuthFlow.DEVICE:
        result = authorizer.device(ui.show_device)
    elif flow is AuthFlow.BROWSER:
        result = authorizer.browser(ui.show_url, **({} if ui.open_browser else {"open_browser": None}))
    else:
        result = authorizer.refresh_token(refresh_token or "")
    return {
        "account": account.name,
        "flow": str(flow),
        "token_storage": "file" if config.token_file else "keyring",
        "token_file": str(config.token_file) if config.token_file else None,
        "scope": result.scope,
    }


# -- adding and updating ----------------------------------------------------------------------


@dataclasses.dataclass
class AuthChange:
    """How an add or update changes the way an account signs in, and what follows from it."""

    name: str
    before: AuthMethod | None  # None: a new account
    after: AuthMethod
    old_config: OAuthConfig | None
    new_config: OAuthConfig | None
    old_password_refs: tuple[str | None, ...] = ()
    notes: list[str] = dataclasses.field(default_factory=list)
    _authorized: bool = False

    @classmethod
    def plan(cls, actor: Actor, name: str, c: AccountChanges, current: MailAccount | None) -> AuthChange:
        """Check ``--auth`` and the ``--oauth-*`` options against the account; InvalidInput names the option."""
        if c.auth:
            after = AuthMethod(validate.choice(c.auth.lower(), AUTH_METHODS, "--auth"))
        else:
            after = current.auth if current else AuthMethod.PASSWORD
        old = OAuthConfig.from_json(current.oauth_config) if current and current.uses_oauth else None
        refs = (current.secret_ref, current.smtp_secret_ref) if current else ()
        change = cls(name, current.auth if current else None, after, old, old, refs)
        if after is AuthMethod.PASSWORD:
            change._check_password(c)
            change.new_config = None
        else:
            change.new_config = change._oauth_config(actor, c)
        return change

    def _check_password(self, c: AccountChanges) -> None:
        for given in c.given_oauth_options():
            raise InvalidInput(f"{option_name(given)} applies only with --auth oauth2")
        if self.before is AuthMethod.OAUTH2 and not (c.password_cmd or c.password_env or c.password_stdin):
            raise InvalidInput("--auth password needs the password: --password-cmd, --password-env or --password-stdin")

    def _oauth_config(self, actor: Actor, c: AccountChanges) -> OAuthConfig:
        for given in c.given_password_options():
            raise InvalidInput(
                f"{option_name(given)} does not apply to an OAuth2 account: it signs in with tokens from "
                f"'espomail account authorize {self.name}' (use --auth password to go back to passwords)"
            )
        for option, value in (
            ("--oauth-client-secret-cmd", c.oauth_client_secret_cmd),
            ("--oauth-client-secret-env", c.oauth_client_secret_env),
            ("--oauth-token-file", c.oauth_token_file),
        ):
            if value is not None:
                what = f"set {option} of account '{self.name}' (the administrator's fetch runs or reads it)"
                access.require(actor, "secret.command", access.SecretFacts(option), what)
        if self.old_config is not None and not c.given_oauth_options():
            return self.old_config
        return OAuthConfig.from_options(**_merged_options(c, self.old_config))

    # -- the columns ---------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        if self.before is self.after and self.new_config == self.old_config:
            return {}
        values: dict[str, Any] = {
            "auth": self.after,
            "oauth_config": self.new_config.to_json() if self.new_config else None,
        }
        if self.after is AuthMethod.OAUTH2:
            values.update(secret_ref=None, smtp_secret_ref=None)  # passwords no longer used
        return values

    # -- inside the transaction, after every other check ----------------------------------------
    def prepare(self, store: Store) -> None:
        """Check the token store and move saved tokens to a new storage; the last step before the commit."""
        config = self.new_config
        if self.after is not AuthMethod.OAUTH2 or config is None:
            return
        if config.token_file is not None:
            _check_token_file_free(store, self.name, config.token_file)
        target = token_store(config.token_file, self.name)
        self._authorized = target.load() is not None  # SecretError: no keyring, a token file others can read
        old = self.old_config
        if old is None or old.token_file == config.token_file:
            return
        if self._authorized or _client_changed(old, config):
            return
        self._authorized = _move_tokens(token_store(old.token_file, self.name), target)
        if self._authorized:
            self.notes.append(f"the saved authorization moved to the {target.describe()}")

    # -- after the commit ------------------------------------------------------------------------
    def finish(self) -> list[str]:
        """Delete what the account no longer uses (keyring entries); notes for the user."""
        old, new = self.old_config, self.new_config
        if self.after is AuthMethod.OAUTH2 and self.before is AuthMethod.PASSWORD:
            for ref in self.old_password_refs:
                secrets.delete_from_keyring(secrets.SecretRef.from_json(ref))
        if old is not None and (new is None or old.token_file != new.token_file):
            self.notes += _forget(old, self.name)
        if new is not None and old is not None and _client_changed(old, new) and self._authorized:
            self.notes.append(
                f"the OAuth2 provider or client changed: run 'espomail account authorize {self.name}' again"
            )
        elif new is not None and not self._authorized:
            self.notes.append(f"next: run 'espomail account authorize {self.name}' to sign in to the mailbox")
        return self.notes


def _merged_options(c: AccountChanges, old: OAuthConfig | None) -> dict[str, Any]:
    """The options of OAuthConfig.from_options: the given ones over the account's current ones.

    A new provider starts afresh (the endpoints, tenant, client and secret of another provider
    do not carry over); the token storage always does.
    """
    provider = (c.oauth_provider or "").strip().lower() or None
    keep = old is not None and provider in (None, old.provider)
    base: dict[str, Any] = {"provider": provider or (old.provider if old else None), "scopes": ()}
    if old is not None:
        base["token_file"] = old.token_file
    if keep:
        secret = old.client_secret
        base.update(
            client_id=old.client_id,
            client_secret_env=secret.value if secret and secret.method == "env" else None,
            client_secret_cmd=secret.value if secret and secret.method == "cmd" else None,
            tenant=old.tenant,
            token_url=old.token_url,
            device_url=old.device_url,
            auth_url=old.auth_url,
            scopes=old.scopes,
        )
    given = {
        "client_id": c.oauth_client_id,
        "tenant": c.oauth_tenant,
        "token_url": c.oauth_token_url,
        "device_url": c.oauth_device_url,
        "auth_url": c.oauth_auth_url,
        "token_file": c.oauth_token_file,
    }
    base.update({key: value for key, value in given.items() if value is not None})
    if c.oauth_scopes:
        base["scopes"] = c.oauth_scopes
    if c.oauth_client_secret_env is not None or c.oauth_client_secret_cmd is not None:
        base.update(client_secret_env=c.oauth_client_secret_env, client_secret_cmd=c.oauth_client_secret_cmd)
    return base


def _client_changed(old: OAuthConfig, new: OAuthConfig) -> bool:
    """A grant belongs to one client of one provider: another one cannot use it."""
    return (old.provider, old.client_id, old.tenant, old.token_url) != (
        new.provider,
        new.client_id,
        new.tenant,
        new.token_url,
    )


def _check_token_file_free(store: Store, name: str, path: Path) -> None:
    for other, text in q.oauth_configs(store).items():
        if other != name and text and OAuthConfig.from_json(text).token_file == path:
            raise InvalidInput(
                f"--oauth-token-file {path} is the token file of account '{other}'; give each account its own file"
            )


def _move_tokens(source: TokenStore, target: TokenStore) -> bool:
    """Copy the saved grant to the new storage (the old one is cleaned up after the commit)."""
    try:
        saved = source.load()
    except SecretError:
        return False  # the old storage cannot be read (no keyring here): authorize again
    if saved is None:
        return False
    with target.lock():
        target.save(saved)
    return True
