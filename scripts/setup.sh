#!/usr/bin/env bash
# Install what espomail needs on a fresh Debian/Ubuntu machine: a virtualenv in .venv with
# espomail and its test tools, and Dovecot (package dovecot-imapd) when it is missing.
# The system Dovecot service is never used: tests and the demo start private instances.
set -euo pipefail
cd "$(dirname "$0")/.."

need_packages=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need_packages+=(dovecot-imapd)
command -v openssl >/dev/null 2>&1 || need_packages+=(openssl)
if [ "${ESPOMAIL_BENCH:-}" = 1 ]; then
  command -v mbsync >/dev/null 2>&1 || need_packages+=(isync)
  command -v getmail >/dev/null 2>&1 || need_packages+=(getmail6)
  [ -x /usr/bin/time ] || need_packages+=(time)
fi
if [ ${#need_packages[@]} -gt 0 ]; then
  echo "Installing ${need_packages[*]} (Debian packages)..." >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y -q "${need_packages[@]}" >/dev/null; then
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q "${need_packages[@]}" >/dev/null
  fi
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
# Install (editable, with the test extra) once per pyproject.toml: later runs start at once.
stamp=.venv/.espomail-pyproject.sha256
if ! sha256sum --status -c "$stamp" 2>/dev/null; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  log=$(mktemp)
  if ! .venv/bin/python -m pip install -q -e '.[test]' >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "setup: pip could not install espomail into .venv (see above)" >&2
    exit 1
  fi
  rm -f "$log"
  sha256sum pyproject.toml > "$stamp"
fi
