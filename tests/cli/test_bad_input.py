"""Bad input is refused cleanly (issue 12 items 10 and 11): exit 2 with one ``Error:`` line,
never an OverflowError, IsADirectoryError or ValueError, and nothing changed."""

import pytest

HUGE = "99999999999999999999"  # above 2^63 - 1
TOO_BIG = str(2**63)  # one above SQLite's largest integer

# Every place that takes an id or a count (issue 11: "about 22 places").
ID_COMMANDS = [
    ("email", "show", "{n}"),
    ("email", "show", "{n}", "--raw"),
    ("email", "explain", "{n}"),
    ("email", "reprocess", "{n}"),
    ("email", "read", "{n}"),
    ("email", "unread", "{n}"),
    ("email", "trash", "{n}"),
    ("email", "restore", "{n}"),
    ("email", "archive", "{n}"),
    ("email", "move", "{n}", "--folder", "x"),
    ("email", "link", "{n}", "--parent", "case:1"),
    ("email", "link", "1", "--parent", "case:{n}"),
    ("email", "link", "1", "--parent", "account:{n}"),
    ("email", "update", "{n}", "--assignee", ""),
    ("email", "delete", "{n}", "--yes"),
    ("email", "list", "--limit", "{n}"),
    ("email", "list", "--offset", "{n}"),
    ("email", "list", "--parent", "case:{n}"),
    (
        "email",
        "send",
        "--from",
        "a@b.example",
        "--to",
        "c@d.example",
        "--subject",
        "s",
        "--body",
        "b",
        "--reply-to-email",
        "{n}",
    ),
    (
        "email",
        "send",
        "--from",
        "a@b.example",
        "--to",
        "c@d.example",
        "--subject",
        "s",
        "--body",
        "b",
        "--parent",
        "case:{n}",
    ),
    ("case", "show", "{n}"),
    ("case", "update", "{n}", "--status", "Closed"),
    ("case", "list", "--limit", "{n}"),
    ("notification", "read", "{n}"),
    ("notification", "list", "--offset", "{n}"),
    ("record", "show", "account", "{n}"),
    ("record", "show", "contact", "{n}"),
    ("record", "follow", "case", "{n}", "--user", "u"),
    ("record", "unfollow", "account", "{n}", "--user", "u"),
    ("record", "add", "contact", "--name", "x", "--account", "{n}"),
    ("record", "list", "account", "--limit", "{n}"),
    ("user", "list", "--offset", "{n}"),
    ("account", "list", "--limit", "{n}"),
    (
        "account",
        "add-group",
        "g",
        "--address",
        "g@x.example",
        "--host",
        "h",
        "--username",
        "u",
        "--password-env",
        "X",
        "--port",
        "{n}",
    ),
    ("account", "update", "support", "--smtp-port", "{n}"),
    ("fetch", "--limit", "{n}"),
]


@pytest.fixture
def store_with_data(espomail):
    assert espomail("init").exit_code == 0
    assert espomail("user", "add", "u", "--email", "u@x.example").exit_code == 0


@pytest.mark.parametrize("args", ID_COMMANDS, ids=lambda a: " ".join(a).replace("{n}", "N"))
@pytest.mark.parametrize("number", [HUGE, TOO_BIG])
def test_ids_and_counts_above_2_63_are_refused_with_exit_2(espomail, store_with_data, db, args, number):
    """(A 400-digit number is refused the same way: see the next test.)"""
    before = dump(db)
    result = espomail(*[a.replace("{n}", number) for a in args])
    assert result.exit_code == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result
    assert "9223372036854775807" in lines[0] or "from 1 to 65535" in lines[0]
    assert "unexpected" not in result.stderr and "Overflow" not in result.stderr
    assert dump(db) == before


@pytest.mark.parametrize("number", ["²", "٣", "1.5", "0x10", "+1", "1e3"])
@pytest.mark.parametrize(
    "args",
    [
        ("email", "show", "{n}"),
        ("case", "show", "{n}"),
        ("email", "list", "--parent", "case:{n}"),
        ("record", "show", "case", "{n}"),
    ],
    ids=lambda a: " ".join(a),
)
def test_ids_that_are_not_plain_digits_are_refused(espomail, store_with_data, args, number):
    result = espomail(*[a.replace("{n}", number) for a in args])
    assert result.exit_code in (2, 3), result  # 3: a record named '²' does not exist
    assert result.stderr.startswith("Error: ") and "unexpected" not in result.stderr


def test_a_400_digit_id_is_refused_quickly(espomail, store_with_data):
    for args in (("email", "show", "1" + "0" * 400), ("email", "list", "--parent", "case:" + "9" * 400)):
        result = espomail(*args)
        assert result.exit_code == 2 and "9223372036854775807" in result.stderr


def test_the_largest_id_is_merely_not_found(espomail, store_with_data):
    result = espomail("email", "show", str(2**63 - 1))
    assert result.exit_code == 3 and result.stderr.startswith("Error: no email with id")


