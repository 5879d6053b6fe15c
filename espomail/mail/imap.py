"""IMAP access for fetching: connect, check folders, find new UIDs, download in batches.

Connection, login, SELECT, STATUS and SEARCH go through imapclient. The bulk download is
one pipelined ``UID FETCH set (UID BODY.PEEK[])`` per batch whose response is read
straight from the connection (the literal sizes tell how many bytes to read), because
imapclient's generic response parser costs several times more than the download itself.

Every failure becomes a MailServerError whose message says what is wrong (DNS, refused,
timeout, TLS, credentials, missing folder) and never contains the password or a token.
Login is by password or, for OAuth2 accounts, by a TokenProvider (SASL XOAUTH2/OAUTHBEARER).
"""

from __future__ import annotations

import datetime as dt
import imaplib
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from espomail.errors import EspomailError, MailServerError
from espomail.oauth import sasl
from espomail.oauth.sasl import TokenProvider

DEFAULT_PORTS = {"ssl": 993, "starttls": 143, "none": 143}  # as services.accounts


@dataclass(frozen=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int | None
    messages: int


@dataclass
class Fetched:
    uid: int
    raw: bytes
    size: int
    truncated: bool = False


def tls_context(insecure: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def describe_error(exc: BaseException, host: str, port: int) -> str:
    """A one-line reason for a connection failure, with what to check."""
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host '{host}' (DNS): check --host"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}: is the server running, and is --port right?"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out talking to {where}: check the network, --host and --port"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate of {where} not trusted ({exc.verify_message}): install a valid "
            "certificate, or pass --insecure if you accept the risk"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {where} failed ({exc.reason}): check --security (ssl/starttls/none) and --port"
    if connection_lost(exc):
        command = re.search(r"command: (\w+)", str(exc))
        during = f" during {command.group(1)}" if command else ""
        return f"the connection to {where} was lost{during}: check the network and the server; the next run resumes"
    if isinstance(exc, LoginError):
        return f"login refused by {where} (bad credentials?): check --username and the password"
    if isinstance(exc, OSError):
        return f"network error talking to {where}: {exc.strerror or exc}"
    text = str(exc)
    if isinstance(exc, bytes | bytearray):
        text = exc.decode("utf-8", "replace")
    return f"IMAP error from {where}: {text[:200]}"


def connection_lost(exc: BaseException) -> bool:
    """The connection broke (imaplib's abort; a LOGIN whose answer never came is reported by
    imapclient as a LoginError quoting the socket error): not the server saying no."""
    if isinstance(exc, imaplib.IMAP4.abort):
        return True
    return isinstance(exc, LoginError) and ("socket error" in str(exc) or "EOF" in str(exc))


class ImapSession:
    """One logged-in IMAP connection."""

    def __init__(
        self,
        host: str,
        port: int | None,
        security: str,
        username: str,
        credentials: str | TokenProvider,
        timeout: float,
        insecure: bool = False,
    ) -> None:
        """``credentials``: a password, or a TokenProvider for OAuth2 (AUTHENTICATE XOAUTH2/OAUTHBEARER)."""
        self.host = host
        self.port = port or DEFAULT_PORTS[security]
        self.security = security
        self.timeout = timeout
        self.client = self._connect(username, credentials, insecure)
        self.capabilities = {c.upper() for c in self.client.capabilities()}

    # -- connection ----------------------------------------------------------------------
    def _connect(self, username: str, credentials: str | TokenProvider, insecure: bool) -> IMAPClient:
        try:
            context = tls_context(insecure) if self.security != "none" else None
            client = IMAPClient(
                self.host,
                port=self.port,
                ssl=self.security == "ssl",
                ssl_context=context if self.security == "ssl" else None,
                timeout=self.timeout,
            )
            if self.security == "starttls":
                client.starttls(context)
            if isinstance(credentials, str):
                client.login(username, credentials)
            else:
                self._token_login(client, username, credentials)
            return client
        except EspomailError:
            _shutdown(client)  # no token (expired grant, provider down): close what we opened
            raise
        except (OSError, IMAPClientError, imaplib.IMAP4.error) as exc:
            raise MailServerError(describe_error(exc, self.host, self.port)) from None

    def _token_login(self, client: IMAPClient, username: str, tokens: TokenProvider) -> None:
        """AUTHENTICATE XOAUTH2 (or OAUTHBEARER); once more with a fresh token if the server refuses."""
        offered = [c[5:].decode() for c in client.capabilities() if c.upper().startswith(b"AUTH=")]
        mechanism = sasl.choose_mechanism(offered)
        if mechanism is None:
            raise MailServerError(
                f"{self.host}:{self.port} offers neither AUTH=XOAUTH2 nor AUTH=OAUTHBEARER: it does not take "
                "OAuth2 logins; check --host, or use a password (--auth password)"
            )
        for force_refresh in (False, True):
            token = tokens.access_token(force_refresh=force_refresh)
            try:
                client.sasl_login(mechanism, sasl.Exchange(mechanism, username, token, self.host, self.port))
                return
            except LoginError:
                continue
        raise MailServerError(
            f"{self.host}:{self.port} refused the OAuth2 access token ({mechanism}) even after a refresh: check "
            "--username is the mailbox the authorization was given for, and that IMAP is allowed for the app"
        )

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:  # noqa: BLE001 - closing a broken connection must not fail a run
            try:
                self.client.shutdown()
            except Exception:  # noqa: BLE001
                pass

    def __enter__(self) -> ImapSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _guard(self, what: str):  # noqa: ANN202
        return _Guard(self, what)

    # -- folders -------------------------------------------------------------------------
    def list_folders(self) -> list[str]:
        with self._guard("listing folders"):
            return [name for _flags, _delim, name in self.client.list_folders()]

    def status(self, folder: str) -> FolderStatus:
        """One round trip: enough to see that an unchanged folder needs nothing more."""
        with self._guard(f"STATUS of folder '{folder}'"):
            found = self.client.folder_status(folder, [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES"])
        return FolderStatus(int(found[b"UIDVALIDITY"]), _int_or_none(found.get(b"UIDNEXT")), int(found[b"MESSAGES"]))

    def select(self, folder: str, readonly: bool) -> FolderStatus:
        with self._guard(f"selecting folder '{folder}'"):
            found = self.client.select_folder(folder, readonly=readonly)
        return FolderStatus(
            int(found[b"UIDVALIDITY"]), _int_or_none(found.get(b"UIDNEXT")), int(found.get(b"EXISTS", 0))
        )

    # -- finding messages ----------------------------------------------------------------
    def uids_above(self, last_uid: int) -> list[int]:
        with self._guard("searching new messages"):
            found = self.client.search(["UID", f"{last_uid + 1}:*"])
        return sorted(uid for uid in found if uid > last_uid)

    def uids_since(self, day: dt.date) -> list[int]:
        with self._guard("searching messages by date"):
            return sorted(self.client.search(["SINCE", day]))

    def sizes(self, uids: list[int]) -> dict[int, tuple[int, bytes | None]]:
        """UID -> (RFC822.SIZE, raw INTERNALDATE; see ``internaldate()``), in one pipelined command."""
        result: dict[int, tuple[int, bytes | None]] = {}
        for chunk in _chunks(uids, 5000):
            for uid, items, _literals in self._raw_fetch(chunk, "RFC822.SIZE INTERNALDATE"):
                size = re.search(rb"RFC822\.SIZE (\d+)", items)
                date = re.search(rb'INTERNALDATE "([^"]+)"', items)
                result[uid] = (int(size.group(1)) if size else 0, date.group(1) if date else None)
        return result

    def message_ids(self, uids: list[int]) -> dict[int, bytes]:
        """UID -> raw Message-ID header lines, to skip known mail without downloading it."""
        result = {}
        for chunk in _chunks(uids, 2000):
            for uid, _items, literals in self._raw_fetch(chunk, "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"):
                result[uid] = next(iter(literals.values()), b"")
        return result

    # -- downloading ---------------------------------------------------------------------
    def download(self, uids: list[int], headers_only: set[int], peek: bool = True) -> Iterator[Fetched]:
        """The messages of ``uids`` (headers only for those in ``headers_only``), pipelined."""
        body = "BODY.PEEK[]" if peek else "BODY[]"
        full = [u for u in uids if u not in headers_only]
        for uid, _items, literals in self._raw_fetch(full, body) if full else ():
            raw = literals.get(b"BODY[]", b"")
            yield Fetched(uid, raw, len(raw))
        heads = [u for u in uids if u in headers_only]
        for uid, _items, literals in self._raw_fetch(heads, "BODY.PEEK[HEADER]") if heads else ():
            raw = literals.get(b"BODY[HEADER]", b"")
            yield Fetched(uid, raw, len(raw), truncated=True)

    def append(self, folder: str, raw: bytes, seen: bool = True) -> None:
        with self._guard(f"appending to folder '{folder}'"):
            if not self.client.folder_exists(folder):
                self.client.create_folder(folder)
            self.client.append(folder, raw, flags=[b"\\Seen"] if seen else [])

    # -- the raw pipelined FETCH ---------------------------------------------------------
    def _raw_fetch(self, uids: list[int], items: str) -> Iterator[tuple[int, bytes, dict[bytes, bytes]]]:
        """Send one UID FETCH and yield (uid, text of the response, {item: literal bytes})."""
        imap = self.client._imap  # noqa: SLF001 - see the module docstring
        with self._guard("downloading messages"):
            tag = imap._new_tag()  # noqa: SLF001
            imap.send(b"%s UID FETCH %s (UID %s)\r\n" % (tag, _uid_set(uids).encode(), items.encode()))
            while True:
                line = imap.readline()
                if not line:
                    raise imaplib.IMAP4.abort("connection closed by the server")
                if line.startswith(tag + b" "):
                    if not line[len(tag) + 1 :].upper().startswith(b"OK"):
                        raise imaplib.IMAP4.error(line.decode("utf-8", "replace").strip())
                    return
                if line.startswith(b"* ") and b"FETCH" in line[:40]:
                    found = self._fetch_response(imap, line)
                    if found is not None:
                        yield found

    @staticmethod
    def _fetch_response(imap: imaplib.IMAP4, line: bytes) -> tuple[int, bytes, dict[bytes, bytes]] | None:
        text = b""
        literals: dict[bytes, bytes] = {}
        while True:
            match = _LITERAL.search(line)
            if not match:
                text += line
                break
            text += line[: match.start()]
            literals[_item_name(line[: match.start()])] = imap.read(int(match.group(1)))
            line = imap.readline()
        uid = _UID.search(text)
        if uid is None:
            return None  # an unsolicited FETCH (flag change) without UID
        for name, value in _INLINE_BODY.findall(text):
            literals.setdefault(name, b"" if value.upper() == b"NIL" else value.strip(b'"'))
        return int(uid.group(1)), text, literals


class _Guard:
    """Turns protocol and socket errors inside a block into MailServerError."""

    def __init__(self, session: ImapSession, what: str) -> None:
        self.session, self.what = session, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:  # noqa: ANN001
        if exc is None or isinstance(exc, MailServerError | GeneratorExit):
            return False
        if isinstance(exc, OSError | IMAPClientError | imaplib.IMAP4.error | imaplib.IMAP4.abort):
            lost = connection_lost(exc)
            reason = describe_error(exc, self.session.host, self.session.port)
            if "folder" in self.what and isinstance(exc, IMAPClientError | imaplib.IMAP4.error) and not lost:
                reason = f"{self.what} failed: the server says {str(exc)[:150]}"
            raise MailServerError(reason) from None
        return False


_LITERAL = re.compile(rb"\{(\d+)\}\r?\n$")
_UID = re.compile(rb"\bUID (\d+)")
_ITEM = re.compile(rb"(BODY\[[^\]]*\]|RFC822(?:\.[A-Z]+)?)(?:<\d+>)?\s*$")
_INLINE_BODY = re.compile(rb'(BODY\[[^\]]*\]) (NIL|"[^"]*")')


def _item_name(prefix: bytes) -> bytes:
    found = _ITEM.search(prefix.rstrip())
    if not found:
        return b"BODY[]"
    name = found.group(1)
    return b"BODY[HEADER.FIELDS]" if name.startswith(b"BODY[HEADER.FIELDS") else name


def _uid_set(uids: list[int]) -> str:
    """Compact ``1:5,7,9:12`` form of sorted UIDs."""
    parts = []
    start = prev = None
    for uid in sorted(uids):
        if start is None:
            start = prev = uid
        elif uid == prev + 1:
            prev = uid
        else:
            parts.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = uid
    if start is not None:
        parts.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(parts)


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


def _shutdown(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # noqa: BLE001 - already broken
        pass


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[arg-type]


def internaldate(value: bytes | None) -> dt.datetime | None:
    """An IMAP INTERNALDATE (``17-Jul-1996 02:44:25 -0700``) as an aware UTC datetime."""
    if not value:
        return None
    try:
        return dt.datetime.strptime(value.decode().strip(), "%d-%b-%Y %H:%M:%S %z").astimezone(dt.UTC)
    except ValueError:
        return None
