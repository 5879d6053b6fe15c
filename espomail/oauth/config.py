"""An account's OAuth2 settings: the provider preset or custom endpoints, the client, the token storage.

``OAuthConfig.from_options`` validates the ``--oauth-*`` options of SPEC 12 and raises
InvalidInput naming the option at fault; nothing is written anywhere before it succeeds.
``to_json``/``from_json`` give the text to keep beside the account: it holds no secret (the
client secret is a reference to an environment variable or a command, as for passwords).
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from espomail.errors import InvalidInput
from espomail.secrets import SecretRef

MICROSOFT_SCOPES = (
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",
)
GOOGLE_SCOPES = ("https://mail.google.com/",)
DEFAULT_TENANT = "organizations"
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Provider(enum.StrEnum):
    MICROSOFT = "microsoft"
    GOOGLE = "google"
    CUSTOM = "custom"


@dataclass(frozen=True)
class Endpoints:
    token_url: str
    device_url: str | None
    auth_url: str | None
    scopes: tuple[str, ...]
    auth_params: tuple[tuple[str, str], ...] = ()  # extra parameters of the authorization URL

    @property
    def scope(self) -> str | None:
        """The space-separated ``scope`` parameter, or None to send none (custom without scopes)."""
        return " ".join(self.scopes) or None


def microsoft_endpoints(tenant: str) -> Endpoints:
    """Microsoft identity platform v2 for ``tenant`` (organizations, common, a domain or a GUID)."""
    base = f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
    return Endpoints(f"{base}/token", f"{base}/devicecode", f"{base}/authorize", MICROSOFT_SCOPES)


GOOGLE = Endpoints(
    token_url="https://oauth2.googleapis.com/token",
    device_url="https://oauth2.googleapis.com/device/code",
    auth_url="https://accounts.google.com/o/oauth2/v2/auth",
    scopes=GOOGLE_SCOPES,
    # Google gives a refresh token only with access_type=offline, and again on a new
    # authorization only with prompt=consent.
    auth_params=(("access_type", "offline"), ("prompt", "consent")),
)


@dataclass(frozen=True)
class OAuthConfig:
    """Everything needed to talk to the provider for one account; no secret inside."""

    provider: Provider
    client_id: str
    client_secret: SecretRef | None = None  # method env|cmd; None for a public client
    tenant: str | None = None  # microsoft only
    token_url: str | None = None  # custom only
    device_url: str | None = None
    auth_url: str | None = None
    scopes: tuple[str, ...] = ()
    token_file: Path | None = None  # None: the system keyring

    # -- building ------------------------------------------------------------------------
    @classmethod
    def from_options(
        cls,
        *,
        provider: str | None,
        client_id: str | None,
        client_secret_env: str | None = None,
        client_secret_cmd: str | None = None,
        tenant: str | None = None,
        token_url: str | None = None,
        device_url: str | None = None,
        auth_url: str | None = None,
        scopes: tuple[str, ...] | list[str] = (),
        token_file: str | Path | None = None,
    ) -> OAuthConfig:
        """Validate the ``--oauth-*`` options; InvalidInput names the first one at fault."""
        chosen = _provider(provider)
        if not client_id or not client_id.strip():
            raise InvalidInput("--oauth-client-id is required with --auth oauth2")
        urls = {"--oauth-token-url": token_url, "--oauth-device-url": device_url, "--oauth-auth-url": auth_url}
        if chosen is Provider.CUSTOM:
            if not token_url:
                raise InvalidInput("--oauth-token-url is required with --oauth-provider custom")
            for option, url in urls.items():
                _check_url(option, url)
            for scope in scopes:
                if not scope or any(c.isspace() for c in scope):
                    raise InvalidInput(f"--oauth-scope {scope!r} is not one scope (no spaces; repeat the option)")
        else:
            given = [option for option, url in urls.items() if url] + (["--oauth-scope"] if scopes else [])
            if given:
                raise InvalidInput(f"{given[0]} applies only to --oauth-provider custom (the {chosen} preset has it)")
        if tenant is not None and chosen is not Provider.MICROSOFT:
            raise InvalidInput("--oauth-tenant applies only to --oauth-provider microsoft")
        if tenant is not None and not _TENANT.match(tenant):
            raise InvalidInput(f"--oauth-tenant {tenant!r} is not a tenant (organizations, common, a domain or an id)")
        return cls(
            provider=chosen,
            client_id=client_id.strip(),
            client_secret=_secret_ref(client_secret_env, client_secret_cmd),
            tenant=(tenant or DEFAULT_TENANT) if chosen is Provider.MICROSOFT else None,
            token_url=token_url or None,
            device_url=device_url or None,
            auth_url=auth_url or None,
            scopes=tuple(scopes) if chosen is Provider.CUSTOM else (),
            token_file=_token_file(token_file),
        )

    def endpoints(self) -> Endpoints:
        if self.provider is Provider.MICROSOFT:
            return microsoft_endpoints(self.tenant or DEFAULT_TENANT)
        if self.provider is Provider.GOOGLE:
            return GOOGLE
        assert self.token_url is not None
        return Endpoints(self.token_url, self.device_url, self.auth_url, self.scopes)

    # -- storing beside the account ------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(self.describe(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> OAuthConfig:
        data = json.loads(text)
        secret = data.get("client_secret")
        return cls(
            provider=Provider(data["provider"]),
            client_id=data["client_id"],
            client_secret=SecretRef(secret["method"], secret["value"]) if secret else None,
            tenant=data.get("tenant"),
            token_url=data.get("token_url"),
            device_url=data.get("device_url"),
            auth_url=data.get("auth_url"),
            scopes=tuple(data.get("scopes") or ()),
            token_file=Path(data["token_file"]) if data.get("token_file") else None,
        )

    def describe(self) -> dict[str, Any]:
        """Safe to show (``account show``): where the secret and the tokens live, not what they are."""
        secret = None
        if self.client_secret is not None:
            secret = {"method": self.client_secret.method, "value": self.client_secret.value}
        return {
            "provider": str(self.provider),
            "client_id": self.client_id,
            "client_secret": secret,
            "tenant": self.tenant,
            "token_url": self.token_url,
            "device_url": self.device_url,
            "auth_url": self.auth_url,
            "scopes": list(self.scopes),
            "token_file": str(self.token_file) if self.token_file else None,
        }


def _provider(value: str | None) -> Provider:
    if not value:
        raise InvalidInput("--oauth-provider is required with --auth oauth2 (microsoft, google or custom)")
    try:
        return Provider(value.strip().lower())
    except ValueError:
        raise InvalidInput(f"unknown --oauth-provider {value!r}: use microsoft, google or custom") from None


def _secret_ref(env: str | None, cmd: str | None) -> SecretRef | None:
    if env is not None and cmd is not None:
        raise InvalidInput("give only one of --oauth-client-secret-env, --oauth-client-secret-cmd")
    if env is not None:
        if not _ENV_NAME.match(env.strip()):
            raise InvalidInput("--oauth-client-secret-env takes the NAME of an environment variable")
        return SecretRef("env", env.strip())
    if cmd is not None:
        if not cmd.strip():
            raise InvalidInput("--oauth-client-secret-cmd must not be empty")
        return SecretRef("cmd", cmd)
    return None


def _check_url(option: str, url: str | None) -> None:
    """https://, or http:// to this machine (test and local servers)."""
    if url is None:
        return
    parts = urlsplit(url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and local)):
        raise InvalidInput(f"{option} must be an https:// URL (http:// only for 127.0.0.1), not {url!r}")


def _token_file(value: str | Path | None) -> Path | None:
    if value is None:
        return None
    if not str(value).strip():
        raise InvalidInput("--oauth-token-file must not be empty")
    path = Path(value).expanduser().absolute()  # cron starts in another directory
    if not path.parent.is_dir():
        raise InvalidInput(f"--oauth-token-file: the directory {path.parent} does not exist; create it first")
    if path.is_dir():
        raise InvalidInput(f"--oauth-token-file: {path} is a directory; give a file name")
    return path
