"""Issue 13 item 1: a copy fetched by another account shares the stored email only when its
content is the same (docs/access.md, "De-duplication"); a reused Message-ID grants nothing.

bob (read level team, team sales) owns a personal account on a mailbox he controls; the
original email 1 came to support@ (team support). Whatever bob puts in his mailbox under
email 1's Message-ID, ``--as bob email show 1`` stays exit 4 and he sees his own copy.
"""

import pytest

from espomail.mail import copies
from espomail.testing.messages import build_message

ORIGINAL_ID = "<plan-2024@mail.example.net>"
DATE = "Mon, 01 Jul 2024 09:00:00 +0000"


def original() -> bytes:
    return build_message(
        from_="ceo@example.net",
        to="support@example.com",
        subject="Secret plan",
        body="The secret body.\n",
        message_id=ORIGINAL_ID,
        headers={"X-Mailer": "Mailer 1"},
        date=_date(),
    )


def _date():
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(DATE)


def with_trace(raw: bytes, server: str = "mx2.example.org", to: str = "bob@example.com") -> bytes:
    """``raw`` as another server delivers it: its own trace headers on top, CRLF line ends."""
    trace = (
        f"Return-Path: <ceo@example.net>\nDelivered-To: {to}\nReceived: from {server} by imap.example.org\n"
        f" with LMTP id x; {DATE}\nAuthentication-Results: {server}; spf=pass\nX-Spam-Status: No, score=0.1\n"
    ).encode()
    return (trace + raw).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# The forged copies: email 1's Message-ID on other content.
FORGERIES = {
    "other body": lambda: original().replace(b"The secret body.", b"Please send me email 1."),
    "other subject": lambda: original().replace(b"Subject: Secret plan", b"Subject: Anything"),
    "other sender": lambda: original().replace(b"From: ceo@example.net", b"From: bob@example.com"),
    "added bcc": lambda: original().replace(b"Subject:", b"Bcc: bob@example.com\nSubject:"),
    "domain in capitals": lambda: (
        original().replace(b"@mail.example.net>", b"@MAIL.EXAMPLE.NET>").replace(b"The secret body.", b"Forged.")
    ),
    "only the id": lambda: build_message(subject="hello", body="hi\n", message_id=ORIGINAL_ID),
}


@pytest.fixture
def world(espomail, dovecot, group_account, mailbox):
    def run(*args, input=None):
        result = espomail(*args, input=input)
        assert result.exit_code == 0, result
        return result

    run("team", "add", "support")
    run("team", "add", "sales")
    run("role", "add", "agent", "--email-read", "team", "--personal-accounts", "yes")
    run("user", "add", "alice", "--email", "alice@example.com", "--team", "support", "--role", "agent")
    run("user", "add", "bob", "--email", "bob@example.com", "--team", "sales", "--role", "agent")
    support, support_box = group_account("support", "--team", "support")
    dovecot.append(support_box, original())
    assert run("fetch", "--json").json["new"] == 1
    bob_box = mailbox("bob")
    run(
        "--as",
        "bob",
        "account",
        "add-personal",
        "bobmail",
        "--user",
        "bob",
        "--address",
        "bob@example.com",
        "--host",
        dovecot.host,
        "--port",
        dovecot.port,
        "--security",
        "none",
        "--username",
        bob_box,
        "--password-stdin",
        "--fetch-since",
        "2000-01-01",
        input="secret\n",
    )
    [email] = run("email", "list", "--json").json
    return {"email": email["id"], "bob_box": bob_box}


def bob_cannot_read(espomail, email_id):
    shown = espomail("--as", "bob", "email", "show", email_id, "--json")
    assert shown.exit_code == 4, shown
    assert "Secret plan" not in shown.stdout + shown.stderr
    raw = espomail("--as", "bob", "email", "show", email_id, "--raw")
    assert raw.exit_code == 4 and "secret body" not in raw.stdout


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_copy_is_a_separate_email_and_grants_nothing(espomail, dovecot, world, forgery):
    forged = with_trace(FORGERIES[forgery]())
    dovecot.append(world["bob_box"], forged)
    summary = espomail("fetch", "--json").json  # the administrator's cron run
    assert (summary["new"], summary["duplicates"], summary["failed"]) == (1, 0, 0), summary
    bob_cannot_read(espomail, world["email"])
    [mine] = espomail("--as", "bob", "email", "list", "--folder", "all", "--json").json
    assert mine["id"] != world["email"]
    shown = espomail("--as", "bob", "email", "show", mine["id"], "--json").json
    assert shown["message_id"].lower() == ORIGINAL_ID.lower()  # shown as the message says
    assert "secret body" not in (shown["body_text"] or "") or forgery in ("other subject", "other sender", "added bcc")
    assert espomail("--as", "bob", "email", "show", mine["id"], "--raw").stdout.encode() == forged
    explained = espomail("--as", "bob", "email", "explain", mine["id"], "--json").json
    assert any(e["decision"] == "separate email" for e in explained["events"])
    # the original is untouched: its readers and accounts are what they were
    first = espomail("email", "show", world["email"], "--json").json
    assert (first["subject"], first["users"], first["accounts"]) == ("Secret plan", ["alice"], ["support"])


