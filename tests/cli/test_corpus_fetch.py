"""Every corpus message that the IMAP server accepts, APPENDed and fetched: none failed, none lost."""

from pathlib import Path

import pytest

from espomail.mail import copies
from espomail.mail.parse import key_for, parse_headers

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


@pytest.mark.slow
@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not beside the project")
def test_whole_corpus_over_imap(espomail, imap_server, group_account, db, monkeypatch):
    monkeypatch.setenv("ESPOMAIL_MAX_PER_RUN", "5000")
    _, user = group_account("corpus")
    files = sorted(CORPUS.rglob("*.eml"))
    assert len(files) == 1229
    accepted = imap_server.append(user, (f.read_bytes() for f in files))
    stored = imap_server.fetch_all(user)
    assert len(stored) == accepted
    # Copies with one Message-ID share an email only when their content is the same; the
    # first stored keeps the Message-ID, other content gets a variant key (docs/access.md).
    expected_keys, first_digest = set(), {}
    for raw in stored:
        key, digest = key_for(parse_headers(raw), raw)[0], copies.content_digest(raw)
        expected_keys.add(key if first_digest.setdefault(key, digest) == digest else copies.variant_key(key, digest))

    result = espomail("fetch", "--json")
    assert result.exit_code == 0, result
    summary = result.json
    assert summary["failed"] == 0
    keys = {row["message_id"] for row in db.rows("SELECT message_id FROM emails")}
    states = {r["state"]: r["n"] for r in db.rows("SELECT state, COUNT(*) AS n FROM emails GROUP BY state")}
    deliveries = db.value("SELECT COUNT(*) FROM email_deliveries")
    assert keys == expected_keys
    assert states == {"processed": len(expected_keys)}
    # Several corpus files share a Message-ID and content: each is one email, delivered once.
    assert deliveries == len(expected_keys)
    print(f"corpus: {len(files)} files, {accepted} accepted by the server, {len(expected_keys)} distinct emails")
