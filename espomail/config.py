"""Settings: defaults < config file < ``ESPOMAIL_*`` environment < command-line options.

``load_settings()`` runs once in the root command and the result is passed to services;
nothing reads configuration from a global. Every key is described once, here, and in
``config.example.yaml`` (a test checks that the two agree).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from espomail.errors import ConfigError
from espomail.mail import msgid
from espomail.store.urls import is_url
from espomail.timeutil import parse_duration


class Key(NamedTuple):
    """One setting: its type, default, a one-line description and, for numbers, the
    allowed range (inclusive; a value outside it, NaN or infinity is refused)."""

    kind: str
    default: Any
    doc: str
    low: float | None = None
    high: float | None = None


MINUTE, HOUR, DAY = 60, 3600, 86400

# Types: int, float, bool, str, "path", "str?" (string or null), "list", "duration"
# (seconds; "2h", "90m" or a number).
KEYS: dict[str, Key] = {
    "db_path": Key(
        "path?",
        None,
        "SQLite database file, or a PostgreSQL URL postgresql://USER@HOST:PORT/DBNAME; default DATA_DIR/espomail.db",
    ),
    "db_password_cmd": Key("str?", None, "command printing the PostgreSQL password (else PGPASSWORD or ~/.pgpass)"),
    "data_dir": Key("path?", None, "data directory; default $XDG_DATA_HOME/espomail"),
    "log_file": Key("path?", None, "log file; default DATA_DIR/espomail.log; '-' for stderr"),
    "log_level": Key("str", "info", "debug, info, warning or error"),
    "log_target": Key("str", "file", "where the log goes: file (log_file), syslog or journald"),
    "max_per_run": Key("int", 1000, "messages fetched per folder per run", 1, 1_000_000),
    "batch_size": Key("int", 200, "messages per pipelined IMAP FETCH and per store commit", 1, 10_000),
    "max_message_size_mb": Key("float", 25.0, "larger messages are stored as headers only", 0.001, 2048),
    "workers": Key("int", 4, "accounts fetched at the same time", 1, 64),
    "timeout_s": Key("float", 60.0, "timeout of every network operation, in seconds", 1, HOUR),
    "auto_reply_limit": Key("int", 5, "system-sent messages to one address per period", 0, 10_000),
    "auto_reply_period": Key("duration", "2h", "the period of auto_reply_limit (e.g. 2h)", MINUTE, 365 * DAY),
    "send_retries": Key(
        "int", 3, "attempts at each outgoing email before it stays Failed (then: email resend)", 0, 100
    ),
    "failed_retries": Key("int", 5, "automatic retries of a failed import by later fetches", 0, 100),
    "no_reply_pattern": Key(
        "list",
        ["noreply", "no-reply", "mailer-daemon", "postmaster"],
        "senders whose local part contains one of these get no auto-reply",
    ),
    "reopen_closed_cases": Key("bool", False, "a customer follow-up reopens a Closed case"),
    "b2c_mode": Key("bool", False, "link mail from a contact to the contact, not its account"),
    "max_personal_accounts": Key("int", 2, "personal mail accounts per non-admin user", 0, 10_000),
    "message_id_domain": Key(
        "str?", None, "domain of generated Message-IDs; default: the domain of the sending account's address"
    ),
    "side_effects_max_age_days": Key(
        "int",
        2,
        "no auto-reply or notification for mail whose Date or server arrival time is older (days)",
        0,
        1_000_000,
    ),
    "notify_max_age_days": Key("int?", None, "deprecated: the old name of side_effects_max_age_days", 0, 1_000_000),
    "lease_s": Key("int", 300, "seconds a fetch holds an account before another host may take it over", 1, DAY),
    "stale_after_min": Key(
        "int", 30, "'status' reports an account not fetched successfully for this long", 1, 7 * 24 * 60
    ),
    "poll_interval_s": Key(
        "float",
        60.0,
        "espomail watch: seconds between polls of servers without IDLE, account and outbox checks",
        0.1,
        DAY,
    ),
    # Cost bounds on incoming mail (espomail.mail.limits): beyond them a message is cut or marked, never lost.
    "max_header_count": Key(
        "int", 10_000, "header fields read per message or MIME part; the rest ignored", 10, 10_000_000
    ),
    "max_header_length": Key(
        "int", 100_000, "characters kept of one header field; longer ones are cut", 1_000, 100_000_000
    ),
    "max_addresses": Key("int", 1_000, "addresses kept per From, To, Cc, Bcc or Reply-To field", 1, 1_000_000),
    "max_mime_depth": Key("int", 40, "nesting levels of MIME multiparts read; deeper ones kept as one part", 1, 1_000),
    "max_mime_parts": Key("int", 5_000, "MIME parts read per message; the rest kept as one part", 1, 1_000_000),
    "max_filename_length": Key(
        "int", 255, "characters of an attachment file name (cut in the middle, extension kept)", 16, 100_000
    ),
    "max_references": Key("int", 100, "References ids kept per email: the thread root and the newest", 2, 100_000),
    "max_html_bytes": Key(
        "int", 1_000_000, "characters of an html body converted to text; the rest not converted", 1_000, 1_000_000_000
    ),
    "max_filter_pattern_length": Key(
        "int", 1_000, "characters of a filter's From, To or Subject pattern", 1, 1_000_000
    ),
}

# The cost bounds, passed to Settings as they are (see espomail.mail.limits).
LIMIT_KEYS = (
    "max_header_count",
    "max_header_length",
    "max_addresses",
    "max_mime_depth",
    "max_mime_parts",
    "max_filename_length",
    "max_references",
    "max_html_bytes",
    "max_filter_pattern_length",
)
LOG_TARGETS = ("file", "syslog", "journald")

ENV_PREFIX = "ESPOMAIL_"
# Environment variables that are not settings keys.
ENV_SPECIAL = {"ESPOMAIL_CONFIG", "ESPOMAIL_DB", "ESPOMAIL_AS"}


class Settings(NamedTuple):
    db_path: Path | None  # the SQLite file; None when the store is a PostgreSQL URL (db_url)
    data_dir: Path
    log_file: str
    log_level: str
    max_per_run: int
    batch_size: int
    max_message_size_mb: float
    workers: int
    timeout_s: float
    auto_reply_limit: int
    auto_reply_period: int
    send_retries: int
    failed_retries: int
    no_reply_pattern: tuple[str, ...]
    reopen_closed_cases: bool
    b2c_mode: bool
    max_personal_accounts: int
    message_id_domain: str | None
    side_effects_max_age_days: int
    lease_s: int
    max_header_count: int
    max_header_length: int
    max_addresses: int
    max_mime_depth: int
    max_mime_parts: int
    max_filename_length: int
    max_references: int
    max_html_bytes: int
    max_filter_pattern_length: int
    poll_interval_s: float = 60.0
    log_target: str = "file"
    stale_after_min: int = 30
    config_path: Path | None = None
    db_url: str | None = None  # a URL given as db_path (--db, ESPOMAIL_DB): never taken for a file
    db_password_cmd: str | None = None

    def replace(self, **changes: Any) -> Settings:
        return self._replace(**changes)

    @property
    def database(self) -> Path | str:
        """Where the store is: the PostgreSQL URL, or the SQLite file."""
        return self.db_url or self.db_path  # type: ignore[return-value]


def default_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "espomail" / "config.yaml"


def default_data_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "espomail"


def load_settings(
    config_path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from the layers; raise ConfigError naming a bad key."""
    env = os.environ if env is None else env
    values = {key: spec[1] for key, spec in KEYS.items()}
    path = _config_file(config_path, env)
    if path is not None:
        values.update(_read_file(path))
    values.update(_read_env(env))
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if (
        values["notify_max_age_days"] is not None
        and values["side_effects_max_age_days"] == KEYS["side_effects_max_age_days"].default
    ):
        values["side_effects_max_age_days"] = values["notify_max_age_days"]  # the deprecated name
    return _finish(values, path, env)


