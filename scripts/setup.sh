#!/usr/bin/env bash
# Install what espomail needs on a fresh Debian/Ubuntu machine: a virtualenv in .venv with
# espomail and its test tools, Dovecot (package dovecot-imapd) and PostgreSQL (package
# postgresql) when missing, and the Cyrus IMAP binaries unpacked into a cache (never installed:
# cyrus-imapd conflicts with dovecot-imapd; see espomail/testing/cyrus.py).
# No system service is used: tests and the demo start private instances.
set -euo pipefail
cd "$(dirname "$0")/.."

need_packages=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need_packages+=(dovecot-imapd)
command -v openssl >/dev/null 2>&1 || need_packages+=(openssl)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 || need_packages+=(postgresql)
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

# The Cyrus IMAP test server: apt-get download + dpkg-deb -x into a cache, once (a few seconds).
# Best effort: the test fixture tries again and says what is wrong if it still cannot.
if ! .venv/bin/python -m espomail.testing.cyrus; then
  echo "setup: the tests that run on Cyrus IMAP will fail until this is fixed (see above)" >&2
fi
