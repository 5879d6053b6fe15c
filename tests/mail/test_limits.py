"""Cost bounds on incoming mail (issue 13 Deliver 3): each a config key with a safe default,
each enforced by cutting or marking the message, never by failing it."""

from __future__ import annotations

import dataclasses

import pytest

from espomail.config import KEYS, LIMIT_KEYS, load_settings
from espomail.mail import filters
from espomail.mail.limits import DEFAULT, ParseLimits
from espomail.mail.parse import extract_part, parse_headers, parse_message


def message(*headers: str, body: str = "Hello\n") -> bytes:
    return "\n".join(["From: Alice <alice@example.com>", "To: bob@example.com", *headers, "", body]).encode()


def nested(depth: int) -> bytes:
    lines = ["From: a@example.com", "Subject: deep"]
    for level in range(depth):
        lines += [f"Content-Type: multipart/mixed; boundary=b{level}", "", f"--b{level}"]
    lines += ["Content-Type: text/plain", "", "the bottom"]
    for level in reversed(range(depth)):
        lines.append(f"--b{level}--")
    return "\n".join(lines).encode()


def many_parts(count: int) -> bytes:
    parts = [f"--b\nContent-Type: application/octet-stream; name=f{n}.bin\n\n{n}\n" for n in range(count)]
    return ("From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n" + "".join(parts) + "--b--\n").encode()


def test_every_bound_is_a_config_key_with_the_same_default(tmp_path):
    fields = {item.name: item.default for item in dataclasses.fields(ParseLimits)}
    assert set(fields) | {"max_filter_pattern_length"} == set(LIMIT_KEYS)
    for name, default in fields.items():
        assert KEYS[name][0] == "int" and KEYS[name][1] == default, name
    assert KEYS["max_filter_pattern_length"][1] == filters.MAX_PATTERN_LENGTH
    settings = load_settings(env={"XDG_DATA_HOME": str(tmp_path)})
    assert ParseLimits.from_settings(settings) == DEFAULT


