#!/usr/bin/env bash
# A private Dovecot (IMAP, with sample mail) and SMTP server that stay up in the background,
# for following README's "First fetch" on a machine without a mail server of its own.
#   scripts/playground.sh [start]   start them (or show them running); prints the account line
#   scripts/playground.sh status    show them, exit 1 when not running
#   scripts/playground.sh stop      end them and remove their state directory
# State (pids, ports, the mailbox): $ESPOMAIL_PLAYGROUND_DIR, default
# ${XDG_STATE_HOME:-~/.local/state}/espomail-playground. The system Dovecot is never used.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-start}" in
  start|stop|status) ;;
  *) echo "usage: scripts/playground.sh [start|stop|status]" >&2; exit 2 ;;
esac
if [ "${1:-start}" = start ]; then
  bash scripts/setup.sh >&2   # .venv with espomail and aiosmtpd; Dovecot when missing
fi
exec .venv/bin/python -m espomail.testing.playground "${1:-start}"
