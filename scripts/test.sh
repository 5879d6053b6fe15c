#!/usr/bin/env bash
# The one test command (README and CI): install what is needed, lint, run every test
# against a private Dovecot and a local SMTP server. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check espomail tests bench
.venv/bin/python -m pytest "$@"
