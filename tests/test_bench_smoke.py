"""The hostile-input benchmark runs (its figures are read by people, not asserted: no timing in
tests): every worst case of issues 12 and 13 is built, parsed and measured without an error."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.engine_independent
def test_the_hostile_benchmark_measures_every_case(tmp_path):
    out = tmp_path / "hostile.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.hostile", "--no-corpus", "--no-import", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Worst figures" in done.stdout
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) >= 20
    assert all(row["kind"] == "hostile" and row["parse_cpu_s"] is not None for row in rows)
