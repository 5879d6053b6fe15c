"""``espomail record`` and ``espomail folder`` end to end."""

import pytest


@pytest.fixture
def crm(espomail):
    espomail("init")
    espomail("team", "add", "support")
    espomail("user", "add", "alice", "--email", "alice@example.com", "--team", "support")
    account = espomail("record", "add", "account", "--name", "Acme Ltd", "--email", "info@acme.example", "--json")
    assert account.exit_code == 0, account
    return account.json


def test_record_add_show_list(espomail, crm):
    contact = espomail(
        "record",
        "add",
        "contact",
        "--name",
        "Jane Roe",
        "--email",
        "jane@acme.example",
        "--email",
        "jroe@acme.example",
        "--account",
        "Acme Ltd",
        "--json",
    ).json
    assert set(contact) >= {"type", "id", "name", "emails", "account_id", "followers"}
    assert contact["account_id"] == crm["id"]
    assert contact["emails"] == ["jane@acme.example", "jroe@acme.example"]
    shown = espomail("record", "show", "contact", contact["id"], "--json").json
    assert shown.pop("stream") == []
    assert shown == contact
    listed = espomail("record", "list", "contact", "--json").json
    assert [r["id"] for r in listed] == [contact["id"]]


def test_record_errors(espomail, crm):
    assert espomail("record", "add", "contact", "--name", "X", "--account", "Nope").exit_code == 3
    assert espomail("record", "add", "lead", "--name", "X", "--email", "bad").exit_code == 2
    assert espomail("record", "add", "lead", "--name", "X", "--account", "Acme Ltd").exit_code == 2
    assert espomail("record", "show", "account", "999").exit_code == 3


def test_import_csv_all_or_nothing(espomail, crm, tmp_path):
    good = tmp_path / "contacts.csv"
    good.write_text("name,email,account\nAnn,ann@acme.example,Acme Ltd\nBen,ben@x.example;b@x.example,\n")
    result = espomail("record", "import", "contact", good, "--json")
    assert result.exit_code == 0, result
    assert [r["name"] for r in result.json] == ["Ann", "Ben"]
    assert result.json[1]["emails"] == ["ben@x.example", "b@x.example"]

    bad = tmp_path / "bad.csv"
    bad.write_text("name,email\nCid,cid@x.example\nDee,not-an-address\n")
    result = espomail("record", "import", "contact", bad)
    assert result.exit_code == 2
    assert "line 3" in result.stderr
    names = [r["name"] for r in espomail("record", "list", "contact", "--json").json]
    assert "Cid" not in names


def test_follow_and_unfollow(espomail, crm):
    followed = espomail("record", "follow", "account", crm["id"], "--user", "alice", "--json")
    assert followed.json["followers"] == ["alice"]
    assert espomail("record", "show", "account", crm["id"], "--json").json["followers"] == ["alice"]
    assert espomail("record", "unfollow", "account", crm["id"], "--user", "alice").exit_code == 0
    assert espomail("record", "unfollow", "account", crm["id"], "--user", "alice").exit_code == 3


def test_folders(espomail, crm):
    personal = espomail("folder", "add", "Invoices", "--user", "alice", "--json")
    assert personal.exit_code == 0, personal
    assert personal.json["owner"] == "alice"
    group = espomail("folder", "add", "Escalations", "--group", "--team", "support", "--json").json
    assert group["teams"] == ["support"]
    assert espomail("folder", "add", "Invoices", "--user", "alice").exit_code == 2
    assert espomail("folder", "add", "X", "--group").exit_code == 2
    mine = espomail("--as", "alice", "folder", "list", "--json").json
    assert {f["name"] for f in mine} == {"Invoices", "Escalations"}
    assert espomail("--as", "alice", "folder", "add", "G", "--group", "--team", "support").exit_code == 4