@pytest.mark.parametrize(
    "args",
    [
        ("email", "import", ""),
        ("email", "import", "  "),
        ("filter", "test", ""),
        ("record", "import", "account", ""),
        ("email", "send", "--from", "a@b.example", "--to", "c@d.example", "--subject", "s", "--body-file", ""),
        (
            "email",
            "send",
            "--from",
            "a@b.example",
            "--to",
            "c@d.example",
            "--subject",
            "s",
            "--body",
            "b",
            "--attach",
            "",
        ),
        ("store", "copy", "--to", ""),
    ],
    ids=lambda a: " ".join(a[:2]) + " " + a[-2],
)
def test_an_empty_path_is_refused_not_read_as_the_current_directory(
    espomail, store_with_data, tmp_path, args, monkeypatch, db
):
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "mail.eml").write_bytes(b"From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n")
    monkeypatch.chdir(tmp_path / "cwd")
    before = dump(db)
    result = espomail(*args)
    assert result.exit_code == 2, result
    assert "an empty path" in result.stderr and "unexpected" not in result.stderr
    assert dump(db) == before


BAD_CHARACTERS = ["\n", "\r", "\x1b[31m", "\u2028", "\u2029", "\x00", "\x7f", "\x85", "\u202e", "\t"]


NAME_COMMANDS = [
    ("team", "add", "te{bad}am"),
    ("team", "add", "team", "--position", "a{bad}b"),
    ("role", "add", "ro{bad}le"),
    ("user", "add", "bo{bad}b", "--email", "b@x.example"),
    ("user", "add", "bob", "--email", "b@x.example", "--name", "Bob{bad}X"),
    ("user", "update", "u", "--name", "Bob{bad}X"),
    ("folder", "add", "In{bad}voices", "--user", "u"),
    ("filter", "add", "fil{bad}ter", "--global", "--subject", "x"),
    ("record", "add", "account", "--name", "Ac{bad}me"),
    (
        "account",
        "add-group",
        "sup{bad}port",
        "--address",
        "s@x.example",
        "--host",
        "h",
        "--username",
        "u",
        "--password-env",
        "X",
    ),
    (
        "account",
        "add-group",
        "g2",
        "--address",
        "s@x.example",
        "--host",
        "h",
        "--username",
        "u",
        "--password-env",
        "X",
        "--reply-from-name",
        "Support{bad}Team",
    ),
    (
        "account",
        "add-group",
        "g3",
        "--address",
        "s@x.example",
        "--host",
        "h",
        "--username",
        "u{bad}x",
        "--password-env",
        "X",
    ),
    (
        "account",
        "add-group",
        "g4",
        "--address",
        "s@x.example",
        "--host",
        "h{bad}x",
        "--username",
        "u",
        "--password-env",
        "X",
    ),
    (
        "account",
        "add-group",
        "g5",
        "--address",
        "s@x.example",
        "--host",
        "h",
        "--username",
        "u",
        "--password-env",
        "X",
        "--folder",
        "IN{bad}BOX",
    ),
    ("outbound", "set", "--address", "s@x.example", "--name", "Sys{bad}tem"),
    ("email", "send", "--from", "u@x.example", "--to", "c@d.example", "--subject", "a{bad}b", "--body", "b"),
]
# Each command gets three of the characters, so that every character meets several commands.
NAME_CASES = [
    (args, BAD_CHARACTERS[(i + k * 3) % len(BAD_CHARACTERS)]) for i, args in enumerate(NAME_COMMANDS) for k in range(3)
]


@pytest.mark.parametrize(
    "args, bad", NAME_CASES, ids=lambda v: " ".join(v[:3]) if isinstance(v, tuple) else f"U+{ord(v[0]):04X}"
)
def test_control_characters_and_line_breaks_are_refused_in_names(espomail, store_with_data, db, args, bad):
    before = dump(db)
    result = espomail(*[a.replace("{bad}", bad) for a in args])
    assert result.exit_code == 2, result
    assert "must be one line of text without control characters" in result.stderr, result
    assert f"U+{ord(bad[0]):04X}" in result.stderr
    assert "\x1b" not in result.stderr  # shown escaped, never sent to the terminal
    assert dump(db) == before


def test_a_name_with_a_newline_can_no_longer_break_sending(espomail, store_with_data, smtp, group_account):
    """Issue 11: after 'user update bob --name $'Bob\\nX'' every 'email send' by bob failed."""
    espomail("role", "add", "sender", "--email-create", "yes", "--email-read", "own", "--group-send", "all")
    espomail("user", "add", "bob", "--email", "bob@example.com", "--role", "sender")
    group_account(
        "support",
        "--smtp-host",
        smtp.host,
        "--smtp-port",
        smtp.port,
        "--smtp-security",
        "none",
        "--smtp-shared",
        address="support@example.com",
    )
    assert espomail("user", "update", "bob", "--name", "Bob\nX").exit_code == 2
    assert espomail("user", "show", "bob", "--json").json["name"] == "bob"
    sent = espomail(
        "--as",
        "bob",
        "email",
        "send",
        "--from",
        "support@example.com",
        "--to",
        "c@d.example",
        "--subject",
        "Hello",
        "--body",
        "Hi",
    )
    assert sent.exit_code == 0, sent
    assert len(smtp.messages) == 1


def test_names_keep_their_letters_and_marks(espomail, store_with_data):
    """Only control characters are refused: accents, scripts, emoji and joiners are names."""
    for name in ("Zoë Ğüneş", "محمد‌رضا", "山田 太郎", "Ana 🌻", "O'Brien-Smith"):
        result = espomail("user", "update", "u", "--name", name, "--json")
        assert result.exit_code == 0, result
        assert result.json["name"] == name


def dump(db):
    """Every row of every table (to prove a refused command changed nothing)."""
    return db.dump()
