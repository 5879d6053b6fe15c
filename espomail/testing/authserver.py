"""A local OAuth2 authorization server for tests, the demo and manual trials.

Runs in a thread on 127.0.0.1 (a free port), used as a context manager like the Dovecot
fixture. It speaks what espomail and Dovecot need, with real HTTP:

- ``POST /device_authorization``  RFC 8628 device authorization (``interval``, ``expires_in``);
  the token endpoint answers ``authorization_pending``, ``slow_down`` (a poll sooner than the
  interval, or forced by ``slow_down_next``), ``expired_token`` and ``access_denied``;
  ``approve_device(user_code, user)`` is the test hook, ``GET/POST /device`` the page for people.
- ``GET /authorize``  the authorization-code flow with PKCE (S256 required) and a loopback
  ``redirect_uri`` (RFC 8252): approves at once as ``browser_user`` and redirects with
  ``code`` and ``state`` (``browser_decision = "deny"`` redirects with ``access_denied``).
- ``POST /token``  grants ``authorization_code``, ``device_code`` and ``refresh_token``.
  Refresh tokens rotate: every refresh returns a new one. The previous one stays valid only
  until the new one is first used (the "grace" of Microsoft and Okta, so that a client that
  crashed before saving the new token can still use the old one); ``rotation_grace=False``
  makes the old one invalid at once. Presenting a refresh token that was superseded and
  whose successor was used is a replay: the whole grant is revoked (OAuth 2.0 Security BCP).
- ``POST /revoke``  RFC 7009: revokes the grant of the token (all its tokens fail).
- ``POST /introspect``  RFC 7662, what Dovecot's ``oauth2`` passdb calls: ``active``,
  ``username``, ``sub``, ``scope``, ``client_id``, ``exp`` for a live access token.

``access_token_lifetime`` can be changed at any time (a test lets a token expire between two
fetches); ``expire_access_tokens()`` kills the live ones at once (the server "refuses" a token
the client still thinks valid). Tokens are random and prefixed (``at-``, ``rt-``) so that leak
tests can look for them. Run ``python -m espomail.testing.authserver`` for a manual server.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_CLIENT = "espomail-test"


class OAuthFailure(Exception):
    """An RFC 6749 error answer: ``{"error": code, "error_description": text}``."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(error)
        self.error, self.description, self.status = error, description, status


@dataclass
class Grant:
    """One user's consent to one client: the tokens issued under it die together."""

    id: str
    user: str
    client_id: str
    scope: str
    revoked: bool = False
    current_refresh: str = ""
    current_used: bool = False
    previous_refresh: str | None = None  # still valid while current_used is False (grace)
    dead_refresh: set[str] = field(default_factory=set)
    refreshes: int = 0


@dataclass
class DeviceRequest:
    device_code: str
    user_code: str
    client_id: str
    scope: str
    expires_at: float
    interval: float
    last_poll: float | None = None
    approved_user: str | None = None
    denied: bool = False


@dataclass
class CodeRequest:
    client_id: str
    redirect_uri: str
    code_challenge: str
    user: str
    scope: str
    expires_at: float


@dataclass
class AccessToken:
    grant_id: str
    expires_at: float


