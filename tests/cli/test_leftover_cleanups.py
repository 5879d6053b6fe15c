"""Small cleanups of issue 17 (item 6 of the leftovers): the fetch table shows failed
auto-replies, no private names cross modules, ``email send`` checks its subject first."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import pytest

from espomail.cli import fetch as fetch_cli
from espomail.mail import smtp
from espomail.testing.messages import build_message

ROOT = Path(__file__).resolve().parents[2] / "espomail"


def test_fetch_table_shows_failed_auto_replies(espomail, group_account, dovecot, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    body = tmp_path / "ack.txt"
    body.write_text("We got it.\n")
    _, box = group_account(
        "support", "--auto-reply", "--reply-subject", "Got it", "--reply-body-file", body,
        "--smtp-host", "127.0.0.1", "--smtp-port", "9", "--smtp-security", "none",
    )  # fmt: skip
    dovecot.append(box, build_message(from_="jane@customer.example"))
    summary = espomail("fetch", "--json").json  # the SMTP port is closed: the reply fails
    [account] = summary["accounts"]
    assert (account["auto_replies"], account["auto_replies_failed"]) == (0, 1), account
    dovecot.append(box, build_message(from_="jane@customer.example", subject="second"))
    tty = type("TTY", (), {"isatty": lambda self: True})()
    monkeypatch.setattr(fetch_cli, "sys", type("Sys", (), {"stdout": tty, "stderr": io.StringIO()})())
    monkeypatch.setattr(fetch_cli, "_progress_bar", lambda app: (None, lambda: None))
    result = espomail("fetch")  # the table a terminal gets
    assert result.exit_code == 0, result
    header, row = result.stdout.splitlines()[:2]
    assert "replies failed" in header, result.stdout
    cells = dict(zip(header.replace("replies failed", "replies_failed").split(), row.split(), strict=False))
    assert (cells["replies"], cells["replies_failed"]) == ("0", "1"), result.stdout


def test_no_dead_smtp_config_constructor():
    assert not hasattr(smtp.SmtpConfig, "from_account")


def _private_cross_module_uses(path: Path) -> list[str]:
    """``from espomail.x import _name`` and ``module._name`` of an espomail module."""
    tree = ast.parse(path.read_text())
    imported_modules = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("espomail"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.name}: from {node.module} import {alias.name}")
                imported_modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported_modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("relative", ["cli/systemd.py", "services/watching.py"])
def test_no_private_names_across_modules(relative):
    assert _private_cross_module_uses(ROOT / relative) == []


@pytest.mark.parametrize(
    "extra",
    [
        ("--parent", "case:999"),  # would be 'not found'
        ("--reply-to-email", "999"),
        ("--from", "nobody@nowhere.example"),  # no account: would be another error
    ],
)
@pytest.mark.parametrize("subject", ["a\nb", "a\u2028b", "x" * 999])
def test_send_checks_the_subject_first(espomail, extra, subject):
    args = ["email", "send", "--from", "u@x.example", "--to", "c@d.example", "--subject", subject, "--body", "b"]
    result = espomail(*args, *extra)
    assert result.exit_code == 2, result
    assert "--subject" in result.stderr
