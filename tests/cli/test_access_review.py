"""Issue 13, Deliver 2: every command, run by a user of each level on another user's and
another team's objects (docs/access.md, "The review").

The actors are all in team red: u_no (no role), u_own, u_team and u_all (email levels own,
team, all for read, edit and delete; create yes) and u_pers (personal accounts, read own,
with a personal account of his own). The objects belong to vic (team blue) and to team
blue: vic's personal account vicbox, the group account bluebox, case 1, the emails BE
(through bluebox, team blue) and VE (vic's private mail, a stream note on the CRM account
Acme), vic's folders, filters and notifications.

Each row names a command (the list of rows is checked against the click tree: a new
command without a row fails) and which actors may run it. Every other actor gets exit 4
(3 where the command only looks among one's own things), no output on stdout, and a store,
keyring and directory unchanged. Read-only rows change nothing for anyone, and no actor
outside a row's ``sees`` finds the subjects or bodies of BE and VE (or the row's other
private names) in what it prints.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import click
import pytest
from click.testing import CliRunner

from espomail.testing.messages import build_message

ON_POSTGRES = os.environ.get("ESPOMAIL_TEST_ENGINE", "sqlite").lower() in ("postgresql", "postgres")

ACTORS = ("u_no", "u_own", "u_team", "u_all", "u_pers")
EVERYONE = frozenset(ACTORS)
ALL = frozenset({"u_all"})
NOBODY: frozenset[str] = frozenset()
MARKERS = ("SECRET-BLUE", "BODY-BLUE", "SECRET-VIC", "BODY-VIC")


@dataclasses.dataclass(frozen=True)
class Row:
    command: str  # the command path, e.g. "email show"
    args: tuple = ()  # after the command; {BE}, {VE}, {me}, {note}, {eml}, {csv} are filled in
    ok: frozenset[str] = NOBODY  # actors who may run it (exit 0)
    codes: tuple = ()  # (actor, exit code) for actors expected to fail otherwise than with 4
    denied: int = 4  # the exit code of the others
    read: bool = False  # changes nothing for anyone
    sees: frozenset[str] = NOBODY  # actors who may see BE's and VE's subjects and bodies
    hidden: tuple[str, ...] = ()  # other strings only ``sees`` may find in the output
    input: str | None = None

    @property
    def id(self) -> str:
        return " ".join([self.command, *map(str, self.args)])[:70]

    def expected(self, actor: str) -> int:
        return dict(self.codes).get(actor, 0 if actor in self.ok else self.denied)


STDIN = "pw\n"
IMAP = ("--host", "h", "--username", "u")
READERS = frozenset({"u_own", "u_team", "u_all", "u_pers"})  # read level other than no

ROWS = [
    # -- accounts
    Row("account add-group", ("x", "--address", "x@example.com", *IMAP, "--password-stdin"), input=STDIN),
    Row(
        "account add-personal",
        ("x", "--user", "vic", "--address", "vic@example.com", *IMAP, "--password-stdin"),
        input=STDIN,
    ),  # fmt: skip
    Row("account list", ok=EVERYONE, read=True, hidden=("vicbox", "bluebox")),
    Row("account remove", ("vicbox",)),
    Row("account remove", ("bluebox",)),
    Row("account reset", ("vicbox", "--since", "2020-01-01")),
    Row("account show", ("vicbox",)),
    Row("account show", ("bluebox",)),
    Row("account test", ("vicbox",)),
    Row("account test", ("bluebox",)),
    Row("account update", ("vicbox", "--inactive")),
    Row("account update", ("bluebox", "--inactive")),
    Row("account update", ("vicbox", "--password-stdin"), input=STDIN),
    # -- cases (case 1 belongs to team blue; read level all reaches every case)
    Row("case list", ok=EVERYONE, read=True, sees=ALL),
    Row("case show", ("1",), ok=ALL, read=True, sees=ALL),
    Row("case update", ("1", "--priority", "High"), ok=ALL, sees=ALL),
    Row("case update", ("1", "--assign", "{me}"), ok=ALL, sees=ALL),
    # -- no data
    Row("completion", ("bash",), ok=EVERYONE, read=True),
    Row("cron", ok=EVERYONE, read=True),
    Row("init", ok=EVERYONE, read=True),
    # -- emails
    *[
        Row(f"email {action}", ("{BE}", *extra), ok=ALL, sees=ALL)
        for action, extra in (
            ("archive", ()),
            ("read", ()),
            ("unread", ()),
            ("restore", ()),
            ("trash", ()),
            ("move", ("--folder", "inbox")),
            ("link", ("--parent", "account:1")),
            ("update", ("--add-team", "red")),
            ("delete", ("--yes",)),
        )
    ],
    Row("email trash", ("{VE}",), ok=ALL, sees=ALL),
    Row("email link", ("{VE}", "--parent", "case:1"), ok=ALL, sees=ALL),
    Row("email resend", ("{BE}",)),  # only its sender (email create) or an administrator
    Row("email resend", ("{VE}",)),
    Row("email show", ("{BE}", "--json"), ok=ALL, read=True, sees=ALL),
    Row("email show", ("{VE}",), ok=ALL, read=True, sees=ALL),
    Row("email show", ("{VE}", "--raw"), ok=ALL, read=True, sees=ALL),
    Row("email explain", ("{VE}", "--json"), ok=ALL, read=True, sees=ALL),
    Row("email list", ("--json",), ok=READERS, read=True),
    Row("email list", ("--folder", "all", "--bodies", "--json"), ok=READERS, read=True, sees=ALL),
    Row("email list", ("--parent", "case:1", "--folder", "all"), ok=READERS, read=True, sees=ALL),
    Row("email list", ("--account", "vicbox", "--folder", "all"), ok=READERS, read=True, sees=ALL),
    Row("email import", ("{eml}", "--account", "bluebox")),
    Row("email import", ("{eml}",)),
    Row("email reprocess", ("{BE}",)),
    Row("email reprocess", ("--failed",)),
    Row("email send", ("--from", "vic@example.com", "--to", "x@example.org", "--subject", "s", "--body", "b")),
    Row("email send", ("--from", "blue@example.com", "--to", "x@example.org", "--subject", "s", "--body", "b")),
    # a reply into vic's mail or case 1 from one's own address: u_all may read and reach both,
    # and is then told there is no SMTP for the address (exit 1, nothing stored)
    Row(
        "email send",
        (
            "--from",
            "{me}@example.com",
            "--to",
            "x@example.org",
            "--subject",
            "s",
            "--body",
            "b",
            "--reply-to-email",
            "{VE}",
        ),
        codes=(("u_all", 1),),
        read=True,
    ),  # fmt: skip
    Row(
        "email send",
        ("--from", "{me}@example.com", "--to", "x@example.org", "--subject", "s", "--body", "b", "--parent", "case:1"),
        codes=(("u_all", 1),),
        read=True,
    ),  # fmt: skip
    # -- fetch and status: one's own accounts only (u_pers's points at a closed port)
    Row("fetch", ("--account", "vicbox")),
    Row("fetch", ("--account", "bluebox")),
    Row("fetch", ("--json",), ok=EVERYONE, codes=(("u_pers", 1),), hidden=("vicbox", "bluebox")),
    Row("status", ("--json",), ok=EVERYONE, read=True, hidden=("vicbox", "bluebox")),
    Row("watch", ("--account", "vicbox")),
    Row("watch", ("--account", "bluebox")),
    Row("systemd", ok=EVERYONE, read=True),
    # -- filters and folders
    Row("filter add", ("x", "--user", "vic", "--subject", "a*")),
    Row("filter add", ("x", "--account", "vicbox", "--subject", "a*")),
    Row("filter add", ("x", "--account", "bluebox", "--subject", "a*")),
    Row("filter add", ("x", "--global", "--subject", "a*")),
    Row("filter list", ok=EVERYONE, read=True, hidden=("vicfilter", "vicboxfilter", "bluefilter")),
    Row("filter remove", ("vicfilter",)),
    Row("filter remove", ("bluefilter",)),
    Row("filter remove", ("globalfilter",)),
    Row("filter show", ("vicfilter",)),
    Row("filter show", ("vicboxfilter",)),
    Row("filter show", ("bluefilter",)),
    Row("filter test", ("{eml}", "--user", "vic")),
    Row("filter test", ("{eml}", "--account", "vicbox")),
    Row("filter test", ("{eml}", "--account", "bluebox")),
    Row("folder add", ("f", "--user", "vic")),
    Row("folder add", ("g", "--group", "--team", "blue")),
    Row("folder list", ("--user", "vic")),
    Row("folder remove", ("vicfolder", "--user", "vic", "--yes")),
    Row("folder remove", ("bluefolder", "--group", "--yes")),
    Row("folder list", ok=EVERYONE, read=True, hidden=("vicfolder", "bluefolder")),
    # -- notifications: another user's are not found among one's own (existence not told)
    Row("notification list", ("--user", "vic")),
    Row("notification list", ("--json",), ok=EVERYONE, read=True),
    Row("notification read", ("{note}",), denied=3),
    Row("notification read", ("{note}", "--user", "vic")),
    Row("notification read", ("--all", "--user", "vic")),
    # -- outbound
    Row("outbound set", ("--address", "blue@example.com", "--shared")),
    Row("outbound show", ok=EVERYONE, read=True),
    # -- records: anyone sees them; adding steers linking (edit all); streams are read-checked
    Row("record add", ("contact", "--name", "Steer", "--email", "blue@example.com"), ok=ALL),
    Row("record import", ("contact", "{csv}"), ok=ALL),
    Row("record follow", ("case", "1", "--user", "{me}"), ok=ALL),
    Row("record follow", ("account", "1", "--user", "vic")),
    Row("record unfollow", ("account", "1", "--user", "vic")),
    Row("record list", ("account",), ok=EVERYONE, read=True),
    Row("record show", ("account", "1", "--json"), ok=EVERYONE, read=True, sees=ALL),
    Row("record show", ("account", "1"), ok=EVERYONE, read=True, sees=ALL),
    # -- people: the directory is visible to all; changes are the administrator's
    Row("role add", ("x",)),
    Row("role list", ok=EVERYONE, read=True),
    Row("role remove", ("r-vic",)),
    Row("role show", ("r-all",), ok=EVERYONE, read=True),
    Row("role update", ("r-own", "--email-read", "all")),
    Row("team add", ("x",)),
    Row("team list", ok=EVERYONE, read=True),
    Row("team remove", ("blue",)),
    Row("team show", ("blue",), ok=EVERYONE, read=True),
    Row("team update", ("red", "--add-position", "boss")),
    Row("user add", ("x", "--email", "x@example.com")),
    Row("user list", ok=EVERYONE, read=True),
    Row("user remove", ("vic",)),
    Row("user show", ("vic",), ok=EVERYONE, read=True),
    Row("user update", ("{me}", "--admin")),
    Row("user update", ("{me}", "--add-email", "vic-alias@example.com")),
    Row("user update", ("{me}", "--add-role", "r-all")),
    Row("user update", ("vic", "--inactive")),
    # a user's own preference (docs/notifications.md): theirs to set, nobody else's but an administrator's
    Row("user update", ("{me}", "--email-notifications"), ok=EVERYONE),
    Row("user update", ("vic", "--email-notifications")),
    Row("user update", ("{me}", "--email-notifications", "--admin")),
]
# Commands other helpers are adding (SPEC 11-14); their rows are ready or still to write.
LATER_ROWS = [
    Row("account authorize", ("vicbox", "--refresh-token-stdin"), input="token\n"),
    Row("store copy", ("--to", "{tmp}/copy.db")),
]
LATER = {"account authorize", "store copy"}


def leaf_commands() -> set[str]:
    from espomail.cli import cli

    ctx = click.Context(cli)
    found = set()

    def walk(command, path):
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), f"{path} {name}".strip())
        else:
            found.add(path)

    walk(cli, "")
    return found


def test_every_command_has_a_row():
    commands = leaf_commands()
    rows = {row.command for row in ROWS}
    missing = commands - rows - {row.command for row in LATER_ROWS}
    assert not missing, f"commands without a row in the access review (add one per object kind): {sorted(missing)}"
    assert not rows - commands, f"rows for commands that do not exist: {sorted(rows - commands)}"
    assert not (missing & LATER), "a command of LATER arrived: write its rows"


# -- the world, built once, copied for every row ----------------------------------------------


def _cli(*args, input=None):
    from espomail.cli import main

    runner = CliRunner()
    with runner.isolation(input=input) as (out, err, _):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    assert code == 0, (args, stdout, stderr)
    return stdout


def _environment(monkeypatch, directory, database=None):
    for name in ("ESPOMAIL_CONFIG", "ESPOMAIL_AS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(directory / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(directory / "home" / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(directory / "home" / "config"))
    monkeypatch.setenv("ESPOMAIL_DB", database or str(directory / "espomail.db"))
    if database:
        monkeypatch.setenv("ESPOMAIL_DATA_DIR", str(directory))
    monkeypatch.setenv("ESPOMAIL_MESSAGE_ID_DOMAIN", "crm.example.com")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "espomail.testing.keyring_file.FileKeyring")
    monkeypatch.setenv("ESPOMAIL_TEST_KEYRING", str(directory / "keyring.json"))
    monkeypatch.setenv("TEST_IMAP_PASSWORD", "secret")


def build_world(directory) -> dict:
    run = _cli
    run("team", "add", "red")
    run("team", "add", "blue")
    levels = {"r-own": "own", "r-team": "team", "r-all": "all"}
    for role, level in levels.items():
        run("role", "add", role, "--email-create", "yes", "--email-read", level, "--email-edit", level,
            "--email-delete", level, "--group-send", "team" if level != "all" else "all")  # fmt: skip
    run("role", "add", "r-pers", "--email-create", "yes", "--email-read", "own", "--personal-accounts", "yes")
    run("role", "add", "r-vic", "--email-read", "own", "--personal-accounts", "yes")
    for user, role in (("u_no", None), ("u_own", "r-own"), ("u_team", "r-team"), ("u_all", "r-all"),
                       ("u_pers", "r-pers")):  # fmt: skip
        run("user", "add", user, "--email", f"{user}@example.com", "--team", "red", *(["--role", role] if role else []))
    run("user", "add", "vic", "--email", "vic@example.com", "--team", "blue", "--role", "r-vic")
    run("record", "add", "account", "--name", "Acme")
    run("record", "add", "contact", "--name", "Cust", "--email", "customer@acme.example", "--account", "Acme")
    run("folder", "add", "bluefolder", "--group", "--team", "blue")
    run("folder", "add", "vicfolder", "--user", "vic")
    run("account", "add-group", "bluebox", "--address", "blue@example.com", *IMAP, "--password-env",
        "TEST_IMAP_PASSWORD", "--team", "blue", "--create-case", "--target-team", "blue")  # fmt: skip
    run("account", "add-personal", "vicbox", "--user", "vic", "--address", "vic@example.com", *IMAP,
        "--password-cmd", "echo secret")  # fmt: skip
    run("--as", "u_pers", "account", "add-personal", "persbox", "--user", "u_pers", "--address",
        "u_pers@example.com", "--host", "127.0.0.1", "--port", "1", "--security", "none", "--username", "p",
        "--password-stdin", input="pw\n")  # fmt: skip
    run("filter", "add", "globalfilter", "--global", "--subject", "*viagra*")
    run("filter", "add", "bluefilter", "--account", "bluebox", "--subject", "*spam*")
    run("filter", "add", "vicboxfilter", "--account", "vicbox", "--subject", "*spam*")
    run("filter", "add", "vicfilter", "--user", "vic", "--subject", "*news*", "--action", "none")
    run("record", "follow", "account", "1", "--user", "vic")
    ids = {}
    for label, sender, to, account in (
        ("BE", "someone@else.example", "blue@example.com", "bluebox"),
        ("VE", "customer@acme.example", "vic@example.com", "vicbox"),
    ):
        path = directory / f"{label}.eml"
        subject, body = {"BE": ("SECRET-BLUE", "BODY-BLUE"), "VE": ("SECRET-VIC", "BODY-VIC")}[label]
        path.write_bytes(build_message(from_=sender, to=to, subject=subject, body=body))
        run("email", "import", path, "--account", account, "--create-cases")
        ids[label] = json.loads(run("email", "list", "--json"))[0]["id"]
        path.unlink()
    ids["note"] = json.loads(run("notification", "list", "--user", "vic", "--json"))[0]["id"]
    return ids


@pytest.fixture(scope="module")
def template(tmp_path_factory, request):
    """(directory, ids, PostgreSQL server and database or None): the world, built once."""
    directory = tmp_path_factory.mktemp("review-world")
    server = database = None
    if ON_POSTGRES:  # the world in a database of its own, copied for every actor
        server, base = request.getfixturevalue("postgres_template")
        database = "espomail_review_world"
        server.drop_database(database)
        server.create_database(database, template=base)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _environment(monkeypatch, directory, server.url(database) if server else None)
        ids = build_world(directory)
    shutil.rmtree(directory / "home", ignore_errors=True)
    for log in directory.glob("*.log"):
        log.unlink()
    yield directory, ids, (server, database)
    if server:
        server.drop_database(database)


def restore(template_dir, isolated, world_database) -> None:
    server, database = world_database
    if server:  # the test's database becomes a fresh copy of the world's
        name = os.environ["ESPOMAIL_DB"].rsplit("/", 1)[1]
        server.drop_database(name)
        server.create_database(name, template=database)
    for name in ("espomail.db", "espomail.db-wal", "espomail.db-shm", "keyring.json"):
        target = isolated / name
        target.unlink(missing_ok=True)
        if (template_dir / name).exists():
            shutil.copy2(template_dir / name, target)
    shutil.rmtree(isolated / "espomail-raw", ignore_errors=True)
    if (template_dir / "espomail-raw").exists():
        shutil.copytree(template_dir / "espomail-raw", isolated / "espomail-raw")


def snapshot(isolated, db):
    """The store (either engine), the keyring and the files of the directory."""
    rows = [f"{table}: {row!r}" for table, rows in db.dump().items() for row in rows]
    keyring = isolated / "keyring.json"
    files = sorted(
        (str(p.relative_to(isolated)), p.stat().st_size if p.is_file() else None)
        for p in isolated.rglob("*")
        if not p.name.endswith(".log")
        and not p.name.startswith("espomail.db")  # the store is compared row by row
        and "home" not in p.relative_to(isolated).parts[:1]
    )
    return rows, keyring.read_text() if keyring.exists() else None, files


def _difference(before, after) -> str:
    changes = []
    for name, old, new in zip(("store", "keyring", "files"), before, after, strict=True):
        if old != new:
            changes.append(
                f"{name}: -{sorted(set(old or ()) - set(new or ()))[:3]} +{sorted(set(new or ()) - set(old or ()))[:3]}"
            )
    return "; ".join(changes)


def fill(args, actor, values) -> list[str]:
    return [str(a).format(me=actor, **values) for a in args]


@pytest.mark.slow  # about 25 s for the whole table
@pytest.mark.parametrize("row", [*ROWS, *LATER_ROWS], ids=lambda row: row.id)
def test_review(espomail, isolated, db, template, row):
    if row.command not in leaf_commands():
        pytest.skip(f"'{row.command}' does not exist yet")
    template_dir, ids, world_database = template
    files = {"eml": isolated / "in.eml", "csv": isolated / "in.csv", "tmp": isolated}
    files["eml"].write_bytes(build_message(to="blue@example.com", subject="imported"))
    files["csv"].write_text("name,email\nSteer,blue@example.com\n")
    values = {**ids, **files}
    problems = []
    for actor in ACTORS:
        restore(template_dir, isolated, world_database)
        before = snapshot(isolated, db)
        result = espomail("--as", actor, *row.command.split(), *fill(row.args, actor, values), input=row.input)
        expected = row.expected(actor)
        if result.exit_code != expected:
            problems.append(f"{actor}: exit {result.exit_code}, expected {expected}: {result.stderr.strip()[:300]}")
            continue
        refused = expected in (3, 4)
        if refused and result.stdout:
            problems.append(f"{actor}: printed on stdout although refused: {result.stdout[:200]}")
        if (refused or row.read) and (after := snapshot(isolated, db)) != before:
            problems.append(f"{actor}: the store, keyring or files changed: {_difference(before, after)}")
        if expected == 4 and "missing permission" not in result.stderr:
            problems.append(f"{actor}: the refusal does not name the permission: {result.stderr.strip()[:200]}")
        if actor not in row.sees:
            shown = [m for m in (*MARKERS, *row.hidden) if m in result.stdout + result.stderr]
            if shown:
                problems.append(f"{actor}: output shows {shown}")
    assert not problems, "\n".join(problems)
