"""store/psycopg_start.py: psycopg imported without importlib.metadata, its versions unchanged."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from espomail.store import psycopg_start

PROBE = """
import json, sys
import espomail.store.postgres
import psycopg, psycopg_binary
loaded_metadata = "importlib.metadata" in sys.modules
from importlib import metadata
print(json.dumps({
    "metadata_loaded": loaded_metadata,
    "psycopg": [psycopg.__version__, metadata.version("psycopg")],
    "binary": [psycopg_binary.__version__, metadata.version("psycopg-binary")],
    "impl": psycopg.pq.__impl__,
}))
"""


@pytest.mark.engine_independent
def test_psycopg_is_imported_without_importlib_metadata_and_knows_its_versions():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["metadata_loaded"] is False
    assert found["psycopg"][0] == found["psycopg"][1]
    if found["impl"] == "binary":
        assert found["binary"][0] == found["binary"][1]


@pytest.mark.engine_independent
def test_an_unknown_package_gives_no_version():
    assert psycopg_start._installed_version("espomail_no_such_package") is None
