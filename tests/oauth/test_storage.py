"""Token storage: a 0600 file replaced atomically and durably, or the keyring; tokens never in a repr."""

from __future__ import annotations

import os
import stat

import pytest

from espomail.errors import SecretError
from espomail.oauth.storage import FileTokenStore, KeyringTokenStore, StoredToken

TOKEN = StoredToken("rt-secret-refresh", "at-secret-access", expires_at=2000.0, obtained_at=1000.0, scope="mail")


def test_token_file_is_created_owner_only_and_read_back(tmp_path):
    os.umask(0o022)
    store = FileTokenStore(tmp_path / "tokens.json", "support")
    assert store.load() is None
    store.save(TOKEN)
    assert stat.S_IMODE(os.stat(tmp_path / "tokens.json").st_mode) == 0o600
    assert store.load() == TOKEN


def test_token_file_is_replaced_by_rename_and_leaves_no_temporary(tmp_path):
    tmp_path = tmp_path / "tokens"
    tmp_path.mkdir()
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path, "support")
    store.save(TOKEN)
    before = os.stat(path).st_ino
    newer = StoredToken("rt-newer", "at-newer", 3000.0, 2000.0)
    store.save(newer)
    assert os.stat(path).st_ino != before  # a new file renamed over the old one, not rewritten in place
    assert store.load() == newer
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.json"]


def test_a_failed_write_keeps_the_old_tokens(tmp_path, monkeypatch):
    tmp_path = tmp_path / "tokens"
    tmp_path.mkdir()
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path, "support")
    store.save(TOKEN)
    real_fsync = os.fsync

    def failing_fsync(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".tokens.json."):
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(SecretError) as failure:
        store.save(StoredToken("rt-lost"))
    assert "No space left on device" in failure.value.message
    monkeypatch.undo()
    assert store.load() == TOKEN
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.json"]


def test_save_fsyncs_the_file_and_then_the_directory(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    FileTokenStore(tmp_path / "tokens.json", "support").save(TOKEN)
    assert len(synced) == 2
    assert os.path.basename(synced[0]).startswith(".tokens.json.")  # the new file, before the rename
    assert synced[1] == str(tmp_path)  # the directory, after it


def test_a_token_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path, "support")
    store.save(TOKEN)
    os.chmod(path, 0o644)
    with pytest.raises(SecretError) as failure:
        store.load()
    assert failure.value.message == (
        f"the token file {path} can be read by other users (mode 0644); run 'chmod 600 {path}'"
    )


def test_a_damaged_token_file_says_to_authorize_again(tmp_path):
    path = tmp_path / "tokens.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"{not json")
    os.close(fd)
    with pytest.raises(SecretError) as failure:
        FileTokenStore(path, "support").load()
    assert "run 'espomail account authorize support'" in failure.value.message
    assert "not json" not in failure.value.message


def test_keyring_store_round_trip_and_delete():
    store = KeyringTokenStore("support")
    assert store.describe() == "keyring (espomail/support/oauth2)"
    assert store.load() is None
    store.save(TOKEN)
    assert store.load() == TOKEN
    store.delete()
    assert store.load() is None


def test_no_keyring_suggests_a_token_file(monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    import keyring.core

    keyring.core.set_keyring(keyring.core.load_keyring("keyring.backends.fail.Keyring"))
    try:
        with pytest.raises(SecretError) as failure:
            KeyringTokenStore("support").save(TOKEN)
    finally:
        keyring.core._keyring_backend = None  # noqa: SLF001 - the next test chooses again
    assert "--oauth-token-file PATH" in failure.value.message


def test_tokens_never_appear_in_a_repr():
    assert "secret" not in repr(TOKEN)
    assert "secret" not in str(TOKEN)


def test_lock_serialises_two_holders(tmp_path):
    import threading
    import time

    store = FileTokenStore(tmp_path / "tokens.json", "support")
    order = []

    def hold(name):
        with FileTokenStore(tmp_path / "tokens.json", "support").lock():
            order.append(f"{name} in")
            time.sleep(0.1)
            order.append(f"{name} out")

    with store.lock():
        worker = threading.Thread(target=hold, args=("other",))
        worker.start()
        time.sleep(0.1)
        order.append("first out")
    worker.join()
    assert order == ["first out", "other in", "other out"]


def test_odd_values_in_a_stored_token_mean_refresh_not_crash():
    token = StoredToken.from_json('{"refresh_token": "rt-x", "access_token": 5, "expires_at": "soon"}')
    assert token.access_token is None and token.expires_at is None
    assert not token.access_valid(now=0, margin=60)