def _config_file(config_path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    explicit = config_path or env.get("ESPOMAIL_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"config file {path} does not exist; create it with "
                f"'espomail --config {path} init' or fix --config/ESPOMAIL_CONFIG"
            )
        return path
    default = default_config_path(env)
    return default if default.is_file() else None


def _read_file(path: Path) -> dict[str, Any]:
    import yaml  # only when there is a file: most commands run without one

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot read config file {path}: {first_line}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys to values")
    result = {}
    for key, raw in data.items():
        result[str(key)] = _check(str(key), raw, f"in {path}")
    return result


def _read_env(env: Mapping[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if env.get("ESPOMAIL_DB"):
        result["db_path"] = env["ESPOMAIL_DB"]
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_SPECIAL:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in KEYS:
            # Not a setting: such variables may hold passwords for --password-env.
            continue
        result[key] = _check(key, _from_env_string(key, raw), f"in ${name}")
    return result


def _from_env_string(key: str, raw: str) -> Any:
    kind = KEYS.get(key, ("str", None, ""))[0]
    if kind == "list":
        return [part.strip() for part in raw.split(",") if part.strip()]
    if kind.endswith("?") and raw == "":
        return None
    return raw


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _check(key: str, raw: Any, where: str) -> Any:
    """Convert ``raw`` to the type of ``key``; ConfigError names the key otherwise."""
    if key not in KEYS:
        known = ", ".join(sorted(KEYS))
        raise ConfigError(f"unknown config key '{key}' {where}; known keys: {known}")
    spec = Key(*KEYS[key])
    try:
        return _in_range(spec, _convert(spec.kind, raw))
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"config key '{key}' {where}: {exc}") from None


def _in_range(spec: Key, value: Any) -> Any:
    """A number must be finite and, when the key declares a range, inside it."""
    if spec.kind.rstrip("?") not in ("int", "float", "duration") or value is None:
        return value
    allowed = f"from {allowed_range(spec)}" if spec.low is not None else "a finite number, not negative"
    low, high = (0, math.inf) if spec.low is None else (spec.low, spec.high)
    if not math.isfinite(value) or not low <= value <= high:
        unit = " seconds" if spec.kind == "duration" else ""
        raise ValueError(f"must be {allowed}, got {_number(value)}{unit}")
    return value


def allowed_range(spec: Key) -> str:
    """``1 to 3600`` (``60 to 31536000 seconds`` for a duration)."""
    unit = " seconds" if spec.kind == "duration" else ""
    return f"{_number(spec.low)} to {_number(spec.high)}{unit}"


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _convert(kind: str, raw: Any) -> Any:
    if kind.endswith("?"):
        if raw is None:
            return None
        kind = kind[:-1]
    if kind in ("str", "path"):
        if not isinstance(raw, str) or not raw:
            raise TypeError(f"expected a non-empty string, got {raw!r}")
        return raw
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise TypeError(f"expected true or false, got {raw!r}")
    if kind == "int":
        return _as_number(raw, int)
    if kind == "float":
        return _as_number(raw, float)
    if kind == "duration":
        if isinstance(raw, bool):
            raise TypeError(f"expected a duration such as 2h, got {raw!r}")
        return parse_duration(raw if isinstance(raw, int | str) else str(raw))
    if kind == "list":
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise TypeError(f"expected a list of strings, got {raw!r}")
        return raw
    raise AssertionError(kind)


def _as_number(raw: Any, kind: type) -> Any:
    if isinstance(raw, bool):
        raise TypeError(f"expected a number, got {raw!r}")
    if isinstance(raw, int | float) and not (kind is int and isinstance(raw, float)):
        return kind(raw)
    if isinstance(raw, str):
        try:
            return kind(raw)
        except ValueError:
            pass
    raise TypeError(f"expected {'a whole number' if kind is int else 'a number'}, got {raw!r}")


def _finish(values: dict[str, Any], path: Path | None, env: Mapping[str, str]) -> Settings:
    data_dir = Path(values["data_dir"]).expanduser() if values["data_dir"] else None
    db_url = values["db_path"] if values["db_path"] and is_url(values["db_path"]) else None
    db_path = Path(values["db_path"]).expanduser() if values["db_path"] and not db_url else None
    if data_dir is None:
        data_dir = db_path.parent if db_path else default_data_dir(env)
    if db_path is None and not db_url:
        db_path = data_dir / "espomail.db"
    if values["log_level"].lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(
            f"config key 'log_level': expected debug, info, warning or error, got {values['log_level']!r}"
        )
    if values["log_target"].lower() not in LOG_TARGETS:
        raise ConfigError(f"config key 'log_target': expected {', '.join(LOG_TARGETS)}, got {values['log_target']!r}")
    domain = values["message_id_domain"]
    if domain and msgid.usable_domain(domain) is None:
        raise ConfigError(f"config key 'message_id_domain': expected a domain such as example.com, got {domain!r}")
    return Settings(
        db_path=db_path,
        data_dir=data_dir,
        log_file=values["log_file"] or str(data_dir / "espomail.log"),
        log_level=values["log_level"].lower(),
        max_per_run=values["max_per_run"],
        batch_size=max(1, values["batch_size"]),
        max_message_size_mb=values["max_message_size_mb"],
        workers=max(1, values["workers"]),
        timeout_s=values["timeout_s"],
        auto_reply_limit=values["auto_reply_limit"],
        auto_reply_period=parse_duration(values["auto_reply_period"]),
        send_retries=values["send_retries"],
        failed_retries=values["failed_retries"],
        no_reply_pattern=tuple(p.lower() for p in values["no_reply_pattern"]),
        reopen_closed_cases=values["reopen_closed_cases"],
        b2c_mode=values["b2c_mode"],
        max_personal_accounts=values["max_personal_accounts"],
        message_id_domain=msgid.usable_domain(domain) if domain else None,
        side_effects_max_age_days=values["side_effects_max_age_days"],
        lease_s=values["lease_s"],
        **{key: values[key] for key in LIMIT_KEYS},
        poll_interval_s=values["poll_interval_s"],
        log_target=values["log_target"].lower(),
        stale_after_min=values["stale_after_min"],
        config_path=path,
        db_url=db_url,
        db_password_cmd=values["db_password_cmd"],
    )


def starter_config() -> str:
    """The text of config.example.yaml, built from KEYS (written by ``init --config``)."""
    import yaml

    lines = [
        "# espomail configuration. Every key is optional; shown here with its default.",
        "# Layers: defaults < this file < ESPOMAIL_<KEY> environment < command-line options.",
        "",
    ]
    for key, spec in KEYS.items():
        spec = Key(*spec)
        default = spec.default
        allowed = f" ({allowed_range(spec)})" if spec.low is not None else ""
        lines.append(f"# {spec.doc}{allowed}")
        shown = yaml.safe_dump({key: default}, default_flow_style=True).strip()[1:-1]
        lines.append(f"# {shown}" if default is None else shown)
        lines.append("")
    return "\n".join(lines)
