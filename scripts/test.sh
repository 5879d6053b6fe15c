#!/usr/bin/env bash
# The one test command (README and CI): install what is needed, lint, then run every test
# twice: with the SQLite store, then with every test's store in a private PostgreSQL
# (ESPOMAIL_TEST_ENGINE=postgresql; the engine-independent tests run in the first pass only).
# Private Dovecot, Cyrus, SMTP and PostgreSQL servers; no system service. Extra arguments go
# to both pytest runs (e.g. -x, -k fetch).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check espomail tests bench
echo "== pytest, SQLite store ==" >&2
ESPOMAIL_TEST_ENGINE=sqlite .venv/bin/python -m pytest "$@"
echo "== pytest, PostgreSQL store ==" >&2
ESPOMAIL_TEST_ENGINE=postgresql .venv/bin/python -m pytest "$@"
