"""Where an account's tokens live: the system keyring, or a token file for headless servers.

What is kept is one JSON object: the refresh token and the cached access token with its
expiry. A token file is created with mode 0600 and replaced atomically and durably (a new
file in the same directory, fsync, rename over the old one, fsync of the directory), so a
crash leaves either the old tokens or the new ones, never half a file. Each store also
gives a cross-process lock, so that two espomail processes never spend the same rotating
refresh token (the second one would present a token the server has already replaced).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from espomail.errors import SecretError
from espomail.secrets import SERVICE


@dataclass(frozen=True)
class StoredToken:
    """The saved grant of one account. ``repr`` never shows the tokens."""

    refresh_token: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # epoch seconds; None: unknown, use once and refresh
    obtained_at: float | None = None
    scope: str | None = None

    def access_valid(self, now: float, margin: float) -> bool:
        """The cached access token is still good for at least ``margin`` seconds (a quarter of its life at most)."""
        if not self.access_token or self.expires_at is None:
            return False
        lifetime = self.expires_at - (self.obtained_at or self.expires_at)
        return now < self.expires_at - min(margin, max(lifetime, 0) / 4)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StoredToken:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("refresh_token"), str) or not data["refresh_token"]:
            raise ValueError("no refresh token")
        return cls(
            refresh_token=data["refresh_token"],
            access_token=_text_or_none(data.get("access_token")),
            expires_at=_number_or_none(data.get("expires_at")),
            obtained_at=_number_or_none(data.get("obtained_at")),
            scope=_text_or_none(data.get("scope")),
        )


def _number_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class TokenStore(Protocol):
    def load(self) -> StoredToken | None: ...

    def save(self, token: StoredToken) -> None: ...

    def delete(self) -> None: ...

    def lock(self) -> contextlib.AbstractContextManager[None]: ...

    def describe(self) -> str: ...


class FileTokenStore:
    """A JSON file only its owner can read, for servers where no keyring daemon runs (cron)."""

    def __init__(self, path: Path, account: str) -> None:
        self.path = Path(path)
        self.account = account

    def describe(self) -> str:
        return f"token file {self.path}"

    def load(self) -> StoredToken | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretError(f"cannot read the token file {self.path} ({exc.strerror})") from None
        with os.fdopen(fd, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise SecretError(
                    f"the token file {self.path} can be read by other users (mode {stat.S_IMODE(mode):04o}); "
                    f"run 'chmod 600 {self.path}'"
                )
            text = handle.read().decode("utf-8", "replace")
        try:
            return StoredToken.from_json(text)
        except ValueError:
            raise SecretError(
                f"the token file {self.path} is damaged; run 'espomail account authorize {self.account}'"
            ) from None

    def save(self, token: StoredToken) -> None:
        """Write a new file beside the old one, fsync it, rename it over, fsync the directory."""
        directory = self.path.parent
        fd, temporary = _private_temporary(directory, self.path.name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(token.to_json().encode())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
            temporary = None
            _fsync_directory(directory)
        except OSError as exc:
            raise SecretError(f"cannot write the token file {self.path} ({exc.strerror or exc})") from None
        finally:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)

    def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
            _fsync_directory(self.path.parent)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with _flock(self.path.with_name(self.path.name + ".lock")):
            yield


class KeyringTokenStore:
    """One keyring entry per account: service ``espomail``, entry ``NAME/oauth2``."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.entry = f"{account}/oauth2"

    def describe(self) -> str:
        return f"keyring ({SERVICE}/{self.entry})"

    def load(self) -> StoredToken | None:
        keyring = _keyring()
        try:
            text = keyring.get_password(SERVICE, self.entry)
        except Exception as exc:  # noqa: BLE001 - every backend raises its own errors
            raise SecretError(
                f"cannot read the system keyring ({type(exc).__name__}); under cron no keyring daemon may run: "
                f"use 'espomail account update {self.account} --oauth-token-file PATH' and authorize again"
            ) from None
        if not text:
            return None
        try:
            return StoredToken.from_json(text)
        except ValueError:
            raise SecretError(
                f"the keyring entry {SERVICE}/{self.entry} is damaged; run 'espomail account authorize {self.account}'"
            ) from None

    def save(self, token: StoredToken) -> None:
        keyring = _keyring()
        try:
            keyring.set_password(SERVICE, self.entry, token.to_json())
        except Exception as exc:  # noqa: BLE001
            raise SecretError(
                f"could not save the OAuth2 tokens in the system keyring ({type(exc).__name__}); on a server "
                "without a keyring use --oauth-token-file PATH"
            ) from None

    def delete(self) -> None:
        try:
            _keyring().delete_password(SERVICE, self.entry)
        except Exception:  # noqa: BLE001 - already gone or no backend: nothing to clean
            pass

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        digest = hashlib.sha256(self.entry.encode()).hexdigest()[:24]
        with _flock(_lock_directory() / f"oauth2-{digest}.lock"):
            yield


def token_store(token_file: Path | None, account: str) -> TokenStore:
    """The token file when one is configured, else the keyring."""
    if token_file is not None:
        return FileTokenStore(token_file, account)
    return KeyringTokenStore(account)


# -- files and locks ---------------------------------------------------------------------
def _private_temporary(directory: Path, name: str) -> tuple[int, str]:
    try:
        return tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)  # mode 0600, O_EXCL
    except OSError as exc:
        raise SecretError(f"cannot write a token file in {directory} ({exc.strerror})") from None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise SecretError(f"cannot create the lock file {path} ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _lock_directory() -> Path:
    """A directory only this user can write: $XDG_RUNTIME_DIR, else one in the temporary directory."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and os.path.isdir(runtime) else Path(tempfile.gettempdir())
    path = base / f"espomail-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        raise SecretError(f"cannot create the lock directory {path} ({exc.strerror})") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise SecretError(f"the lock directory {path} is not a private directory of this user; remove it")
    return path


def _keyring():  # noqa: ANN202 - the keyring module
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    chained = getattr(backend, "backends", None)
    if isinstance(backend, fail.Keyring) or type(backend).__name__ == "NullKeyring" or chained == []:
        raise SecretError(
            "no usable system keyring on this machine (a headless server?); keep the OAuth2 tokens in a "
            "file instead: --oauth-token-file PATH (created with mode 0600)"
        )
    return keyring
