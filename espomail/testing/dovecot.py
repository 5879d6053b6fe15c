"""A private, throw-away Dovecot IMAP server for tests, benchmarks and the demo.

Started from the Debian package's binary with its own config in a temporary directory
(``dovecot -c FILE``): 127.0.0.1 on a free port, a passwd-file of users, Maildir storage,
plain login without TLS (and, optionally, an IMAPS listener with a self-signed
certificate). Stopped by its own pid. It never touches the system service.

With ``oauth2_introspection_url`` it also takes OAuth2 bearer tokens (SASL XOAUTH2 and
OAUTHBEARER) through an ``oauth2`` passdb that asks that RFC 7662 introspection endpoint
(espomail.testing.authserver) about every token; password logins keep working.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

DEFAULT_USERS = ("support", "sales", "alice", "bob")
PASSWORD = "secret"


class DovecotMissing(RuntimeError):
    pass


def find_dovecot() -> str:
    path = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)
    if not path:
        raise DovecotMissing(
            "dovecot is not installed; install the Debian package dovecot-imapd (scripts/test.sh does it for you)"
        )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Dovecot:
    """One private Dovecot instance. Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        base: Path | None = None,
        users: Iterable[str] = DEFAULT_USERS,
        tls: bool = False,
        oauth2_introspection_url: str | None = None,
        oauth2_mechanisms: tuple[str, ...] = ("xoauth2", "oauthbearer"),
    ) -> None:
        self._own_base = base is None
        self.oauth2_introspection_url = oauth2_introspection_url
        self.oauth2_mechanisms = " ".join(oauth2_mechanisms)
        self.base = Path(base or tempfile.mkdtemp(prefix="espomail-dovecot-"))
        self.users = {name: PASSWORD for name in users}
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.cert_path: Path | None = None
        self._pid: int | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        binary = find_dovecot()
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)  # Dovecot's unprivileged processes must traverse it
        (self.base / "run").mkdir(exist_ok=True)
        mail = self.base / "mail"
        mail.mkdir(exist_ok=True)
        uid, gid = self._mail_ids()
        if os.geteuid() == 0:
            os.chown(mail, uid, gid)
        if self.tls_port:
            self._make_certificate()
        self._write_passwd()
        if self.oauth2_introspection_url:
            (self.base / "oauth2.conf.ext").write_text(self._oauth2_args())
        (self.base / "dovecot.conf").write_text(self._config(uid, gid))
        # The daemon keeps inherited pipes open: send its output to a file, not a pipe.
        with open(self.base / "startup.log", "wb") as out:
            done = subprocess.run(
                [binary, "-c", str(self.base / "dovecot.conf")],
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                timeout=30,
            )
        if done.returncode != 0:
            raise RuntimeError(f"dovecot failed: {(self.base / 'startup.log').read_text()}")
        self._pid = self._read_pid()
        self._wait_listening()

    def stop(self) -> None:
        self._stop_daemon()
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def restart(self, while_down: Callable[[], object] | None = None) -> None:
        """Stop the server and start it again on the same port, mail kept: every client's
        connection drops, as in a server restart. ``while_down`` runs in between."""
        self._stop_daemon()
        if while_down is not None:
            while_down()
        self.start()

    def _stop_daemon(self) -> None:
        if self._pid:
            try:
                os.kill(self._pid, signal.SIGTERM)
                self._wait_gone(self._pid)
            except ProcessLookupError:
                pass
            self._pid = None
        (self.base / "run" / "master.pid").unlink(missing_ok=True)

    def add_user(self, name: str, password: str = PASSWORD) -> None:
        """Add a login. Any name logs in with PASSWORD anyway; this records other passwords."""
        self.users[name] = password
        if password != PASSWORD:
            self._write_passwd()

    # -- client helpers ----------------------------------------------------------------
    def client(self, user: str) -> IMAPClient:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        client.login(user, self.users[user])
        return client

    def append(
        self,
        user: str,
        messages: bytes | Iterable[bytes],
        folder: str = "INBOX",
        flags: tuple[bytes, ...] = (),
        when=None,
    ) -> int:
        """APPEND one or many raw messages to ``folder`` (created when missing); ``when``
        sets their INTERNALDATE. Returns how many the server accepted: it refuses a few
        broken messages, which only matters for a batch (a single refusal raises)."""
        batch = [messages] if isinstance(messages, bytes) else list(messages)
        accepted = 0
        with self.client(user) as client:
            if folder != "INBOX" and not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in batch:
                try:
                    client.append(folder, raw, flags=flags, msg_time=when)
                    accepted += 1
                except IMAPClientError:
                    if len(batch) == 1:
                        raise
        return accepted

    def recreate_folder(self, user: str, folder: str) -> None:
        """Delete and create ``folder`` again: the server gives it a new UIDVALIDITY."""
        with self.client(user) as client:
            if folder.upper() == "INBOX":
                client.select_folder("INBOX")
                client.delete_messages(client.search("ALL"))
                client.expunge()
                client.unselect_folder()
                self._bump_inbox_uidvalidity(user)
                return
            client.delete_folder(folder)
            client.create_folder(folder)

    def fetch_all(self, user: str, folder: str = "INBOX") -> list[bytes]:
        with self.client(user) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            data = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            return [data[k][b"BODY[]"] for k in sorted(data)]

    def message_count(self, user: str, folder: str = "INBOX") -> int:
        with self.client(user) as client:
            return client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"]

    # -- internals ---------------------------------------------------------------------
    def _bump_inbox_uidvalidity(self, user: str) -> None:
        """INBOX cannot be deleted: drop Dovecot's index so UIDVALIDITY changes."""
        inbox = self.base / "mail" / user
        for name in ("dovecot-uidlist", "dovecot.index", "dovecot.index.log", "dovecot.index.cache"):
            path = inbox / name
            if path.exists():
                path.unlink()
        time.sleep(1.1)  # UIDVALIDITY is a timestamp: make sure the new one differs

    def _mail_ids(self) -> tuple[int, int]:
        if os.geteuid() != 0:
            return os.getuid(), os.getgid()
        # Dovecot refuses to access mail as root: use its own unprivileged account.
        entry = pwd.getpwnam("dovecot")
        return entry.pw_uid, entry.pw_gid

    def _write_passwd(self) -> None:
        lines = [f"{name}:{{PLAIN}}{password}" for name, password in self.users.items()]
        tmp = self.base / "passwd.tmp"
        tmp.write_text("\n".join(lines) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.base / "passwd")

    def _config(self, uid: int, gid: int) -> str:
        if os.geteuid() == 0:
            internal, internal_group, login = "dovecot", "dovecot", "dovenull"
        else:
            me = pwd.getpwuid(os.getuid()).pw_name
            internal, internal_group, login = me, _group_name(os.getgid()), me
        base = self.base
        tls = ""
        if self.tls_port:
            tls = f"""
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}"""
        mechanisms, password_only, oauth2 = self._oauth2_config()
        ssl_settings = "ssl = no"
        if self.tls_port:
            ssl_settings = f"ssl = yes\nssl_cert = <{base}/cert.pem\nssl_key = <{base}/key.pem"
        return f"""# private test instance written by espomail.testing.dovecot
base_dir = {base}/run
state_dir = {base}/run/state
log_path = {base}/dovecot.log
instance_name = espomail-test-{self.port}
protocols = imap
listen = 127.0.0.1
{ssl_settings}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = 1
mail_location = maildir:{base}/mail/%u
mail_fsync = never
imap_max_line_length = 2M
service imap-login {{
  # Dovecot's documented high-performance login mode: no process per connection.
  service_count = 0
  process_min_avail = 2
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}{tls}
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd{password_only}
}}
# Any other user name logs in with the shared test password: a fresh, empty mailbox
# per test without waiting for Dovecot to notice a changed passwd-file.
passdb {{
  driver = static
  args = password={PASSWORD}{password_only}
}}{oauth2}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/mail/%u
}}
"""

    def _oauth2_config(self) -> tuple[str, str, str]:
        """auth_mechanisms, the line limiting the password passdbs, and the oauth2 passdb block."""
        if not self.oauth2_introspection_url:
            return "plain login", "", ""
        oauth2 = f"""
# Bearer tokens ({self.oauth2_mechanisms}): checked by the authorization server's introspection.
passdb {{
  driver = oauth2
  mechanisms = {self.oauth2_mechanisms}
  args = {self.base}/oauth2.conf.ext
}}
# A refused token is answered at once (no 2 s failure delay, no growing per-IP penalty):
# tests refuse tokens on purpose.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}"""
        return f"plain login {self.oauth2_mechanisms}", "\n  mechanisms = plain login", oauth2

    def _oauth2_args(self) -> str:
        """The oauth2 passdb's settings: RFC 7662 introspection by POST, no tokeninfo_url."""
        return f"""# written by espomail.testing.dovecot
introspection_mode = post
introspection_url = {self.oauth2_introspection_url}
username_attribute = username
active_attribute = active
active_value = true
"""

    def _make_certificate(self) -> None:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-keyout",
                str(self.base / "key.pem"),
                "-out",
                str(self.base / "cert.pem"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        os.chmod(self.base / "key.pem", 0o600)
        self.cert_path = self.base / "cert.pem"

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not start; see {self.base / 'dovecot.log'}")

    def _read_pid(self) -> int:
        """The daemon writes its pid file a moment after the starting process returns."""
        path = self.base / "run" / "master.pid"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            text = path.read_text().strip() if path.exists() else ""
            if text:
                return int(text)
            time.sleep(0.02)
        raise RuntimeError(f"dovecot wrote no pid file; see {self.base / 'dovecot.log'}")

    @staticmethod
    def _wait_gone(pid: int) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name
