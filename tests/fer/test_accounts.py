"""fer.accounts: who may publish a model for everyone."""

from __future__ import annotations

from fer.accounts import admins, in_another_users_space, may_publish, offers_publishing


def test_only_the_listed_admins_may_publish_when_accounts_are_on(monkeypatch):
    monkeypatch.delenv("FER_STUDIO_ADMINS", raising=False)
    assert admins() == frozenset()
    assert not may_publish("alice")
    monkeypatch.setenv("FER_STUDIO_ADMINS", " alice, ,bob ")
    assert admins() == {"alice", "bob"}
    assert may_publish("alice") and may_publish("bob")
    assert not may_publish("mallory") and not may_publish("") and not may_publish("alice,bob")


def test_the_one_local_user_of_a_server_without_accounts_may_publish(monkeypatch):
    monkeypatch.delenv("FER_STUDIO_ADMINS", raising=False)
    assert may_publish(None)


def test_a_path_into_another_users_space_is_theirs_even_through_a_symlink(fer_home, tmp_path):
    from fer.paths import uploads_dir

    alice_upload = uploads_dir("alice") / "0123-faces.zip"
    alice_upload.parent.mkdir(parents=True)
    alice_upload.write_bytes(b"zip")
    link = tmp_path / "innocent.zip"
    link.symlink_to(alice_upload)
    for path in (alice_upload, link, fer_home / "users" / "bob" / ".." / "alice" / "uploads", fer_home / "users"):
        assert in_another_users_space(path, "bob"), path
        assert not in_another_users_space(path, None)  # Without accounts there is no other user.
    assert not in_another_users_space(alice_upload, "alice") and not in_another_users_space(link, "alice")
    assert not in_another_users_space(uploads_dir("bob") / "mine.zip", "bob")
    assert not in_another_users_space(tmp_path / "data.zip", "bob") and not in_another_users_space("demo", "bob")
    assert not in_another_users_space(fer_home / "cache", "bob")


def test_publishing_is_offered_only_to_admins_on_a_server_with_accounts(monkeypatch):
    monkeypatch.setenv("FER_STUDIO_ADMINS", "alice")
    assert offers_publishing("alice") and not offers_publishing("bob")
    assert may_publish(None) and not offers_publishing(None)  # The local user may, but has nobody to publish to.
