"""``espomail systemd``: unit files for ``espomail watch`` (a service) and ``espomail fetch`` (a timer).

The command lines are the ones ``espomail cron`` prints (this espomail's absolute path,
``--config`` and ``--db`` made absolute), written with systemd's quoting. For a non-root
user the units are ``--user`` units in ~/.config/systemd/user (``User=`` is implied there);
for root, or with ``--system``, system units in /etc/systemd/system with ``User=`` set to
the user who ran the command.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import re
import shlex
from pathlib import Path

import click

from espomail.cli.app import get_app
from espomail.cli.fetch import _command_line
from espomail.cli.output import emit, json_option, say

WATCH = "espomail-watch.service"
FETCH = "espomail-fetch.service"
TIMER = "espomail-fetch.timer"
_BARE = re.compile(r"[A-Za-z0-9_@+=:,./-]+")


@dataclasses.dataclass(frozen=True)
class Scope:
    """Where and how the units are installed."""

    system: bool
    user: str
    home: str

    @property
    def directory(self) -> str:
        return "/etc/systemd/system" if self.system else f"{self.home}/.config/systemd/user"

    @property
    def systemctl(self) -> str:
        return "systemctl" if self.system else "systemctl --user"

    @property
    def wanted_by(self) -> str:
        return "multi-user.target" if self.system else "default.target"


def systemd_quote(arg: str) -> str:
    """One ExecStart= word: ``%`` and ``$`` escaped (specifiers, variables), quoted when needed."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if _BARE.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_line(parts: list[str]) -> str:
    return " ".join(systemd_quote(part) for part in parts)


def watch_unit(command: list[str], scope: Scope) -> str:
    user = f"User={scope.user}\n" if scope.system else ""
    return f"""[Unit]
Description=espomail watch: new mail stored and cased the moment it arrives (IMAP IDLE)
Documentation=man:espomail-watch(1)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
{user}ExecStart={exec_line([*command, "watch"])}
Restart=on-failure
RestartSec=10
# SIGTERM: the fetch in hand finishes and commits, then watch exits 0.
KillSignal=SIGTERM
TimeoutStopSec=120
# Accounts using --password-env read their variables from here (a file of NAME=value lines, mode 0600):
#EnvironmentFile={scope.home}/.config/espomail/environment

[Install]
WantedBy={scope.wanted_by}
"""


def fetch_unit(command: list[str], scope: Scope) -> str:
    user = f"User={scope.user}\n" if scope.system else ""
    return f"""[Unit]
Description=espomail fetch: fetch new mail from every active account (run by {TIMER})
Documentation=man:espomail-fetch(1)
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
{user}ExecStart={exec_line([*command, "fetch"])}
#EnvironmentFile={scope.home}/.config/espomail/environment
"""


def fetch_timer(scope: Scope) -> str:
    return f"""[Unit]
Description=espomail fetch every minute (alone, or as a fallback beside {WATCH})
Documentation=man:espomail-fetch(1)

[Timer]
OnCalendar=*-*-* *:*:00
AccuracySec=1s
Unit={FETCH}

[Install]
WantedBy=timers.target
"""


def install_commands(command: list[str], scope: Scope) -> list[str]:
    """Shell commands that write the units into place and start them."""
    directory = scope.directory
    sudo = "sudo " if scope.system and os.geteuid() != 0 else ""
    this = " ".join(shlex.quote(part) for part in command)
    print_unit = f"{this} systemd {'--system' if scope.system else '--user'} --unit"
    if sudo:
        write = [f"{print_unit} {name} | sudo tee {directory}/{name} >/dev/null" for name in UNITS]
    else:
        write = [f"{print_unit} {name} > {directory}/{name}" for name in UNITS]
    if not scope.system:
        write.insert(0, f"mkdir -p {directory}")
    journal = f"journalctl {'' if scope.system else '--user '}-u {WATCH} -f"
    commands = [
        *write,
        f"{sudo}{scope.systemctl} daemon-reload",
        f"{sudo}{scope.systemctl} enable --now {WATCH}   # push: a case the moment mail arrives",
        f"{sudo}{scope.systemctl} enable --now {TIMER}   # fetch every minute (beside watch as a fallback, or alone)",
        f"{scope.systemctl} status {WATCH}; {journal}",
    ]
    if not scope.system:
        commands.append(f"loginctl enable-linger {scope.user}   # keep the user's units running after logout")
    return commands


UNITS = (WATCH, FETCH, TIMER)


def _units(command: list[str], scope: Scope) -> dict[str, str]:
    return {WATCH: watch_unit(command, scope), FETCH: fetch_unit(command, scope), TIMER: fetch_timer(scope)}


@click.command()
@click.option(
    "--system/--user",
    "system",
    default=None,
    help="System units with User= (default for root) or --user units (default for other users).",
)
@click.option("--unit", type=click.Choice(UNITS), help="Print only this unit file (to redirect into place).")
@json_option
def systemd(system: bool | None, unit: str | None) -> None:
    """Print systemd units: a service for 'espomail watch' and a timer for 'espomail fetch'.

    The units run this espomail (absolute path) with the --config and --db in use now, as
    'espomail cron' does. The commands that install them are printed as comments: --user
    units in ~/.config/systemd/user for a non-root user, system units in /etc/systemd/system
    (with User=) for root or with --system. Run watch alone, the fetch timer alone, or both
    (cron-like fetches beside watch never import a message twice).

    \b
    Examples:
      espomail systemd
      espomail systemd --unit espomail-watch.service > ~/.config/systemd/user/espomail-watch.service
      espomail systemd --system --json
    """
    app = get_app()
    entry = pwd.getpwuid(os.getuid())
    scope = Scope(os.geteuid() == 0 if system is None else system, entry.pw_name, entry.pw_dir or str(Path.home()))
    command = _command_line(app)[:-1]  # 'espomail cron''s command line, without its 'fetch'
    units = _units(command, scope)
    if app.json:
        emit(
            {
                "scope": "system" if scope.system else "user",
                "directory": scope.directory,
                "units": units,
                "install": install_commands(command, scope),
            }
        )
    elif unit:
        click.echo(units[unit], nl=False)
    else:
        _print_all(units, command, scope)


def _print_all(units: dict[str, str], command: list[str], scope: Scope) -> None:
    kind = "system units" if scope.system else f"--user units of {scope.user}"
    say(f"# espomail as a service ({kind}). Install:")
    for line in install_commands(command, scope):
        say(f"#   {line}")
    for name, text in units.items():
        say("")
        say(f"# ---- {scope.directory}/{name}")
        click.echo(text, nl=False)


COMMANDS = [systemd]
