"""fer.accounts: who may publish a model for everyone."""

from __future__ import annotations

from fer.accounts import admins, may_publish


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
