"""Parent linking end to end (fetched from Dovecot), and ``email explain`` saying why."""

import pytest

from espomail.mail import msgid
from espomail.testing.messages import build_message


@pytest.fixture
def crm(espomail):
    def add(*args):
        result = espomail("record", "add", *args, "--json")
        assert result.exit_code == 0, result
        return result.json["id"]

    ids = {"acme": add("account", "--name", "Acme", "--email", "info@acme.example")}
    ids["jane"] = add("contact", "--name", "Jane", "--email", "jane@acme.example", "--account", "Acme")
    ids["solo"] = add("contact", "--name", "Solo", "--email", "solo@example.org")
    ids["lead"] = add("lead", "--name", "Leo", "--email", "leo@prospect.example")
    ids["deal"] = add("opportunity", "--name", "Big deal", "--account", "Acme")
    return ids


def fetched(espomail, dovecot, user, raw):
    dovecot.append(user, raw)
    result = espomail("fetch", "--json")
    assert result.exit_code == 0, result
    emails = espomail("email", "list", "--json").json
    return emails[0]


def explain(espomail, email_id):
    events = espomail("email", "explain", email_id, "--json").json["events"]
    return {e["step"]: e for e in events}


def test_contact_address_links_to_the_contacts_account(espomail, dovecot, group_account, crm):
    _, user = group_account("support")
    email = fetched(espomail, dovecot, user, build_message(from_="Jane <JANE@acme.example>"))
    assert email["parent"] == {"type": "account", "id": crm["acme"]}
    why = explain(espomail, email["id"])["parent"]
    assert why["decision"] == f"account:{crm['acme']}"
    assert "From JANE@acme.example belongs to contact" in why["detail"]
    text = espomail("email", "explain", email["id"]).stdout
    assert "parent" in text and "belongs to contact" in text


def test_b2c_mode_links_to_the_contact(espomail, dovecot, group_account, crm, monkeypatch):
    monkeypatch.setenv("ESPOMAIL_B2C_MODE", "true")
    _, user = group_account("support")
    email = fetched(espomail, dovecot, user, build_message(from_="jane@acme.example"))
    assert email["parent"] == {"type": "contact", "id": crm["jane"]}


def test_lead_address_links_to_the_lead(espomail, dovecot, group_account, crm):
    _, user = group_account("support")
    email = fetched(espomail, dovecot, user, build_message(from_="leo@prospect.example"))
    assert email["parent"] == {"type": "lead", "id": crm["lead"]}
    assert "lead" in explain(espomail, email["id"])["parent"]["detail"]


def test_reply_to_an_email_linked_to_an_opportunity(espomail, dovecot, group_account, crm):
    _, user = group_account("support")
    first_id = "<deal-1@acme.example>"
    first = fetched(espomail, dovecot, user, build_message(from_="jane@acme.example", message_id=first_id))
    linked = espomail("email", "link", first["id"], "--parent", f"opportunity:{crm['deal']}", "--json")
    assert linked.json["parent"] == {"type": "opportunity", "id": crm["deal"]}
    reply = fetched(
        espomail,
        dovecot,
        user,
        build_message(from_="jane@acme.example", in_reply_to=first_id, references=first_id, subject="Re: deal"),
    )
    assert reply["parent"] == {"type": "opportunity", "id": crm["deal"]}
    assert reply["replied_id"] == first["id"]
    steps = explain(espomail, reply["id"])
    assert steps["thread"]["decision"] == "reply"
    assert "replies to" in steps["parent"]["detail"]


def test_references_to_our_generated_message_id(espomail, dovecot, group_account, crm):
    _, user = group_account("support")
    ours = msgid.generate("crm.example.com", ("lead", crm["lead"]))
    email = fetched(espomail, dovecot, user, build_message(from_="someone@else.example", references=ours))
    assert email["parent"] == {"type": "lead", "id": crm["lead"]}
    assert "generated here" in explain(espomail, email["id"])["parent"]["detail"]


def test_reply_to_and_to_are_tried_after_from(espomail, dovecot, group_account, crm):
    _, user = group_account("support")
    via_reply_to = fetched(
        espomail, dovecot, user, build_message(from_="x@unknown.example", reply_to="solo@example.org")
    )
    assert via_reply_to["parent"] == {"type": "contact", "id": crm["solo"]}


def test_unknown_addresses_no_parent(espomail, dovecot, group_account, crm):
    _, user = group_account("support")
    email = fetched(espomail, dovecot, user, build_message(from_="nobody@nowhere.example"))
    assert email["parent"] is None
    assert explain(espomail, email["id"])["parent"]["decision"] == "none"


def test_several_records_share_an_address_lowest_id_wins(espomail, dovecot, group_account, crm):
    espomail("record", "add", "lead", "--name", "Second", "--email", "leo@prospect.example")
    _, user = group_account("support")
    email = fetched(espomail, dovecot, user, build_message(from_="leo@prospect.example"))
    assert email["parent"] == {"type": "lead", "id": crm["lead"]}


def test_link_errors(espomail, dovecot, group_account, crm):
    _, user = group_account("support")
    email = fetched(espomail, dovecot, user, build_message())
    assert espomail("email", "link", email["id"], "--parent", "account:999").exit_code == 3
    assert espomail("email", "link", email["id"], "--parent", "planet:1").exit_code == 2
    assert espomail("email", "link", 999, "--parent", f"account:{crm['acme']}").exit_code == 3
