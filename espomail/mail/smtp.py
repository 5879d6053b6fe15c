"""Sending over SMTP (smtplib): ssl, starttls or none, optional login, a timeout on everything.

Every failure becomes a MailServerError with a one-line reason (refused recipient, bad
credentials, TLS, dead server); the password never appears in it. Two kinds tell the outbox
what to do next: ServerUnavailable (no connection, TLS, login, a timeout, a dropped
connection: nothing about this message, the server is unusable now) and Rejected (the server
answered this message's MAIL, RCPT or DATA with an error; ``permanent`` for a 5xx answer). OAuth2 accounts log in
with AUTH XOAUTH2 through a TokenProvider (``SmtpConfig.oauth``); no token appears either.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass

from espomail import secrets
from espomail.config import Settings
from espomail.errors import EspomailError, MailServerError
from espomail.mail.addresses import needs_smtputf8
from espomail.mail.compose import wire_address
from espomail.mail.imap import describe_error, tls_context
from espomail.oauth import sasl
from espomail.oauth.sasl import TokenProvider


@dataclass(frozen=True)
class SmtpConfig:
    account: str
    host: str
    port: int
    security: str
    username: str | None
    secret: secrets.SecretRef | None
    insecure: bool = False
    oauth: TokenProvider | None = None  # OAuth2 account: AUTH XOAUTH2 with its tokens instead of a password

    @classmethod
    def from_account(cls, account, settings: Settings) -> SmtpConfig:  # noqa: ANN001 - a Row
        return cls(
            account=account["name"],
            host=account["smtp_host"],
            port=account["smtp_port"] or 587,
            security=account["smtp_security"] or "starttls",
            username=account["smtp_username"],
            secret=secrets.SecretRef.from_json(account["smtp_secret_ref"]),
            insecure=bool(account["insecure"]),
        )


class ServerUnavailable(MailServerError):
    """The server cannot take mail now (connection, TLS, login, timeout, dropped connection)."""


class Rejected(MailServerError):
    """The server refused this message; ``permanent`` when it answered 5xx (RFC 5321: do not
    try again as it is)."""

    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class RefusedRecipients(Rejected):
    """The server refused every (or, with ``accepted`` true, only some) recipient."""

    def __init__(self, message: str, refused: dict[str, str], accepted: bool = False) -> None:
        super().__init__(message, permanent=all(reason.startswith("5") for reason in refused.values()))
        self.refused = refused
        self.accepted = accepted  # the message went to the other recipients


def connect(config: SmtpConfig, timeout: float) -> smtplib.SMTP:
    try:
        if config.security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=timeout, context=tls_context(config.insecure)
            )
        else:
            server = smtplib.SMTP(config.host, config.port, timeout=timeout)
            if config.security == "starttls":
                server.starttls(context=tls_context(config.insecure))
        if config.oauth is not None:
            _token_login(server, config, config.oauth)
        elif config.username:
            password = secrets.resolve(config.secret, config.account, timeout)
            server.login(config.username, password)
        return server
    except smtplib.SMTPAuthenticationError:
        raise ServerUnavailable(
            f"SMTP login refused by {config.host}:{config.port} (bad credentials?): check "
            "--smtp-username and the SMTP password"
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise ServerUnavailable(f"SMTP server {config.host}:{config.port}: {exc}; check --smtp-security") from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise ServerUnavailable("SMTP: " + _reason(exc, config)) from None


def _token_login(server: smtplib.SMTP, config: SmtpConfig, tokens: TokenProvider) -> None:
    """AUTH XOAUTH2 (OAUTHBEARER if that is all the server offers); once more with a fresh token if refused."""
    server.ehlo_or_helo_if_needed()
    mechanism = sasl.choose_mechanism(server.esmtp_features.get("auth", "").split())
    if mechanism is None:
        _quit(server)
        raise MailServerError(
            f"SMTP server {config.host}:{config.port} offers neither AUTH XOAUTH2 nor OAUTHBEARER: it does not take "
            "OAuth2 logins; check --smtp-host and --smtp-security"
        )
    if not config.username:
        _quit(server)
        raise MailServerError(
            f"account '{config.account}' has no SMTP username for the OAuth2 login; set --smtp-username"
        )
    for force_refresh in (False, True):
        try:
            token = tokens.access_token(force_refresh=force_refresh)
        except EspomailError:
            _quit(server)
            raise
        try:
            server.auth(mechanism, sasl.Exchange(mechanism, config.username, token, config.host, config.port))
            return
        except smtplib.SMTPAuthenticationError:
            continue
    _quit(server)
    raise MailServerError(
        f"SMTP server {config.host}:{config.port} refused the OAuth2 access token ({mechanism}) even after a refresh: "
        "check --smtp-username is the mailbox the authorization was given for, and that SMTP AUTH is allowed for it"
    )


def check(config: SmtpConfig, timeout: float) -> None:
    server = connect(config, timeout)
    try:
        server.noop()
    finally:
        _quit(server)


class SendError(Rejected):
    """The message cannot be sent through this server as it is (a clear, final reason)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


