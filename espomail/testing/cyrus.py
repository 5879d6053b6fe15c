"""A private, throw-away Cyrus IMAP server for tests: the second, independent IMAP server.

Debian's ``cyrus-imapd`` conflicts with ``dovecot-imapd`` as an installed package, so it is
never installed: ``prepare()`` fetches the packages with ``apt-get download`` (cyrus-imapd,
cyrus-common, sasl2-bin and the libraries missing from the machine) and unpacks them with
``dpkg-deb -x`` into a cache directory, once. ``Cyrus`` then starts that tree's ``master``
with its own imapd.conf and cyrus.conf in a temporary directory, listening on 127.0.0.1 and a
free port. It never touches a system service.

- Users log in with a password kept in a private sasldb (``saslpasswd2`` from sasl2-bin,
  ``sasl_pwcheck_method: auxprop``), over plain LOGIN without TLS.
- Mailboxes are created by an admin user (``CREATE user/NAME`` over IMAP), as cyradm does.
- The namespace is Cyrus 3's default: ``/`` separator, personal folders beside INBOX
  (``Work``, not ``INBOX.Work``); ``legacy_namespace=True`` gives the ``INBOX.`` form that
  Debian's stock imapd.conf and older installations use.
- Cyrus refuses to run as root: when the tests run as root it runs as ``nobody``, so the
  cache must be reachable by every user (default /var/cache/espomail/cyrus for root,
  $XDG_CACHE_HOME/espomail/cyrus otherwise, or ESPOMAIL_CYRUS_DIR).
- Cyrus logs only to syslog; startup output of ``master`` goes to ``master.log`` in the
  temporary directory.

``python -m espomail.testing.cyrus`` prepares the cache (scripts/setup.sh runs it).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient

from espomail.testing.dovecot import DEFAULT_USERS, PASSWORD, Dovecot, free_port

# libeatmydata1 turns fsync into a no-op for the daemons (like Dovecot's mail_fsync = never in
# its fixture): it halves the time of an APPEND.
PACKAGES = ("cyrus-imapd", "cyrus-common", "sasl2-bin", "libeatmydata1")
# Libraries that only tools the fixture never runs need (cyr_virusscan, notifyd): not fetched.
UNUSED_LIBRARIES = frozenset({"libclamav12", "libzephyr4", "libzephyr4-krb5"})
PROGRAMS = {
    "master": "usr/lib/cyrus/bin/master",
    "imapd": "usr/lib/cyrus/bin/imapd",
    "ctl_cyrusdb": "usr/lib/cyrus/bin/ctl_cyrusdb",
    "saslpasswd2": "usr/sbin/saslpasswd2",
}
READY = "READY"  # written last: the cache is complete
ADMIN = "cyrusadmin"
UNPRIVILEGED_USER = "nobody"


class CyrusMissing(RuntimeError):
    """The Cyrus binaries are not there and could not be prepared; the message says why."""


# -- the binaries -------------------------------------------------------------------------


@dataclass(frozen=True)
class CyrusBinaries:
    """An unpacked Cyrus tree: where its programs are and the environment they need."""

    root: Path

    def program(self, name: str) -> str:
        return str(self.root / PROGRAMS[name])

    def env(self) -> dict[str, str]:
        libraries = [str(d) for d in _library_dirs(self.root)]
        plugins = [str(d) for d in sorted(self.root.glob("usr/lib/*/sasl2"))]
        plugins += [str(d) for d in sorted(Path("/usr/lib").glob("*/sasl2"))]
        return {"LD_LIBRARY_PATH": ":".join(libraries), "SASL_PATH": ":".join(plugins)}

    def no_fsync_env(self) -> dict[str, str]:
        preload = sorted(self.root.glob("usr/lib/*/libeatmydata.so.1"))
        return {"LD_PRELOAD": str(preload[0])} if preload else {}


def default_cache_dir() -> Path:
    if os.environ.get("ESPOMAIL_CYRUS_DIR"):
        return Path(os.environ["ESPOMAIL_CYRUS_DIR"])
    if os.geteuid() == 0:
        return Path("/var/cache/espomail/cyrus")  # /root is private: the daemons could not reach it
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "espomail" / "cyrus"


def prepare(cache_dir: Path | None = None) -> CyrusBinaries:
    """The unpacked Cyrus binaries, downloaded and unpacked first when missing (once, locked)."""
    cache = Path(cache_dir or default_cache_dir())
    binaries = CyrusBinaries(cache / "root")
    if (cache / READY).exists():
        _check_reachable(cache)
        return binaries
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CyrusMissing(f"cannot create the Cyrus cache {cache}: {exc.strerror}; set ESPOMAIL_CYRUS_DIR") from None
    _check_reachable(cache)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test session may be preparing it right now
        if not (cache / READY).exists():
            _download_and_unpack(cache)
    return binaries


def _download_and_unpack(cache: Path) -> None:
    for tool in ("apt-get", "apt-cache", "dpkg-deb", "dpkg-query"):
        if not shutil.which(tool):
            raise CyrusMissing(f"{tool} not found: the Cyrus test server needs a Debian or Ubuntu machine")
    _ensure_package_lists()
    work = Path(tempfile.mkdtemp(prefix="download-", dir=cache))
    try:
        packages = [*PACKAGES, *_missing_libraries(PACKAGES)]
        _apt_download(packages, work)
        unpacked = work / "root"
        for deb in sorted(work.glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(unpacked)], f"unpacking {deb.name}")
        _check_libraries(CyrusBinaries(unpacked))
        shutil.rmtree(cache / "root", ignore_errors=True)
        os.replace(unpacked, cache / "root")
        (cache / READY).write_text("\n".join(sorted(d.name for d in work.glob("*.deb"))) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _missing_libraries(packages: Iterable[str]) -> list[str]:
    """The ``lib*`` packages these packages need (and theirs, recursively) not installed here."""
    missing: list[str] = []
    seen: set[str] = set()
    todo = list(packages)
    while todo:
        wanted = [name for name in _depends(todo) if name not in seen]
        seen.update(wanted)
        todo = [name for name in wanted if name.startswith("lib") and name not in UNUSED_LIBRARIES]
        todo = [name for name in todo if not _installed(name)]
        missing += todo
    return missing


def _depends(packages: list[str]) -> list[str]:
    out = _run(
        ["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks"]
        + ["--no-replaces", "--no-enhances", *packages],
        "reading the package dependencies",
    )
    names = []
    for line in out.splitlines():
        kind, _, name = line.strip().lstrip("|").partition(": ")
        if kind in ("Depends", "PreDepends") and name and not name.startswith("<"):
            names.append(name.split(":")[0])
    return sorted(set(names))


def _installed(package: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}", package], capture_output=True, text=True, check=False
    )
    return done.returncode == 0 and done.stdout.startswith("ii")


def _ensure_package_lists() -> None:
    """A fresh machine has no package lists yet: root updates them, others are told to."""
    known = subprocess.run(["apt-cache", "show", PACKAGES[0]], capture_output=True, check=False, timeout=120)
    if known.returncode == 0:
        return
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False, timeout=600)
        known = subprocess.run(["apt-cache", "show", PACKAGES[0]], capture_output=True, check=False, timeout=120)
    if known.returncode != 0:
        raise CyrusMissing(
            f"the package lists do not know {PACKAGES[0]}: run 'apt-get update' as root (scripts/setup.sh does)"
        )


def _apt_download(packages: list[str], where: Path) -> None:
    command = ["apt-get", "download", "-q", *packages]
    done = subprocess.run(command, cwd=where, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CyrusMissing(
            f"apt-get download {' '.join(packages)} failed ({last}); run 'apt-get update' as root, "
            "or scripts/setup.sh, and check that Debian's package mirror is reachable"
        )


def _check_libraries(binaries: CyrusBinaries) -> None:
    env = {**os.environ, **binaries.env()}
    for name in PROGRAMS:
        out = _run(["ldd", binaries.program(name)], f"checking the libraries of {name}", env=env)
        absent = sorted({line.split()[0] for line in out.splitlines() if "not found" in line})
        if absent:
            raise CyrusMissing(f"Cyrus {name} needs libraries that are neither installed nor fetched: {absent}")


def _library_dirs(root: Path) -> list[Path]:
    found = {p.parent for p in root.glob("lib/*/*.so*")} | {p.parent for p in root.glob("usr/lib/*/*.so*")}
    return sorted(found)


def _check_reachable(cache: Path) -> None:
    """Cyrus runs as another user when the tests run as root: it must reach the binaries."""
    if os.geteuid() != 0:
        return
    for path in [cache, *cache.parents]:
        if not path.stat().st_mode & 0o001:
            raise CyrusMissing(
                f"{path} is not searchable by other users, and Cyrus runs as '{UNPRIVILEGED_USER}': "
                "set ESPOMAIL_CYRUS_DIR to a directory every user can reach"
            )


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env, timeout=600)
    if done.returncode != 0:
        raise CyrusMissing(f"{what} failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout


# -- the server ---------------------------------------------------------------------------


class Cyrus:
    """One private Cyrus IMAP instance. Use as a context manager or call start()/stop().

    The same interface as ``Dovecot``: a test can take either."""

    # The client helpers speak plain IMAP through self.client(): the Dovecot fixture's serve.
    append = Dovecot.append
    fetch_all = Dovecot.fetch_all
    message_count = Dovecot.message_count

    def __init__(
        self,
        base: Path | None = None,
        users: Iterable[str] = DEFAULT_USERS,
        legacy_namespace: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        self._own_base = base is None
        self.base = Path(base or tempfile.mkdtemp(prefix="espomail-cyrus-"))
        self.host = "127.0.0.1"
        self.port = free_port()
        self.legacy_namespace = legacy_namespace
        self.separator = "." if legacy_namespace else "/"
        self.users: dict[str, str] = {}
        self._initial_users = list(users)
        self._admin_password = secrets.token_urlsafe(16)
        self._cache_dir = cache_dir
        self._binaries: CyrusBinaries | None = None
        self._master: subprocess.Popen | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Cyrus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._binaries = prepare(self._cache_dir)
        for name in ("conf", "spool", "run"):
            (self.base / name).mkdir(parents=True, exist_ok=True)
        (self.base / "imapd.conf").write_text(self._imapd_conf())
        (self.base / "cyrus.conf").write_text(self._cyrus_conf())
        self._give_to_daemon_user()
        self._set_password(ADMIN, self._admin_password)
        with open(self.base / "master.log", "ab") as log:
            self._master = subprocess.Popen(
                [
                    self._binaries.program("master"),
                    "-C",
                    str(self.base / "imapd.conf"),
                    "-M",
                    str(self.base / "cyrus.conf"),
                    "-p",
                    str(self.base / "run" / "master.pid"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self._env(),
                start_new_session=True,
                **self._run_as(),
            )
        self._wait_listening()
        for user in self._initial_users:
            self.add_user(user)

    def stop(self) -> None:
        if self._master is not None:
            try:
                os.killpg(self._master.pid, signal.SIGTERM)  # master and its imapd children
                self._master.wait(timeout=10)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self._master.pid, signal.SIGKILL)
                self._master.wait()
            self._master = None
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def add_user(self, name: str, password: str = PASSWORD) -> None:
        """A login with ``password`` and an empty INBOX (created by the admin, as cyradm does)."""
        self._set_password(name, password)
        self.users[name] = password
        with self._admin() as admin:
            mailbox = self._user_mailbox(name)
            if not admin.folder_exists(mailbox):
                admin.create_folder(mailbox)

    # -- client helpers ----------------------------------------------------------------
    def client(self, user: str) -> IMAPClient:
        return self._login(user, self.users[user])

    def recreate_folder(self, user: str, folder: str) -> None:
        """Delete and create ``folder`` again: the server gives it a new UIDVALIDITY.

        INBOX cannot be deleted by its user, and deleting it as the admin deletes the whole
        user: the admin does that, creates the user's INBOX again and renames the other
        folders back from the DELETED hierarchy (Cyrus's delayed delete), messages kept."""
        if folder.upper() != "INBOX":
            with self.client(user) as client:
                client.delete_folder(folder)
                client.create_folder(folder)
            return
        mailbox = self._user_mailbox(user)
        with self._admin() as admin:
            earlier = self._deleted(admin, user)
            admin.setacl(mailbox, ADMIN, "lrswipkxtecdan")
            admin.delete_folder(mailbox)
            admin.create_folder(mailbox)
            for name in sorted(self._deleted(admin, user) - earlier):
                sub = self.separator.join(name.split(self.separator)[3:-1])  # DELETED/user/NAME/sub/STAMP
                if sub:
                    admin.rename_folder(name, mailbox + self.separator + sub)

    # -- internals ---------------------------------------------------------------------
    def _admin(self) -> IMAPClient:
        return self._login(ADMIN, self._admin_password)

    def _login(self, user: str, password: str) -> IMAPClient:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        # imaplib sends a literal and its final CRLF in two writes: without TCP_NODELAY each
        # APPEND waits ~40 ms for a delayed ACK from Cyrus.
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.login(user, password)
        return client

    def _user_mailbox(self, user: str) -> str:
        return f"user{self.separator}{user}"

    def _deleted(self, admin: IMAPClient, user: str) -> set[str]:
        """The user's folders in Cyrus's DELETED hierarchy (DELETED/user/NAME/.../STAMP)."""
        prefix = self.separator.join(("DELETED", "user", user, ""))
        return {name for _flags, _sep, name in admin.list_folders(prefix)}

    def _set_password(self, user: str, password: str) -> None:
        assert self._binaries is not None
        done = subprocess.run(
            [self._binaries.program("saslpasswd2"), "-p", "-c", "-f", str(self.base / "sasldb2"), user],
            input=password.encode(),
            capture_output=True,
            env=self._env(),
            check=False,
            timeout=30,
            **self._run_as(),
        )
        if done.returncode != 0:
            raise RuntimeError(f"saslpasswd2 failed for {user!r}: {done.stderr.decode(errors='replace').strip()}")

    def _env(self) -> dict[str, str]:
        assert self._binaries is not None
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **self._binaries.env(),
            **self._binaries.no_fsync_env(),
        }

    @staticmethod
    def _run_as() -> dict:
        """Cyrus refuses root: as root, its processes run as an unprivileged user."""
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _daemon_ids(self) -> tuple[str, str]:
        import grp

        entry = pwd.getpwnam(UNPRIVILEGED_USER) if os.geteuid() == 0 else pwd.getpwuid(os.getuid())
        return entry.pw_name, grp.getgrgid(entry.pw_gid).gr_name

    def _give_to_daemon_user(self) -> None:
        if os.geteuid() != 0:
            return
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
        for path in [self.base, *self.base.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _imapd_conf(self) -> str:
        user, group = self._daemon_ids()
        base = self.base
        namespace = "no" if self.legacy_namespace else "yes"
        return f"""# private test instance written by espomail.testing.cyrus
configdirectory: {base}/conf
partition-default: {base}/spool
cyrus_user: {user}
cyrus_group: {group}
admins: {ADMIN}
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {base}/sasldb2
sasl_mech_list: PLAIN LOGIN
altnamespace: {namespace}
unixhierarchysep: {namespace}
syslog_prefix: espomail-cyrus-{self.port}
"""

    def _cyrus_conf(self) -> str:
        assert self._binaries is not None
        conf = self.base / "imapd.conf"
        return f"""# private test instance written by espomail.testing.cyrus
START {{
  recover cmd="{self._binaries.program("ctl_cyrusdb")} -r -C {conf}"
}}
SERVICES {{
  imap cmd="{self._binaries.program("imapd")} -C {conf}" listen="{self.host}:{self.port}" prefork=2
}}
EVENTS {{
}}
"""

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._master is not None and self._master.poll() is not None:
                break
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        log = (self.base / "master.log").read_text(errors="replace").strip()
        raise RuntimeError(f"cyrus master did not start on {self.host}:{self.port} (it logs to syslog): {log[-500:]}")


def main() -> int:
    """Prepare the cache (scripts/setup.sh): silent on success, one line on failure."""
    try:
        prepare()
    except CyrusMissing as exc:
        print(f"Cyrus IMAP test server unavailable: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
