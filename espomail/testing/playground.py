"""A playground for README's "First fetch": a private Dovecot and SMTP server that stay up.

``scripts/playground.sh`` (start) puts sample mail in a ``support`` mailbox of a private
Dovecot (its own config in a temporary directory, 127.0.0.1, a free port), starts a small
SMTP server on another free port that saves what it receives as .eml files, writes their
pids and ports to ``state.json``, and prints the ``espomail account add-group`` line to use.
``scripts/playground.sh stop`` ends both and removes the state directory. Nothing here
touches the system's Dovecot or an espomail store: you run the espomail commands yourself.

The state directory is $ESPOMAIL_PLAYGROUND_DIR, else $XDG_STATE_HOME/espomail-playground
(~/.local/state/espomail-playground).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from espomail.testing.dovecot import PASSWORD, Dovecot, free_port

ADDRESS = "support@playground.example"
USER = "support"


def state_dir() -> Path:
    explicit = os.environ.get("ESPOMAIL_PLAYGROUND_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "espomail-playground"


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_state(directory: Path) -> dict | None:
    path = directory / "state.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def start(directory: Path) -> dict:
    """Start both servers (or find them running) and return the state."""
    state = _read_state(directory)
    if state and _alive(state.get("dovecot_pid")) and _alive(state.get("smtp_pid")):
        return state
    if state:
        stop(directory)
    directory.mkdir(parents=True, exist_ok=True)
    password_file = directory / "imap.pass"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    # Dovecot's sockets live under its base: a short path, as Unix socket names are short.
    dovecot_dir = Path(tempfile.mkdtemp(prefix="espomail-playground-"))
    server = Dovecot(base=dovecot_dir, users=[USER])
    try:
        server.start()
    except BaseException:
        shutil.rmtree(dovecot_dir, ignore_errors=True)
        raise
    try:
        from espomail.testing.demo import sample_messages

        accepted = server.append(USER, sample_messages())
        smtp_port = free_port()
        smtp_pid = _start_smtp(directory, smtp_port)
    except BaseException:
        server.stop()
        shutil.rmtree(dovecot_dir, ignore_errors=True)
        raise
    state = {
        "dir": str(directory),
        "imap_host": server.host,
        "imap_port": server.port,
        "dovecot_pid": server._pid,  # noqa: SLF001 - the daemon outlives this object
        "dovecot_dir": str(dovecot_dir),
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_pid": smtp_pid,
        "messages": accepted,
        "password_file": str(password_file),
        "address": ADDRESS,
    }
    (directory / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    return state


def _start_smtp(directory: Path, port: int) -> int:
    log = open(directory / "smtp.log", "ab")  # noqa: SIM115 - handed to the child
    child = subprocess.Popen(
        [sys.executable, "-m", "espomail.testing.playground", "serve-smtp", str(directory / "smtp"), str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,  # stays up after the shell that started it exits
    )
    log.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"the SMTP server stopped; see {directory / 'smtp.log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"220"):
                    return child.pid
        except OSError:
            time.sleep(0.05)
    child.terminate()
    raise RuntimeError(f"the SMTP server did not start; see {directory / 'smtp.log'}")


def serve_smtp(directory: Path, port: int) -> None:
    """Run an SMTP server on 127.0.0.1:port saving each message as directory/NNNN.eml."""
    from aiosmtpd.controller import Controller

    directory.mkdir(parents=True, exist_ok=True)

    class SaveToFiles:
        async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
            number = len(list(directory.glob("*.eml"))) + 1
            (directory / f"{number:04d}.eml").write_bytes(bytes(envelope.original_content))
            return "250 Message accepted"

    controller = Controller(SaveToFiles(), hostname="127.0.0.1", port=port)
    controller.start()
    stopped = False

    def finish(*_: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    while not stopped:
        time.sleep(0.2)
    controller.stop()


def stop(directory: Path) -> bool:
    """End both servers and remove the state directory; False when nothing was running."""
    state = _read_state(directory)
    if state is None:
        return False
    for key in ("smtp_pid", "dovecot_pid"):
        pid = state.get(key)
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
    if state.get("dovecot_dir"):
        shutil.rmtree(state["dovecot_dir"], ignore_errors=True)
    shutil.rmtree(directory, ignore_errors=True)
    return True


def add_group_line(state: dict) -> str:
    """The espomail command that adds the playground mailbox (for README's First fetch)."""
    parts = [
        ["espomail", "account", "add-group", "support", "--address", state["address"]],
        ["--host", state["imap_host"], "--port", str(state["imap_port"]), "--security", "none"],
        ["--username", USER, "--password-cmd", f"cat {state['password_file']}"],
        ["--team", "support", "--fetch-since", "2000-01-01"],
        ["--smtp-host", state["smtp_host"], "--smtp-port", str(state["smtp_port"]), "--smtp-security", "none"],
    ]
    return " \\\n    ".join(" ".join(shlex.quote(p) for p in group) for group in parts)


def report(state: dict) -> str:
    directory = state["dir"]
    return f"""Playground up (state in {directory}):
  IMAP  {state["imap_host"]}:{state["imap_port"]}  user {USER}, password in {state["password_file"]}; \
{state["messages"]} sample messages
  SMTP  {state["smtp_host"]}:{state["smtp_port"]}  no login; what it receives is saved in {directory}/smtp/

Follow README's "First fetch" (init, team add support, ...) with this account:

{add_group_line(state)}

Then: espomail account test support; espomail fetch; espomail email list --account support
Auto-replies and 'email send' go to the playground SMTP; to send system mail through it too:
  espomail outbound set --address {state["address"]} --name "Playground CRM"

Stop it with: scripts/playground.sh stop
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "start"
    if command == "serve-smtp" and len(args) == 3:
        serve_smtp(Path(args[1]), int(args[2]))
        return 0
    directory = state_dir()
    if command == "start":
        print(report(start(directory)), end="")
        return 0
    if command == "stop":
        print("Playground stopped." if stop(directory) else f"No playground running (no {directory}/state.json).")
        return 0
    if command == "status":
        state = _read_state(directory)
        if state and _alive(state.get("dovecot_pid")) and _alive(state.get("smtp_pid")):
            print(report(state), end="")
            return 0
        print("No playground running.")
        return 1
    print("usage: scripts/playground.sh [start|stop|status]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
