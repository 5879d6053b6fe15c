"""A reader that stops reading (``espomail email list | head -1``) is no failure: exit 0,
nothing on stderr. click alone turns that EPIPE into a silent exit 1, which cron and
``set -o pipefail`` scripts would report as a failure."""

import os
import subprocess
import sys

import pytest


@pytest.mark.engine_independent
@pytest.mark.parametrize("form", [[], ["--json"], ["--nl"]])
def test_a_reader_that_has_gone_is_exit_0_and_silent(espomail, isolated, form):
    for name in ("support", "sales", "billing"):
        assert espomail("team", "add", name).exit_code == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before espomail writes its first byte
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "espomail", "team", "list", *form],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (0, "")
