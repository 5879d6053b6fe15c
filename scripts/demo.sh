#!/usr/bin/env bash
# The main job on a fresh machine: installs what is needed (Dovecot included), starts a
# private IMAP server, puts sample mail in it, configures a group account on the default
# store and runs a real 'espomail fetch'. Pass --db PATH-free: set ESPOMAIL_DB to use
# another store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m espomail.testing.demo "$@"
