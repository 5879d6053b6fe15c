"""What a list command loads: the lists are what people and scripts run most, and a
command's start-up is most of its time (docs/performance.md). They must not load the
parser, the mail stack (IMAP, SMTP, OAuth) or the account service."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("imapclient", "smtplib", "espomail.mail.parse", "espomail.mail.imap", "espomail.services.accounts")

PROBE = """
import json, sys
from espomail.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(name for name in sys.modules if name in {heavy})), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "command",
    [["email", "list"], ["case", "list"], ["notification", "list"], ["email", "list", "--folder", "all"]],
)
def test_a_list_loads_no_mail_stack(espomail, command):
    assert espomail("init").exit_code == 0
    probe = PROBE.format(heavy=repr(set(HEAVY)))
    proc = subprocess.run(
        [sys.executable, "-c", probe, *command, "--json"], capture_output=True, text=True, env=os.environ, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
