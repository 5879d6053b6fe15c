"""No side effects on old mail (SPEC 11, issue 12 item 2): mail whose Date header or server
arrival time (INTERNALDATE) is older than side_effects_max_age_days is stored, linked and
cased silently: no auto-reply, no notification; ``email explain`` says why."""

from __future__ import annotations

import datetime as dt

import pytest

from espomail.config import load_settings
from espomail.testing.messages import build_message

NOW = dt.datetime.now(dt.UTC)
OLD = dt.datetime(2019, 5, 3, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def helpdesk(espomail, group_account, smtp, tmp_path):
    """A group account with cases and auto-replies (fetch-since 2000-01-01) and an agent who
    is notified of its mail."""
    espomail("team", "add", "support")
    espomail("role", "add", "agent", "--email-read", "own")
    espomail("user", "add", "u1", "--email", "u1@example.com", "--team", "support", "--role", "agent")
    body = tmp_path / "ack.txt"
    body.write_text("We opened case {case_number}.\n")

    def make(*extra):
        _, box = group_account(
            "support",
            "--team",
            "support",
            "--create-case",
            "--auto-reply",
            "--reply-subject",
            "ack",
            "--reply-body-file",
            body,
            "--smtp-host",
            smtp.host,
            "--smtp-port",
            smtp.port,
            "--smtp-security",
            "none",
            *extra,
        )
        return box

    return make


def fetch(espomail):
    result = espomail("fetch", "--json")
    assert result.exit_code == 0, result
    return result.json["accounts"][0]


def notifications(espomail):
    return espomail("--as", "u1", "notification", "list", "--json").json


def events(espomail, email_id):
    return {e["step"]: e for e in espomail("email", "explain", email_id, "--json").json["events"]}


def without_date(raw: bytes) -> bytes:
    head, _, body = raw.partition(b"\n\n")
    return b"\n".join(line for line in head.split(b"\n") if not line.startswith(b"Date:")) + b"\n\n" + body


def test_2019_mail_of_a_new_account_is_cased_silently(espomail, dovecot, helpdesk, smtp):
    box = helpdesk()
    dovecot.append(box, build_message(from_="jane@customer.example", subject="Old printer", date=OLD), when=OLD)
    summary = fetch(espomail)
    assert (summary["new"], summary["cases_created"], summary["auto_replies"]) == (1, 1, 0)
    assert smtp.messages == [] and notifications(espomail) == []
    [email] = espomail("email", "list", "--json").json
    assert email["parent"] == {"type": "case", "id": 1}
    trail = events(espomail, email["id"])
    assert trail["auto-reply"]["decision"] == "not sent"
    assert trail["auto-reply"]["detail"].startswith("old mail: arrived on the server 2019-05-03T10:00:00Z")
    assert (
        trail["notify"]["decision"] == "no notifications" and "side_effects_max_age_days" in trail["notify"]["detail"]
    )
    text = espomail("email", "explain", email["id"]).stdout
    assert "old mail" in text
    # The case still has its stream note (history), only nobody was told.
    assert [n["type"] for n in espomail("case", "show", "1", "--json").json["stream"]] == ["email-received"]


RECENT = NOW - dt.timedelta(hours=3)


@pytest.mark.parametrize(
    "date, arrival, silent",
    [
        (RECENT, RECENT, False),
        (OLD, RECENT, True),  # an archive moved into the mailbox today
        (RECENT, OLD, True),  # re-dated, but the server has had it for years
        (None, RECENT, False),  # no Date header: the arrival time decides
        (None, OLD, True),
        (NOW - dt.timedelta(days=3), RECENT, True),  # just over the default 2 days
    ],
    ids=["recent", "old-date", "old-arrival", "no-date-recent", "no-date-old", "three-days"],
)
def test_date_or_arrival_older_than_the_limit_is_silent(espomail, dovecot, helpdesk, smtp, date, arrival, silent):
    box = helpdesk()
    raw = build_message(from_="jane@customer.example", date=date or NOW)
    dovecot.append(box, raw if date else without_date(raw), when=arrival)
    summary = fetch(espomail)
    assert summary["cases_created"] == 1
    assert (summary["auto_replies"], len(smtp.messages)) == ((0, 0) if silent else (1, 1))
    assert (notifications(espomail) == []) == silent


@pytest.mark.parametrize("variable", ["ESPOMAIL_SIDE_EFFECTS_MAX_AGE_DAYS", "ESPOMAIL_NOTIFY_MAX_AGE_DAYS"])
def test_the_limit_is_configurable_and_the_old_name_still_works(
    espomail, dovecot, helpdesk, smtp, monkeypatch, variable
):
    monkeypatch.setenv(variable, "30")
    box = helpdesk()
    ten_days = NOW - dt.timedelta(days=10)
    dovecot.append(box, build_message(from_="jane@customer.example", date=ten_days), when=ten_days)
    assert fetch(espomail)["auto_replies"] == 1 and len(notifications(espomail)) == 1


def test_deprecated_alias_only_when_the_new_key_is_not_set():
    assert load_settings(env={}).side_effects_max_age_days == 2
    assert load_settings(env={"ESPOMAIL_NOTIFY_MAX_AGE_DAYS": "9"}).side_effects_max_age_days == 9
    both = {"ESPOMAIL_NOTIFY_MAX_AGE_DAYS": "9", "ESPOMAIL_SIDE_EFFECTS_MAX_AGE_DAYS": "4"}
    assert load_settings(env=both).side_effects_max_age_days == 4


def test_a_recent_reply_to_an_old_thread_is_not_silent(espomail, dovecot, helpdesk, smtp):
    box = helpdesk()
    dovecot.append(box, build_message(from_="jane@customer.example", subject="Printer", date=OLD), when=OLD)
    fetch(espomail)
    dovecot.append(box, build_message(from_="jane@customer.example", subject="Re: [#1] Printer"))
    summary = fetch(espomail)
    assert summary["cases_created"] == 0  # linked to case 1; case mode: no new case, no reply
    assert len(notifications(espomail)) == 1
