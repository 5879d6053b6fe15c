"""The README's first command: a real fetch, on a fresh machine, in one go.

Starts a private Dovecot (its own config in a temp dir, 127.0.0.1, a free port), puts
sample mail in a "support" mailbox, configures a group account on the default SQLite store
(or $ESPOMAIL_DB), runs the real ``espomail fetch`` over IMAP, shows the result, fetches
again to show that nothing is imported twice, and stops Dovecot.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from espomail.testing.dovecot import PASSWORD, Dovecot
from espomail.testing.messages import build_message

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
ACCOUNT = "demo-support"


def sample_messages() -> list[bytes]:
    # A fixed date: the message without a Message-ID is the same message on every run,
    # so running the demo again shows it de-duplicated by its fingerprint.
    day = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
    first = "<demo-1@customer.example>"
    messages = [
        build_message(
            from_="Jane Roe <jane@acme.example>",
            to="support@demo.example",
            subject="Printer on fire",
            body="Hello,\nour printer is on fire again. Please help!\nJane\n",
            message_id=first,
            date=day,
        ),
        build_message(
            from_="Jane Roe <jane@acme.example>",
            to="support@demo.example",
            subject="Re: Printer on fire",
            body="It is out now, but it smells.\n",
            message_id="<demo-2@customer.example>",
            in_reply_to=first,
            references=first,
            date=day,
        ),
        build_message(
            from_="=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>",
            to="support@demo.example",
            subject="=?utf-8?b?R3LDvMOfZSBhdXMgTcO8bmNoZW4g4oCUIFJlY2hudW5n?=",
            body="Anbei die Rechnung.\n",
            message_id="<demo-3@example.de>",
            date=day,
            attachments=[("rechnung.pdf", "application/pdf", b"%PDF-1.4 demo\n" * 200)],
        ),
        build_message(
            from_="mailer-daemon@mx.example",
            to="support@demo.example",
            subject="Undelivered Mail",
            body="This is the mail system: your message could not be delivered.\n",
            message_id="<demo-4@mx.example>",
            date=day,
            headers={"Auto-Submitted": "auto-replied"},
        ),
        build_message(
            from_="bob@partner.example",
            to="support@demo.example",
            subject="No Message-ID here",
            body="Some old clients send mail without a Message-ID.\n",
            message_id=None,
            date=day,
        ),
    ]
    if CORPUS.is_dir():
        # A few real-world messages from public test suites: charsets, bounces, broken MIME.
        files = sorted(CORPUS.rglob("*.eml"))
        messages += [files[i].read_bytes() for i in range(0, len(files), max(1, len(files) // 20))]
    return messages


def espomail(*args: str, check: bool = True, show: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "espomail", *args]
    if show:
        print(f"\n$ espomail {' '.join(shlex.quote(a) for a in args)}", flush=True)
    done = subprocess.run(command, text=True, capture_output=True, env={**os.environ})
    if show:
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
    if check and done.returncode != 0:
        raise SystemExit(f"demo: 'espomail {' '.join(args)}' failed with exit code {done.returncode}")
    return done


def configure(port: int) -> None:
    espomail("init")
    if espomail("account", "show", ACCOUNT, check=False, show=False).returncode == 3:
        if espomail("team", "show", "demo-support", check=False, show=False).returncode == 3:
            espomail("team", "add", "demo-support", "--position", "agent")
            espomail("user", "add", "demo-agent", "--email", "agent@demo.example", "--team", "demo-support:agent")
            espomail("user", "add", "demo-agent2", "--email", "agent2@demo.example", "--team", "demo-support:agent")
            espomail("record", "add", "account", "--name", "Acme (demo)", "--email", "info@acme.example")
            espomail(
                "record",
                "add",
                "contact",
                "--name",
                "Jane Roe",
                "--email",
                "jane@acme.example",
                "--account",
                "Acme (demo)",
            )
        espomail(
            "account",
            "add-group",
            ACCOUNT,
            "--address",
            "support@demo.example",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--security",
            "none",
            "--username",
            "support",
            "--password-env",
            "DEMO_IMAP_PASSWORD",
            "--fetch-since",
            "2000-01-01",
            "--team",
            "demo-support",
            "--create-case",
            "--distribution",
            "round-robin",
            "--target-team",
            "demo-support",
        )
    else:
        espomail("account", "update", ACCOUNT, "--port", str(port), "--host", "127.0.0.1")


def main() -> None:
    os.environ["DEMO_IMAP_PASSWORD"] = PASSWORD
    print("Starting a private Dovecot IMAP server (own config in a temp dir; not the system service)...")
    with Dovecot(users=["support"]) as server:
        accepted = server.append("support", sample_messages())
        print(f"Dovecot on 127.0.0.1:{server.port}; {accepted} sample messages in the 'support' mailbox.")
        configure(server.port)
        print("\nThe main job, as cron runs it (silent on success; --json for a summary):")
        espomail("fetch", "--account", ACCOUNT, "--json")
        espomail("email", "list", "--account", ACCOUNT, "--limit", "10")
        espomail("case", "list", "--limit", "5")
        first = espomail("email", "list", "--account", ACCOUNT, "--json", show=False).stdout
        jane = next((e["id"] for e in json.loads(first) if e["subject"] == "Re: Printer on fire"), None)
        if jane is not None:
            print("\nWhy the reply landed where it did:")
            espomail("email", "explain", str(jane))
        espomail("status")
        print("\nFetching again imports nothing twice:")
        espomail("fetch", "--account", ACCOUNT, "--json")
    print("\nDovecot stopped. The store is kept; put 'espomail cron' in your crontab for the real thing:")
    espomail("cron", show=False)
    print(espomail("cron", show=False).stdout.strip())


if __name__ == "__main__":
    main()
