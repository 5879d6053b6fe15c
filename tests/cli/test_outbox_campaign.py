"""The SMTP campaign (issue 12, Deliver 7): a server refusing (4xx, 5xx), hanging longer than
timeout_s, dropping the connection in the middle of the data or after it, or not listening,
while auto-replies and ``email send``s are due, over several fetch runs. Each outgoing email
ends Sent exactly once or Failed after its retries; none is accepted twice; every attempt is
counted; every fetch still fetches every account. Figures: docs/field-safety.md."""

from __future__ import annotations

import collections
import os
import re

import pytest

from espomail.testing.messages import build_message
from espomail.testing.smtp_faults import AMBIGUOUS, Fault, FaultySMTP

PERMANENT = {Fault.PERM_RCPT, Fault.PERM_DATA}
SEND_RETRIES = 3


def outgoing(db):
    return db.rows(
        """SELECT e.id, e.status, e.send_attempts, e.last_error, e.message_id, e.is_system,
           o.next_attempt_at, o.gave_up_at FROM emails e LEFT JOIN outbox o ON o.email_id = e.id
           WHERE e.status IN ('Sending', 'Sent', 'Failed') ORDER BY e.id"""
    )


def make_due(db):
    db.execute("UPDATE outbox SET next_attempt_at = '2000-01-01T00:00:00Z' WHERE next_attempt_at IS NOT NULL")


def fetch(espomail):
    result = espomail("fetch", "--json")
    assert result.exit_code == 0, result
    assert "Traceback" not in result.stderr
    return {a["name"]: a for a in result.json["accounts"]}


@pytest.fixture
def accounts(espomail, group_account, tmp_path, monkeypatch):
    """``accounts(server)``: 'support' (auto-reply, SMTP = server, sends shared) and 'other'."""
    monkeypatch.setenv("ESPOMAIL_TIMEOUT_S", "1")  # hanging servers cost a second, not a minute
    body = tmp_path / "ack.txt"
    body.write_text("Thanks, {sender_name}.\n")

    def make(server):
        _, support = group_account(
            "support",
            "--auto-reply",
            "--reply-subject",
            "Re: {subject}",
            "--reply-body-file",
            body,
            "--smtp-host",
            server.host,
            "--smtp-port",
            server.port,
            "--smtp-security",
            "none",
        )
        _, other = group_account("other")
        return support, other

    return make


def send(espomail, to):
    return espomail("email", "send", "--from", "support@example.com", "--to", to, "--subject", "Update", "--body", "Hi")


def check_invariants(db, server):
    """Sent exactly once or Failed after its retries; every attempt counted; none doubled."""
    rows = outgoing(db)
    accepted = collections.Counter(r.message_id for r in server.accepted)
    assert all(n == 1 for n in accepted.values()), accepted
    for row in rows:
        if row["status"] == "Sent":
            assert accepted[row["message_id"]] == 1, row
            assert row["next_attempt_at"] is None and row["gave_up_at"] is None
        else:
            assert row["status"] == "Failed" and row["gave_up_at"], row
            permanent = re.search(r"\b5\d\d\b", row["last_error"])
            assert row["send_attempts"] == SEND_RETRIES or (permanent and row["send_attempts"] <= SEND_RETRIES), row
            assert accepted[row["message_id"]] == 0, row
    # Each attempt is one connection to the server, or one that found nobody listening.
    assert sum(r["send_attempts"] for r in rows) == len(server.connections) + refused_connections(db)
    return rows


def refused_connections(db):
    return db.value("SELECT COUNT(*) FROM email_events WHERE step = 'send' AND detail LIKE '%connection refused%'")


# -- each fault once, then a good server ---------------------------------------------------------------


@pytest.mark.parametrize("fault", list(Fault))
def test_each_fault_once_then_a_good_server(espomail, dovecot, accounts, db, fault):
    with FaultySMTP(plan=[fault]) as server:
        support, other = accounts(server)
        dovecot.append(support, build_message(from_="jane@customer.example", subject="Printer"))
        dovecot.append(other, build_message(to="other@example.com"))
        summary = fetch(espomail)
        assert summary["other"]["new"] == 1 and summary["support"]["new"] == 1
        assert summary["support"]["auto_replies"] + summary["support"]["auto_replies_failed"] == 1
        make_due(db)
        fetch(espomail)
        [reply] = check_invariants(db, server)
    if fault in PERMANENT:
        assert (reply["status"], reply["send_attempts"]) == ("Failed", 1)
        assert server.accepted == []
    else:
        assert reply["status"] == "Sent"
        assert reply["send_attempts"] == (1 if fault == Fault.NONE else 2)
        assert [r.message_id for r in server.accepted] == [reply["message_id"]]
    ambiguous = [r.message_id for r in server.unanswered]
    assert ambiguous == ([reply["message_id"]] if fault in AMBIGUOUS else [])


