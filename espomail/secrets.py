"""Passwords: the system keyring, a command run at fetch time, or an environment variable.

The database stores only a *reference* (which method, which keyring entry, which command
or variable), never the secret. Secrets never appear in logs, output or errors: error
messages name the method and the account, never what a command printed on stdout; a
failing command's first stderr line is quoted with anything secret-looking scrubbed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from espomail.errors import InvalidInput, SecretError

SERVICE = "espomail"
log = logging.getLogger("espomail.secrets")


@dataclass(frozen=True)
class SecretRef:
    method: str  # keyring | cmd | env
    value: str  # keyring entry name | command line | variable name
    # "admin" when an administrator set this command or variable; None when not recorded
    # (set before espomail recorded it). Who may run what: policy.access.may_run_secret_source.
    set_by: str | None = None

    def to_json(self) -> str:
        data = {"method": self.method, "value": self.value}
        if self.set_by:
            data["set_by"] = self.set_by
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | None) -> SecretRef | None:
        if not text:
            return None
        data = json.loads(text)
        return cls(data["method"], data["value"], data.get("set_by"))

    @property
    def runs_something(self) -> bool:
        """A command to run or a variable to read in the process that needs the secret."""
        return self.method in ("cmd", "env")

    def describe(self) -> str:
        """Safe to show: says where the secret comes from, never the secret."""
        if self.method == "keyring":
            return f"keyring ({SERVICE}/{self.value})"
        if self.method == "env":
            return f"env ${self.value}"
        return "command"


def choose(
    account: str, protocol: str, cmd: str | None, env: str | None, stdin_secret: str | None
) -> tuple[SecretRef | None, str | None]:
    """From the --password-* options, the reference to store and a secret to put in the keyring."""
    given = [x for x in (cmd, env, stdin_secret) if x is not None]
    if len(given) > 1:
        raise InvalidInput("give only one of --password-cmd, --password-env, --password-stdin")
    if cmd is not None:
        if not cmd.strip():
            raise InvalidInput("--password-cmd must not be empty")
        return SecretRef("cmd", cmd), None
    if env is not None:
        if not env.strip() or "=" in env:
            raise InvalidInput("--password-env takes the NAME of an environment variable")
        return SecretRef("env", env.strip()), None
    if stdin_secret is not None:
        secret = stdin_secret.rstrip("\r\n")
        if not secret:
            raise InvalidInput("--password-stdin read an empty password from standard input")
        return SecretRef("keyring", f"{account}/{protocol}"), secret
    return None, None


def store_in_keyring(ref: SecretRef, secret: str) -> None:
    keyring = _keyring()
    try:
        keyring.set_password(SERVICE, ref.value, secret)
    except Exception as exc:  # noqa: BLE001 - every backend raises its own errors
        raise SecretError(
            f"could not store the password in the system keyring ({type(exc).__name__}); "
            "on a server without a keyring use --password-cmd (e.g. 'cat /etc/espomail/support.pass') "
            "or --password-env"
        ) from None


class KeyringWrites:
    """Keyring entries a command will write, written as its last step and undone when the
    command fails after all (SPEC 11: a rejected command changes nothing anywhere).

    ``add`` only records; ``write`` reads each entry's current secret, then writes the new
    one; ``undo`` puts the old secrets back (or deletes entries that did not exist).
    """

    def __init__(self) -> None:
        self._pending: list[tuple[SecretRef, str]] = []
        self._written: list[tuple[SecretRef, str | None]] = []  # (entry, the secret it held before)

    def add(self, ref: SecretRef, secret: str) -> None:
        self._pending.append((ref, secret))

    def write(self) -> None:
        pending, self._pending = self._pending, []
        for ref, secret in pending:
            before = _current_secret(ref)
            store_in_keyring(ref, secret)
            self._written.append((ref, before))

    def undo(self) -> None:
        written, self._written = self._written, []
        for ref, before in reversed(written):
            try:
                if before is None:
                    _keyring().delete_password(SERVICE, ref.value)
                else:
                    _keyring().set_password(SERVICE, ref.value, before)
            except Exception as exc:  # noqa: BLE001 - every backend raises its own errors
                log.error("could not restore the keyring entry %s/%s (%s)", SERVICE, ref.value, type(exc).__name__)


@contextlib.contextmanager
def keyring_writes() -> Iterator[KeyringWrites]:
    """``with keyring_writes() as writes, store.atomic():`` ... ``writes.write()`` as the last
    step inside the transaction: if the commit (or anything after the write) fails, the
    keyring gets its old secrets back."""
    writes = KeyringWrites()
    try:
        yield writes
    except BaseException:
        writes.undo()
        raise


def _current_secret(ref: SecretRef) -> str | None:
    try:
        return _keyring().get_password(SERVICE, ref.value)
    except SecretError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise SecretError(
            f"cannot read the system keyring ({type(exc).__name__}), so the password was not changed; "
            "on a server without a keyring use --password-cmd or --password-env"
        ) from None


def delete_from_keyring(ref: SecretRef | None) -> None:
    if ref is None or ref.method != "keyring":
        return
    try:
        _keyring().delete_password(SERVICE, ref.value)
    except Exception:  # noqa: BLE001 - already gone or no backend: nothing to clean
        pass


def resolve(ref: SecretRef | None, account: str, timeout: float = 30) -> str:
    """The secret behind ``ref``; SecretError (without the secret) when unavailable."""
    if ref is None:
        raise SecretError(
            f"account '{account}' has no password; set one with 'espomail account update {account} "
            "--password-cmd CMD' (or --password-env/--password-stdin)"
        )
    if ref.method == "env":
        value = os.environ.get(ref.value)
        if not value:
            raise SecretError(f"environment variable ${ref.value} is not set")
        return value
    if ref.method == "cmd":
        return _run_command(ref.value, account, timeout)
    return _from_keyring(ref, account)


def _run_command(command: str, account: str, timeout: float) -> str:
    try:
        done = subprocess.run(command, shell=True, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SecretError(f"the password command timed out after {timeout:g} s") from None
    if done.returncode != 0:
        said = command_said(done.stderr, done.stdout)
        raise SecretError(
            f"the password command failed with exit code {done.returncode}" + (f": {said}" if said else "")
        )
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    if not lines or not lines[0]:
        raise SecretError("the password command printed nothing")
    return lines[0]


MAX_SAID = 200
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(?<![\w./-])(\w*(?:password|passwd|passphrase|pwd|secret|token|apikey|[_-]key)|auth\w*|credentials?)"
    r"(\s*[:=]\s*)(\S+)"
)
# Words after "password:" that say what went wrong rather than what the password is.
_NOT_SECRETS = {"not", "no", "none", "missing", "empty", "invalid", "incorrect", "wrong", "denied", "required"}
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@")
# A long run of letters, digits and symbols mixing letters with digits: a key, a token.
_OPAQUE = re.compile(r"(?<![\w/.-])(?!/)(?=[\w+/=.-]*\d)(?=[\w+/=.-]*[A-Za-z])[\w+/=.-]{16,}(?![\w/.-])")
SCRUBBED = "***"


def command_said(stderr: bytes, stdout: bytes = b"") -> str:
    """The first non-empty line of a failed command's stderr, secrets scrubbed.

    Never the command's stdout; and whatever stdout printed (the password, maybe) is
    scrubbed from the line too, like ``password=...``/``token ...`` values, credentials in
    URLs and long opaque tokens. At most MAX_SAID characters.
    """
    text = stderr.decode("utf-8", "replace")
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    if not line:
        return ""
    for printed in stdout.decode("utf-8", "replace").splitlines():
        if len(printed.strip()) >= 3:
            line = line.replace(printed.strip(), SCRUBBED)
    line = _URL_CREDENTIALS.sub(rf"\1:{SCRUBBED}@", line)
    line = _SECRET_ASSIGNMENT.sub(
        lambda m: m[0] if m[3].lower().strip(".,;") in _NOT_SECRETS else f"{m[1]}{m[2]}{SCRUBBED}", line
    )
    line = _OPAQUE.sub(SCRUBBED, line)
    return line if len(line) <= MAX_SAID else line[: MAX_SAID - 1] + "…"


def _from_keyring(ref: SecretRef, account: str) -> str:
    keyring = _keyring()
    try:
        value = keyring.get_password(SERVICE, ref.value)
    except Exception as exc:  # noqa: BLE001
        raise SecretError(
            f"cannot read the system keyring ({type(exc).__name__}); under cron "
            f"no keyring daemon may run: switch to 'espomail account update {account} --password-cmd CMD'"
        ) from None
    if not value:
        raise SecretError(
            f"no password in the keyring entry {SERVICE}/{ref.value}; "
            f"set it with 'espomail account update {account} --password-stdin'"
        )
    return value


def _keyring():  # noqa: ANN202 - the keyring module
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or type(backend).__name__ == "NullKeyring":
        raise SecretError(
            "no usable system keyring on this machine (a headless server?); use --password-cmd "
            "(e.g. --password-cmd 'cat /etc/espomail/support.pass') or --password-env VAR instead"
        )
    chainer = getattr(backend, "backends", None)
    if chainer is not None and not chainer:
        raise SecretError(
            "no usable system keyring on this machine (a headless server?); use --password-cmd "
            "or --password-env instead"
        )
    return keyring
