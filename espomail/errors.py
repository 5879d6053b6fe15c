"""Errors that reach the user.

Services raise these; only the CLI turns them into an ``Error:`` line on stderr and an
exit code (SPEC 2): 1 runtime failure, 2 bad usage or invalid input, 3 not found,
4 permission denied. The message always says what went wrong and what to do.
"""


class EspomailError(Exception):
    """Base class: a failure the user can understand and act on."""

    exit_code = 1
    code = "runtime_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(EspomailError):
    """Bad usage or invalid input (exit 2)."""

    exit_code = 2
    code = "invalid_input"


class ConfigError(InvalidInput):
    """A configuration file or environment value is wrong (exit 2)."""

    code = "config_error"


class Duplicate(InvalidInput):
    """Something with that name or address exists already (exit 2)."""

    code = "duplicate"


class NotFound(EspomailError):
    """A user, team, record, email ... does not exist (exit 3)."""

    exit_code = 3
    code = "not_found"


class PermissionDenied(EspomailError):
    """The acting user lacks a permission (exit 4)."""

    exit_code = 4
    code = "permission_denied"


class SecretError(EspomailError):
    """A password could not be stored or read (exit 1)."""

    code = "secret_error"


class StoreError(EspomailError):
    """The store failed (a PostgreSQL server gone) or another fetch host holds the account:
    nothing wrong with a mail account, so a fetch neither counts it against the account nor
    backs off (exit 1)."""

    code = "database_error"


class MailServerError(EspomailError):
    """An IMAP or SMTP server could not be reached or refused us (exit 1)."""

    code = "mail_server_error"