def test_bounds_come_from_config_and_environment(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("max_references: 7\nmax_filename_length: 40\n")
    settings = load_settings(config, env={"ESPOMAIL_MAX_MIME_DEPTH": "3", "XDG_DATA_HOME": str(tmp_path)})
    limits = ParseLimits.from_settings(settings)
    assert (limits.max_references, limits.max_filename_length, limits.max_mime_depth) == (7, 40, 3)
    assert settings.max_filter_pattern_length == 1000


@pytest.mark.parametrize("name", [item.name for item in dataclasses.fields(ParseLimits)])
def test_a_zero_bound_is_raised_to_a_working_minimum(name):
    limits = ParseLimits(**{name: 0})
    assert getattr(limits, name) >= 1
    email = parse_message(message("Subject: still parsed"), limits=limits)
    assert email.subject == "still parsed" and email.from_.address == "alice@example.com"


@pytest.mark.parametrize("count", [5, 50, 500])
def test_header_count(count):
    headers = [f"X-Filler-{n}: {n}" for n in range(count)]
    limits = ParseLimits(max_header_count=20)
    email = parse_message(message("Subject: first", *headers), limits=limits)
    assert email.subject == "first"
    assert sum(len(values) for values in email.headers.values()) == min(count + 3, 20)
    assert any("header fields" in note for note in email.defects) == (count + 3 >= 20)


@pytest.mark.parametrize(("name", "size"), [("Subject", 5_000), ("X-Long", 50_000), ("Subject", 3_000_000)])
def test_header_length(name, size):
    limits = ParseLimits(max_header_length=2_000)
    email = parse_message(message(f"{name}: {'x' * size}"), limits=limits)
    assert len(email.headers[name.lower()][0]) == 2_000
    assert any(f"{name.lower()} header longer than 2,000" in note for note in email.defects)
    if name == "Subject":
        assert email.subject == "x" * 2_000


@pytest.mark.parametrize("count", [10, 1_000, 20_000])
def test_address_count(count):
    many = ", ".join(f"user{n}@example.com" for n in range(count))
    email = parse_message(message(f"Cc: {many}"), limits=ParseLimits(max_addresses=100))
    assert len(email.cc) == min(count, 100)
    assert email.cc[0].address == "user0@example.com"


@pytest.mark.parametrize("depth", [3, 39, 60, 2_000])
def test_mime_depth(depth):
    email = parse_message(nested(depth))
    assert email.subject == "deep"
    if depth < DEFAULT.max_mime_depth:
        assert email.body_text == "the bottom"
    else:
        assert any("too deep" in note for note in email.defects)
    limited = parse_message(nested(depth), limits=ParseLimits(max_mime_depth=2))
    assert any("too deep" in note for note in limited.defects)


@pytest.mark.parametrize("count", [10, 5_000, 12_000])
def test_mime_part_count(count):
    raw = many_parts(count)
    email = parse_message(raw, limits=ParseLimits(max_mime_parts=1_000))
    assert len(email.attachments) == min(count, 1_000)
    assert any("MIME parts" in note for note in email.defects) == (count > 1_000)
    assert extract_part(raw, "3") == b"2"


@pytest.mark.parametrize(
    ("filename", "expected_end"),
    [
        ("a" * 300 + ".pdf", "….pdf"),
        ("b" * 5_000_000, "…"),
        ("report " * 100 + ".tar", "….tar"),
        ("x." + "y" * 400, "…"),
    ],
)
def test_filename_length(filename, expected_end):
    raw = (
        "From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
        f'Content-Type: application/pdf\nContent-Disposition: attachment; filename="{filename}"\n\nx\n--b--\n'
    ).encode()
    name = parse_message(raw).attachments[0].filename
    assert len(name) <= 255 and name.endswith(expected_end)
    assert name.startswith(filename[:50].strip())


def test_short_filename_untouched():
    raw = (
        b"From: a@example.com\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
        b'Content-Type: application/pdf\nContent-Disposition: attachment; filename="Rechnung 2024.pdf"\n\nx\n--b--\n'
    )
    assert parse_message(raw).attachments[0].filename == "Rechnung 2024.pdf"


@pytest.mark.parametrize("count", [3, 99, 100, 101, 5_000, 100_000])
def test_references_keep_the_root_and_the_newest(count):
    ids = [f"<id{n}@example.com>" for n in range(count)]
    raw = message(f"References: {' '.join(ids)}", "In-Reply-To: <id0@example.com>")
    email = parse_headers(raw)
    assert email.in_reply_to == "<id0@example.com>"
    if count <= 100:
        assert email.references == ids
        assert not any("References cut" in note for note in email.defects)
    else:
        assert email.references == [ids[0], *ids[-99:]]
        assert any("References cut to 100" in note for note in email.defects)


def test_references_repeats_dropped_and_order_kept():
    raw = message("References: <b@x> <a@x> <b@x> <C@X>  <a@x>")
    assert parse_headers(raw).references == ["<b@x>", "<a@x>", "<C@x>"]
    few = parse_headers(raw, limits=ParseLimits(max_references=2))
    assert few.references == ["<b@x>", "<C@x>"]


@pytest.mark.parametrize("size", [10_000, 1_500_000])
def test_html_size_bound(size):
    html = "<p>" + "word " * (size // 5) + "</p><p>THE END</p>"
    email = parse_message(message("Content-Type: text/html", body=html))
    converted_whole = len(html) <= DEFAULT.max_html_bytes
    assert ("THE END" in email.body_text) == converted_whole
    assert any("only its start converted" in note for note in email.defects) == (not converted_whole)
    assert email.body_html.endswith("THE END</p>")  # the html itself is kept whole


def test_the_parse_worker_takes_the_limits_on_its_command_line():
    from espomail.mail import parse_worker

    limits = ParseLimits(max_references=5, max_filename_length=30)
    text = parse_worker.limits_argument(limits)
    assert ParseLimits(**__import__("json").loads(text)) == limits