def send(config: SmtpConfig, timeout: float, sender: str, recipients: list[str], raw: bytes) -> None:
    """Send ``raw``; raise MailServerError (RefusedRecipients) when it was not accepted for all.

    Envelope addresses go out with ASCII (A-label) domains; when one still is not ASCII (an
    international local part) the server must offer SMTPUTF8, else SendError says so."""
    sender, recipients = wire_address(sender), [wire_address(item) for item in recipients]
    international = [item for item in [sender, *recipients] if needs_smtputf8(item)]
    server = connect(config, timeout)
    try:
        options = _mail_options(server, config, international, raw)
        refused = server.sendmail(sender, recipients, raw, mail_options=options)
    except smtplib.SMTPRecipientsRefused as exc:
        refused = {k: _code(v) for k, v in exc.recipients.items()}
        raise RefusedRecipients(
            f"SMTP server {config.host} refused every recipient: {_list(refused)}", refused
        ) from None
    except smtplib.SMTPSenderRefused as exc:
        raise Rejected(
            f"SMTP server {config.host} refused the sender {sender}: {exc.smtp_code} {_text(exc.smtp_error)}",
            permanent=exc.smtp_code >= 500,
        ) from None
    except smtplib.SMTPDataError as exc:
        raise Rejected("SMTP: " + _reason(exc, config), permanent=exc.smtp_code >= 500) from None
    except (smtplib.SMTPNotSupportedError, UnicodeError) as exc:
        raise Rejected(f"SMTP server {config.host}:{config.port} cannot take this message: {exc}", True) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ServerUnavailable("SMTP: " + _reason(exc, config)) from None
    finally:
        _quit(server)
    if refused:
        shown = {k: _code(v) for k, v in refused.items()}
        raise RefusedRecipients(f"SMTP server {config.host} refused {_list(shown)}", shown, accepted=True)


def _mail_options(server: smtplib.SMTP, config: SmtpConfig, international: list[str], raw: bytes) -> list[str]:
    """SMTPUTF8 (and 8BITMIME) when an envelope address needs it; SendError when the
    server does not offer it."""
    if not international:
        return []
    server.ehlo_or_helo_if_needed()
    if not server.has_extn("smtputf8"):
        raise SendError(
            f"the SMTP server {config.host}:{config.port} does not support SMTPUTF8, needed for "
            f"{international[0]}: send through a server that offers it, or to an ASCII address"
        )
    return ["SMTPUTF8", "BODY=8BITMIME"] if server.has_extn("8bitmime") and not raw.isascii() else ["SMTPUTF8"]


def _reason(exc: BaseException, config: SmtpConfig) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{config.host}:{config.port} answered {exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"{config.host}:{config.port} closed the connection"
    return describe_error(exc, config.host, config.port)


def _code(value: object) -> str:
    if isinstance(value, tuple) and len(value) == 2:
        return f"{value[0]} {_text(value[1])}"
    return str(value)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _list(refused: dict[str, str]) -> str:
    return "; ".join(f"{address} ({reason})" for address, reason in refused.items())


def _quit(server: smtplib.SMTP) -> None:
    try:
        server.quit()
    except (smtplib.SMTPException, OSError):
        server.close()
