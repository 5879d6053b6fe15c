"""scripts/playground.sh: servers that stay up, the printed account line works, stop ends them."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _playground(command: str, state: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ESPOMAIL_PLAYGROUND_DIR": str(state)}
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "playground.sh"), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_playground_start_first_fetch_stop(espomail, tmp_path):
    state = tmp_path / "playground"
    started = _playground("start", state)
    try:
        assert started.returncode == 0, started.stderr
        pids = json.loads((state / "state.json").read_text())
        # The printed line, exactly as a user would paste it (backslash continuations).
        text = started.stdout.replace("\\\n", " ")
        line = next(row for row in text.splitlines() if row.startswith("espomail account add-group"))
        args = shlex.split(line)[1:]
        assert espomail("init").exit_code == 0
        assert espomail("team", "add", "support").exit_code == 0  # README's First fetch makes it first
        added = espomail(*args)
        assert added.exit_code == 0, added
        tested = espomail("account", "test", "support")
        assert tested.exit_code == 0 and "SMTP login ok" in tested.stdout, tested
        fetched = espomail("fetch", "--json")
        assert fetched.exit_code == 0, fetched
        assert fetched.json["accounts"][0]["new"] > 0
        assert len(espomail("email", "list", "--account", "support", "--all", "--json").json) > 0
        again = _playground("start", state)  # already running: the same servers, the same line
        assert again.returncode == 0 and again.stdout == started.stdout
        assert _playground("status", state).returncode == 0
    finally:
        stopped = _playground("stop", state)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not _alive(pids["dovecot_pid"]) and not _alive(pids["smtp_pid"])
    assert not state.exists()
    assert _playground("status", state).returncode == 1