@pytest.mark.parametrize("fault", [f for f in Fault if f != Fault.NONE])
def test_email_send_to_a_faulty_server_fails_alone_and_a_fetch_finishes_it(espomail, dovecot, accounts, db, fault):
    with FaultySMTP(plan=[fault]) as server:
        accounts(server)
        result = send(espomail, "jane@customer.example")
        assert result.exit_code == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
        make_due(db)
        fetch(espomail)
        [email] = check_invariants(db, server)
    assert email["status"] == ("Failed" if fault in PERMANENT else "Sent")


def test_a_server_that_is_not_listening_costs_one_attempt_per_run(espomail, dovecot, accounts, db):
    server = FaultySMTP()
    support, other = accounts(server)  # never started: connection refused
    dovecot.append(support, [build_message(from_=f"c{i}@customer.example") for i in range(5)])
    summary = fetch(espomail)
    assert summary["support"]["auto_replies_failed"] == 5 and summary["support"]["new"] == 5
    rows = outgoing(db)
    # One attempt found the server down; the run left the other four untried (not counted).
    assert sorted(r["send_attempts"] for r in rows) == [0, 0, 0, 0, 1]
    assert {r["status"] for r in rows} == {"Failed", "Sending"}
    with server:
        make_due(db)
        fetch(espomail)
        rows = check_invariants(db, server)
    assert [r["status"] for r in rows] == ["Sent"] * 5


def test_a_hanging_server_costs_one_attempt_per_run_not_one_per_email(espomail, dovecot, accounts, db):
    with FaultySMTP(seed=0, faults=[Fault.HANG_GREETING]) as server:
        support, _ = accounts(server)
        dovecot.append(support, [build_message(from_=f"c{i}@customer.example") for i in range(5)])
        fetch(espomail)
        assert len(server.connections) == 1  # the other four waited, untried and not counted
        fetch(espomail)
        assert len(server.connections) == 2
        server.faults = [Fault.NONE]
        make_due(db)
        fetch(espomail)
        rows = check_invariants(db, server)
    assert [r["status"] for r in rows] == ["Sent"] * 5


# -- the random campaign -------------------------------------------------------------------------------------


CAMPAIGN_SEEDS = [int(s) for s in os.environ.get("ESPOMAIL_SMTP_CAMPAIGN_SEEDS", "1,2,3").split(",")]


@pytest.mark.slow
@pytest.mark.parametrize("seed", CAMPAIGN_SEEDS)
def test_random_smtp_faults_over_many_fetch_runs(espomail, dovecot, accounts, db, seed):
    with FaultySMTP(seed=seed) as server:
        support, other = accounts(server)
        sends_failed = 0
        for round_ in range(6):
            dovecot.append(
                support,
                [build_message(from_=f"r{round_}c{i}@customer.example", subject=f"{round_}/{i}") for i in range(3)],
            )
            dovecot.append(other, build_message(to="other@example.com", subject=f"other {round_}"))
            sends_failed += send(espomail, f"r{round_}@customer.example").exit_code != 0
            if round_ == 3:
                server.stop()  # a round with nobody listening
            summary = fetch(espomail)
            assert summary["other"]["new"] == 1 and summary["support"]["new"] == 3
            if round_ == 3:
                server.start()
            make_due(db)
        server.faults = [Fault.NONE]  # the server heals: the rest goes out or is given up
        for _ in range(SEND_RETRIES + 1):
            fetch(espomail)
            make_due(db)
        rows = check_invariants(db, server)
    assert len(rows) == 6 * 4
    assert not [r for r in rows if r["status"] == "Sending"]
    tried = collections.Counter(server.connections)
    print(f"seed {seed}: {len(server.connections)} attempts {dict(tried)}; {sends_failed} sends failed first;")
    print(f"  {collections.Counter(r['status'] for r in rows)}; ambiguous copies {len(server.unanswered)}")
