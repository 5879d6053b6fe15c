"""Every message of the shared corpus parses: no exception, a subject, no NUL anywhere, and
agreement with the mechanically derived tags of INDEX.tsv where they are reliable."""

from __future__ import annotations

import csv
import dataclasses
import time
from pathlib import Path

import pytest

from espomail.mail.parse import ParsedEmail, extract_part, key_for, parse_headers, parse_message

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"

pytestmark = pytest.mark.skipif(not (CORPUS / "INDEX.tsv").is_file(), reason="shared/corpus is not beside the project")


def _index() -> dict[str, dict[str, str]]:
    with open(CORPUS / "INDEX.tsv", newline="", encoding="utf-8") as handle:
        return {row["path"]: row for row in csv.DictReader(handle, delimiter="\t")}


def _strings(email: ParsedEmail) -> list[str]:
    found = [email.subject, email.body_text or "", email.body_html or "", email.message_id or ""]
    found += [email.in_reply_to or "", *email.references, *email.defects]
    found += [value for values in email.headers.values() for value in values]
    for address in [email.from_, *email.to, *email.cc, *email.bcc, *email.reply_to]:
        if address is not None:
            found += [address.name, address.address]
    for attachment in email.attachments:
        found += [attachment.filename or "", attachment.content_id or "", attachment.content_type, attachment.part]
    return found


def _problems(path: str, email: ParsedEmail, row: dict[str, str]) -> list[str]:
    problems = []
    if not isinstance(email.subject, str) or not email.subject:
        problems.append("empty subject")
    for text in _strings(email):
        if not isinstance(text, str) or "\x00" in text:
            problems.append(f"NUL or non-str in {text!r:.60}")
        else:
            text.encode("utf-8")  # storable in SQLite: no lone surrogates
    if (row["has_message_id"] == "1") != (email.message_id is not None):
        problems.append(f"message id {email.message_id!r} vs has_message_id={row['has_message_id']}")
    if (row["in_reply_to"] == "1") != (email.in_reply_to is not None):
        problems.append("in_reply_to disagrees with INDEX")
    if (row["references"] != "0") != bool(email.references):
        problems.append("references disagree with INDEX")
    if row["is_report"] and not email.is_bounce:
        problems.append("multipart/report not flagged as bounce")
    if email.is_auto_reply and row["is_autoreply"] != "1":
        problems.append("auto-reply that INDEX does not tag")
    if any(note.startswith(("unparseable", "MIME structure unreadable")) for note in email.defects):
        problems.append(f"internal failure: {email.defects}")
    return [f"{path}: {problem}" for problem in problems]


def test_every_corpus_message_parses():
    index = _index()
    files = sorted(CORPUS.rglob("*.eml"))
    assert len(files) == len(index) == 1229
    problems: list[str] = []
    parsed, started = 0, time.perf_counter()
    for file in files:
        path = file.relative_to(CORPUS).as_posix()
        email = parse_message(file.read_bytes())
        parsed += 1
        problems += _problems(path, email, index[path])
    elapsed = time.perf_counter() - started
    assert problems == []
    assert parsed == len(index) == 1229  # INDEX.tsv rows, header excluded
    print(f"parsed {parsed} corpus messages in {elapsed:.3f} s")


def test_headers_only_parse_agrees_with_full_parse():
    for file in sorted(CORPUS.rglob("*.eml")):
        raw = file.read_bytes()
        full, fast = parse_message(raw), parse_headers(raw)
        assert (fast.body_text, fast.body_html, fast.attachments) == (None, None, [])
        assert key_for(fast, raw) == key_for(full, raw), file
        same = ("subject", "message_id", "from_", "to", "cc", "date", "headers", "is_bounce", "is_auto_submitted")
        for name in same:
            assert getattr(fast, name) == getattr(full, name), (file, name)


def test_attachments_extract_to_their_size():
    """For every base64, quoted-printable or plain attachment in the corpus the bytes that
    extract_part returns have the size the parser announced (most within a line break of
    the announced size; the base64 estimate is exact on well-formed data)."""
    checked = exact = 0
    for file in sorted(CORPUS.rglob("*.eml")):
        raw = file.read_bytes()
        for attachment in parse_message(raw).attachments:
            data = extract_part(raw, attachment.part)
            assert isinstance(data, bytes)
            checked += 1
            exact += len(data) == attachment.size
    assert checked > 1000
    assert exact / checked > 0.97, f"{exact} of {checked} exact"


def test_parsed_email_fields_are_as_specified():
    raw = (CORPUS / "cpython" / "msg_01.eml").read_bytes()
    names = [f.name for f in dataclasses.fields(parse_message(raw))]
    assert names == [
        "message_id",
        "subject",
        "from_",
        "to",
        "cc",
        "bcc",
        "reply_to",
        "date",
        "in_reply_to",
        "references",
        "body_text",
        "body_html",
        "attachments",
        "headers",
        "is_auto_reply",
        "is_auto_submitted",
        "is_bounce",
        "truncated",
        "defects",
        "complete",
    ]