class AuthServer:
    """The server and its state. Every public method is safe to call from a test thread."""

    def __init__(
        self,
        access_token_lifetime: float = 3600,
        device_interval: float = 0.2,
        device_lifetime: float = 60,
        rotation_grace: bool = True,
        clients: dict[str, str | None] | None = None,
        browser_user: str = "alice",
    ) -> None:
        self.access_token_lifetime = access_token_lifetime
        self.device_interval = device_interval
        self.device_lifetime = device_lifetime
        self.slow_down_step = 0.2  # RFC 8628 says 5 s; small so tests stay quick
        self.rotation_grace = rotation_grace
        self.clients: dict[str, str | None] = dict(clients or {DEFAULT_CLIENT: None})
        self.browser_user = browser_user
        self.browser_decision = "approve"
        self._settings = {
            name: getattr(self, name)
            for name in ("access_token_lifetime", "device_interval", "device_lifetime", "slow_down_step")
            + ("rotation_grace", "browser_user", "browser_decision")
        }
        self.host = "127.0.0.1"
        self.port = 0
        self.requests: list[str] = []  # "POST /token refresh_token", for assertions
        self._lock = threading.RLock()
        self._grants: dict[str, Grant] = {}
        self._refresh: dict[str, str] = {}  # refresh token -> grant id
        self._access: dict[str, AccessToken] = {}
        self._devices: dict[str, DeviceRequest] = {}
        self._codes: dict[str, CodeRequest] = {}
        self._forced_slow_downs = 0
        self._issued: set[str] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> AuthServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._httpd = ThreadingHTTPServer((self.host, 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="authserver", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def device_url(self) -> str:
        return f"{self.url}/device_authorization"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/authorize"

    @property
    def introspection_url(self) -> str:
        return f"{self.url}/introspect"

    @property
    def revocation_url(self) -> str:
        return f"{self.url}/revoke"

    # -- test hooks ----------------------------------------------------------------------
    def issue_grant(self, user: str, client_id: str = DEFAULT_CLIENT, scope: str = "") -> dict[str, Any]:
        """A grant made out of band (as if authorized earlier): its first token response."""
        with self._lock:
            return self._new_grant(user, client_id, scope)

    def approve_device(self, user_code: str, user: str = "alice") -> None:
        with self._lock:
            self._device_by_user_code(user_code).approved_user = user

    def deny_device(self, user_code: str) -> None:
        with self._lock:
            self._device_by_user_code(user_code).denied = True

    def pending_user_codes(self) -> list[str]:
        with self._lock:
            return [d.user_code for d in self._devices.values() if d.approved_user is None and not d.denied]

    def slow_down_next(self, polls: int) -> None:
        """Answer ``slow_down`` to the next ``polls`` device-code polls, whatever their timing."""
        with self._lock:
            self._forced_slow_downs = polls

    def revoke_grant_of(self, token: str) -> None:
        """Revoke the grant a refresh or access token belongs to: all its tokens fail."""
        with self._lock:
            grant = self._grant_of(token)
            if grant is not None:
                grant.revoked = True

    def revoke_all(self) -> None:
        with self._lock:
            for grant in self._grants.values():
                grant.revoked = True

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working now (clients may still think it valid)."""
        with self._lock:
            now = time.time()
            for token in self._access.values():
                token.expires_at = min(token.expires_at, now - 1)

    def active_user(self, access_token: str) -> str | None:
        """The user a live access token stands for, else None (what introspection says)."""
        with self._lock:
            info = self._introspect(access_token)
            return info.get("username") if info["active"] else None

    def issued_secrets(self) -> set[str]:
        """Every token and code handed out so far (for tests that look for leaks)."""
        with self._lock:
            return set(self._issued)

    def reset(self) -> None:
        """Back to the settings given at construction (a shared server between tests); grants stay."""
        with self._lock:
            self.__dict__.update(self._settings)
            self._forced_slow_downs = 0

    def refresh_count(self) -> int:
        with self._lock:
            return sum(g.refreshes for g in self._grants.values())

    def live_refresh_tokens(self) -> set[str]:
        """Refresh tokens that would be accepted now (current, and previous within the grace)."""
        with self._lock:
            live = set()
            for grant in self._grants.values():
                if grant.revoked:
                    continue
                live.add(grant.current_refresh)
                if grant.previous_refresh and self.rotation_grace and not grant.current_used:
                    live.add(grant.previous_refresh)
            return live

    # -- endpoints (called by the HTTP handler, under the lock) --------------------------
    def device_authorization(self, form: dict[str, str]) -> dict[str, Any]:
        client_id = self._public_client(form)
        now = time.time()
        request = DeviceRequest(
            device_code=self._mint("dc-"),
            user_code=_user_code(),
            client_id=client_id,
            scope=form.get("scope", ""),
            expires_at=now + self.device_lifetime,
            interval=self.device_interval,
        )
        self._devices[request.device_code] = request
        return {
            "device_code": request.device_code,
            "user_code": request.user_code,
            "verification_uri": f"{self.url}/device",
            "verification_uri_complete": f"{self.url}/device?user_code={request.user_code}",
            "expires_in": self.device_lifetime,
            "interval": self.device_interval,
        }

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        client_id = self._authenticate_client(form, basic)
        grant_type = form.get("grant_type", "")
        self.requests.append(f"POST /token {grant_type}")
        if grant_type == "refresh_token":
            return self._refresh_grant(form, client_id)
        if grant_type == "authorization_code":
            return self._code_grant(form, client_id)
        if grant_type == DEVICE_GRANT:
            return self._device_grant(form, client_id)
        raise OAuthFailure("unsupported_grant_type", f"grant_type '{grant_type}' is not supported")

    def authorize(self, query: dict[str, str]) -> str:
        """The Location of the redirect back to the client (an error redirect when denied)."""
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") not in self.clients:
            raise OAuthFailure("invalid_client", "unknown client_id")
        if not _is_loopback(redirect_uri):
            raise OAuthFailure("invalid_request", "redirect_uri must be http://127.0.0.1:PORT/... (RFC 8252)")
        state = query.get("state", "")
        if query.get("response_type") != "code":
            return _with_query(redirect_uri, {"error": "unsupported_response_type", "state": state})
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return _with_query(
                redirect_uri, {"error": "invalid_request", "error_description": "PKCE S256 required", "state": state}
            )
        if self.browser_decision != "approve":
            return _with_query(redirect_uri, {"error": "access_denied", "state": state})
        code = self._mint("ac-")
        self._codes[code] = CodeRequest(
            client_id=query["client_id"],
            redirect_uri=redirect_uri,
            code_challenge=query["code_challenge"],
            user=self.browser_user,
            scope=query.get("scope", ""),
            expires_at=time.time() + 60,
        )
        return _with_query(redirect_uri, {"code": code, "state": state})

    def revoke(self, form: dict[str, str]) -> None:
        self.requests.append("POST /revoke")
        grant = self._grant_of(form.get("token", ""))
        if grant is not None:
            grant.revoked = True

    def introspect(self, form: dict[str, str]) -> dict[str, Any]:
        self.requests.append("POST /introspect")
        return self._introspect(form.get("token", ""))

    # -- grants --------------------------------------------------------------------------
    def _refresh_grant(self, form: dict[str, str], client_id: str) -> dict[str, Any]:
        presented = form.get("refresh_token", "")
        grant = self._grant_of(presented)
        if grant is None or grant.revoked or grant.client_id != client_id:
            raise OAuthFailure("invalid_grant", "the refresh token is invalid, expired or revoked")
        if presented == grant.current_refresh:
            grant.current_used = True
            if grant.previous_refresh:
                grant.dead_refresh.add(grant.previous_refresh)
                grant.previous_refresh = None
            grant.previous_refresh = grant.current_refresh
        elif presented == grant.previous_refresh and self.rotation_grace and not grant.current_used:
            # The client never used the token we rotated to (it crashed before saving it):
            # that one dies, the presented one stays the previous.
            grant.dead_refresh.add(grant.current_refresh)
        else:
            grant.revoked = True  # replay of a superseded token: revoke the whole grant
            raise OAuthFailure("invalid_grant", "the refresh token was already used; the grant is revoked")
        if not self.rotation_grace and grant.previous_refresh:
            grant.dead_refresh.add(grant.previous_refresh)
            grant.previous_refresh = None
        grant.current_refresh = self._mint("rt-")
        grant.current_used = False
        grant.refreshes += 1
        self._refresh[grant.current_refresh] = grant.id
        return self._token_response(grant)

    def _code_grant(self, form: dict[str, str], client_id: str) -> dict[str, Any]:
        request = self._codes.pop(form.get("code", ""), None)
        if request is None or request.expires_at < time.time() or request.client_id != client_id:
            raise OAuthFailure("invalid_grant", "unknown, used or expired authorization code")
        if form.get("redirect_uri") != request.redirect_uri:
            raise OAuthFailure("invalid_grant", "redirect_uri differs from the authorization request")
        verifier = form.get("code_verifier", "")
        if not verifier or _s256(verifier) != request.code_challenge:
            raise OAuthFailure("invalid_grant", "PKCE verification failed")
        return self._new_grant(request.user, client_id, request.scope)

    def _device_grant(self, form: dict[str, str], client_id: str) -> dict[str, Any]:
        request = self._devices.get(form.get("device_code", ""))
        if request is None or request.client_id != client_id:
            raise OAuthFailure("invalid_grant", "unknown device_code")
        now = time.time()
        too_soon = request.last_poll is not None and now - request.last_poll < request.interval * 0.9
        request.last_poll = now
        if now >= request.expires_at:
            raise OAuthFailure("expired_token", "the device code expired")
        if self._forced_slow_downs > 0 or too_soon:
            self._forced_slow_downs = max(0, self._forced_slow_downs - 1)
            request.interval += self.slow_down_step
            raise OAuthFailure("slow_down", "polling too fast")
        if request.denied:
            raise OAuthFailure("access_denied", "the user declined")
        if request.approved_user is None:
            raise OAuthFailure("authorization_pending", "waiting for the user")
        del self._devices[request.device_code]
        return self._new_grant(request.approved_user, client_id, request.scope)

    def _new_grant(self, user: str, client_id: str, scope: str) -> dict[str, Any]:
        grant = Grant(id=_token("g-"), user=user, client_id=client_id, scope=scope)
        grant.current_refresh = self._mint("rt-")
        self._grants[grant.id] = grant
        self._refresh[grant.current_refresh] = grant.id
        return self._token_response(grant)

    def _token_response(self, grant: Grant) -> dict[str, Any]:
        access = self._mint("at-")
        self._access[access] = AccessToken(grant.id, time.time() + self.access_token_lifetime)
        answer = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": math.ceil(self.access_token_lifetime),
            "refresh_token": grant.current_refresh,
        }
        if grant.scope:
            answer["scope"] = grant.scope
        return answer

    def _introspect(self, token: str) -> dict[str, Any]:
        access = self._access.get(token)
        if access is None or access.expires_at <= time.time():
            return {"active": False}
        grant = self._grants[access.grant_id]
        if grant.revoked:
            return {"active": False}
        return {
            "active": True,
            "token_type": "Bearer",
            "username": grant.user,
            "sub": grant.user,
            "client_id": grant.client_id,
            "scope": grant.scope,
            "exp": int(access.expires_at),
        }

    def _grant_of(self, token: str) -> Grant | None:
        grant_id = self._refresh.get(token)
        if grant_id is None and token in self._access:
            grant_id = self._access[token].grant_id
        return self._grants.get(grant_id) if grant_id else None

    def _device_by_user_code(self, user_code: str) -> DeviceRequest:
        wanted = user_code.strip().upper()
        for request in self._devices.values():
            if request.user_code == wanted:
                return request
        raise KeyError(f"no pending device authorization with user code {user_code!r}")

    def _mint(self, prefix: str) -> str:
        value = _token(prefix)
        self._issued.add(value)
        return value

    # -- clients -------------------------------------------------------------------------
    def _public_client(self, form: dict[str, str]) -> str:
        client_id = form.get("client_id", "")
        if client_id not in self.clients:
            raise OAuthFailure("invalid_client", "unknown client_id", 401)
        return client_id

    def _authenticate_client(self, form: dict[str, str], basic: tuple[str, str] | None) -> str:
        """client_secret_basic, client_secret_post, or a public client (no secret)."""
        client_id, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret"))
        if client_id not in self.clients:
            raise OAuthFailure("invalid_client", "unknown client_id", 401)
        expected = self.clients[client_id]
        if expected is not None and secret != expected:
            raise OAuthFailure("invalid_client", "client authentication failed", 401)
        return client_id


def _handler_for(server: AuthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        auth = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    auth: AuthServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return None  # no access log: query strings carry codes

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        path = urlsplit(self.path).path
        form = self._form()
        routes = {
            "/device_authorization": lambda: self.auth.device_authorization(form),
            "/token": lambda: self.auth.token(form, self._basic()),
            "/introspect": lambda: self.auth.introspect(form),
            "/revoke": lambda: self.auth.revoke(form) or {},
            "/device": lambda: self._approve_from_page(form),
        }
        if path not in routes:
            self._send_json(404, {"error": "not_found"})
            return
        try:
            with self.auth._lock:  # noqa: SLF001 - the handler is part of the server
                answer = routes[path]()
        except OAuthFailure as failure:
            self._send_json(failure.status, {"error": failure.error, "error_description": failure.description})
            return
        if isinstance(answer, str):
            self._send_html(200, answer)
        else:
            self._send_json(200, answer)

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/authorize":
            try:
                with self.auth._lock:  # noqa: SLF001
                    location = self.auth.authorize(query)
            except OAuthFailure as failure:
                self._send_html(400, f"<p>{html.escape(failure.error)}: {html.escape(failure.description)}</p>")
                return
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif parts.path == "/device":
            self._send_html(200, _DEVICE_PAGE.format(code=html.escape(query.get("user_code", ""))))
        else:
            self._send_json(404, {"error": "not_found"})

    def _approve_from_page(self, form: dict[str, str]) -> str:
        try:
            self.auth.approve_device(form.get("user_code", ""), form.get("user") or self.auth.browser_user)
        except KeyError:
            return "<p>Unknown or expired code.</p>"
        return "<p>Approved. You can close this window.</p>"

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}

    def _basic(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        from urllib.parse import unquote_plus

        user, _, secret = base64.b64decode(header[6:]).decode("utf-8", "replace").partition(":")
        return unquote_plus(user), unquote_plus(secret)

    def _send_json(self, status: int, data: dict[str, Any]) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_html(self, status: int, text: str) -> None:
        body = f"<!doctype html><title>espomail test authorization server</title>{text}".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


_DEVICE_PAGE = """<h1>Approve a device</h1>
<form method="post" action="/device">
<label>Code <input name="user_code" value="{code}"></label>
<label>User <input name="user" placeholder="alice"></label>
<button>Approve</button></form>"""


def _token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(24)


def _user_code() -> str:
    letters = "BCDFGHJKLMNPQRSTVWXZ"  # RFC 8628 6.1: no vowels, no look-alikes
    code = "".join(secrets.choice(letters) for _ in range(8))
    return f"{code[:4]}-{code[4:]}"


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _is_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost") and parts.port is not None


def _with_query(uri: str, params: dict[str, str]) -> str:
    separator = "&" if urlsplit(uri).query else "?"
    return uri + separator + urlencode({k: v for k, v in params.items() if v})


def main(argv: list[str] | None = None) -> None:
    """``python -m espomail.testing.authserver [--mail]``: a server for trying espomail by hand."""
    import argparse
    import contextlib
    import signal

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--access-token-lifetime", type=float, default=3600, help="seconds (default 3600)")
    parser.add_argument("--user", default="alice", help="who the browser flow approves as (default alice)")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT)
    parser.add_argument("--mail", action="store_true", help="also start an oauth2 Dovecot and an OAuth SMTP server")
    args = parser.parse_args(argv)
    server = AuthServer(
        access_token_lifetime=args.access_token_lifetime,
        device_interval=5,
        device_lifetime=900,
        clients={args.client_id: None},
        browser_user=args.user,
    )
    server.slow_down_step = 5  # RFC 8628's value for people
    with contextlib.ExitStack() as running:
        running.enter_context(server)
        lines = [("client id", args.client_id)]
        lines += [(name, getattr(server, name)) for name in ("token_url", "device_url", "auth_url")]
        lines += [(name, getattr(server, name)) for name in ("introspection_url", "revocation_url")]
        if args.mail:
            from espomail.testing.dovecot import Dovecot
            from espomail.testing.smtp_oauth import OAuthSMTP

            imap = running.enter_context(Dovecot(users=(), oauth2_introspection_url=server.introspection_url))
            smtp = running.enter_context(OAuthSMTP(server.introspection_url))
            lines += [("imap (no TLS)", f"{imap.host}:{imap.port}"), ("smtp (no TLS)", f"{smtp.host}:{smtp.port}")]
        for name, value in lines:
            print(f"{name + ':':<20}{value}")
        print(f"approve device codes at {server.url}/device; Ctrl-C stops", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())  # kill PID stops the servers too
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