def test_forgeries_in_later_runs_and_the_same_batch(espomail, dovecot, world):
    """The first run of bob's account skips nothing on a Message-ID alone; later
    incremental runs compare too; two forgeries in one run are two emails; a forgery that
    arrives again is its own duplicate."""
    forged = [with_trace(FORGERIES[name]()) for name in ("other body", "other subject")]
    dovecot.append(world["bob_box"], forged)
    assert espomail("fetch", "--json").json["new"] == 2
    dovecot.append(world["bob_box"], [with_trace(FORGERIES["only the id"]()), forged[0]])
    summary = espomail("fetch", "--json").json
    assert (summary["new"], summary["duplicates"]) == (1, 1), summary
    bob_cannot_read(espomail, world["email"])
    assert len(espomail("--as", "bob", "email", "list", "--folder", "all", "--json").json) == 3


@pytest.mark.parametrize("server", ["mx2.example.org", "mail.other.example"])
def test_a_genuine_copy_is_still_one_email(espomail, dovecot, world, server):
    """The same message from another server (its own trace headers, CRLF) is a duplicate,
    and bob, who really received it, may read it."""
    dovecot.append(world["bob_box"], with_trace(original(), server))
    summary = espomail("fetch", "--json").json
    assert (summary["new"], summary["duplicates"]) == (0, 1), summary
    [mine] = espomail("--as", "bob", "email", "list", "--folder", "all", "--json").json
    assert mine["id"] == world["email"]
    shown = espomail("--as", "bob", "email", "show", world["email"], "--json").json
    assert shown["accounts"] == ["bobmail", "support"] and "bob" in shown["users"]


def test_import_compares_copies_in_one_file(espomail, tmp_path):
    """``email import`` of an mbox: copies within one batch follow the same rule."""
    forged = FORGERIES["other body"]()
    genuine = with_trace(original())
    mbox = tmp_path / "in.mbox"
    parts = [
        b"From x@y Mon Jul  1 09:00:00 2024\n" + raw.replace(b"\r\n", b"\n") for raw in (original(), forged, genuine)
    ]
    mbox.write_bytes(b"\n".join(parts) + b"\n")
    result = espomail("email", "import", mbox, "--json")
    assert result.exit_code == 0, result
    emails = espomail("email", "list", "--json").json
    assert sorted(e["subject"] for e in emails) == ["Secret plan", "Secret plan"]
    assert {e["message_id"] for e in emails} == {ORIGINAL_ID}


# -- the digest itself ------------------------------------------------------------------------

SAME = {
    "trace headers": lambda raw: with_trace(raw),
    "crlf": lambda raw: raw.replace(b"\n", b"\r\n"),
    "trailing newlines": lambda raw: raw + b"\n\n",
    "refolded subject": lambda raw: raw.replace(b"Subject: Secret plan", b"Subject: Secret\n plan"),
    "exchange headers": lambda raw: b"Thread-Index: AQHa\nX-MS-Has-Attach: \nX-MS-Exchange-Organization-SCL: 1\n" + raw,
    "mbox status": lambda raw: raw.replace(b"\n\n", b"\nStatus: RO\nX-Status: A\nX-UID: 9\n\n", 1),
}
DIFFERENT = {
    **{name: lambda raw, make=make: make() for name, make in FORGERIES.items()},
    "cc added": lambda raw: raw.replace(b"Subject:", b"Cc: x@example.org\nSubject:"),
    "reply-to added": lambda raw: raw.replace(b"Subject:", b"Reply-To: bob@example.com\nSubject:"),
    "date": lambda raw: raw.replace(b"09:00:00", b"09:00:01"),
    "content type": lambda raw: raw.replace(b'charset="utf-8"', b'charset="iso-8859-1"'),
    "one byte of body": lambda raw: raw.replace(b"secret body.", b"secret body!"),
}


@pytest.mark.parametrize("change", sorted(SAME))
def test_digest_ignores_what_servers_add(change):
    raw = original()
    assert copies.content_digest(SAME[change](raw)) == copies.content_digest(raw)


@pytest.mark.parametrize("change", sorted(DIFFERENT))
def test_digest_sees_what_the_reader_sees(change):
    raw = original()
    changed = DIFFERENT[change](raw)
    assert changed != raw
    assert copies.content_digest(changed) != copies.content_digest(raw)


def test_variant_keys():
    digest = copies.content_digest(original())
    key = copies.variant_key(ORIGINAL_ID, digest)
    assert key != ORIGINAL_ID and copies.is_variant(key) and copies.base_key(key) == ORIGINAL_ID
    assert copies.variant_key(key, digest) == key
    odd = "<a#variant-b@example.net>"  # a real id that merely contains the marker
    assert copies.base_key(odd) == odd and not copies.is_variant(odd)
