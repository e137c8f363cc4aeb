"""Accounts and API keys: hashed storage, revocation, suspension, migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from exportgate._types import KycLevel, ScreeningStatus
from exportgate.errors import ConflictError, InvalidApiKeyError, NotFoundError, StoreError
from exportgate.identity import AccountStore, Authenticator, generate_key, key_id_of
from exportgate.identity._store import MIGRATIONS


def test_add_account_returns_key_once_and_stores_only_its_hash(store: AccountStore, tmp_path: Path):
    account, key = store.add_account(
        "ada",
        citizenships=["US", "GB"],
        kyc=KycLevel.VERIFIED,
        organization="Lab",
        controlled_by="US",
        screening=ScreeningStatus.CLEAR,
    )
    assert account.citizenships == ("GB", "US") and account.us_person is True
    assert key.secret.startswith("egk_") and key_id_of(key.secret) == key.key_id
    if store.db.backend == "sqlite":
        raw = (tmp_path / "accounts.db").read_bytes() + (tmp_path / "accounts.db-wal").read_bytes()
    else:
        raw = repr([store.db.query(f"SELECT * FROM {t}") for t in ("accounts", "api_keys")]).encode()
    assert key.secret.encode() not in raw
    assert key.secret.split("_", 2)[2].encode() not in raw
    subject = store.subject_for_key(key.secret)
    assert subject.subject_id == "account:ada" and subject.key_id == key.key_id
    assert subject.kyc is KycLevel.VERIFIED and subject.controlled_by == "US"
    assert subject.screening is ScreeningStatus.CLEAR


def test_keys_are_256_bit_and_unique():
    keys = {generate_key().secret for _ in range(200)}
    assert len(keys) == 200
    assert all(len(k.split("_", 2)[2]) == 43 for k in keys)  # 32 bytes, url-safe base64


def test_duplicate_account_and_missing_account(store: AccountStore):
    store.add_account("ada")
    with pytest.raises(ConflictError):
        store.add_account("ada")
    with pytest.raises(NotFoundError):
        store.get_account("bob")
    with pytest.raises(NotFoundError):
        store.set_suspended("bob", True)
    with pytest.raises(NotFoundError):
        store.revoke_key("000000000000")


def test_suspension_and_kyc_changes_reach_the_subject(store: AccountStore):
    _, key = store.add_account("ada", citizenships=["US"])
    store.set_suspended("ada", True)
    assert store.subject_for_key(key.secret).suspended
    store.set_kyc("ada", KycLevel.BASIC)
    assert store.subject_for_key(key.secret).kyc is KycLevel.BASIC


def test_revoked_key_is_refused_other_keys_still_work(store: AccountStore):
    _, first = store.add_account("ada")
    second = store.create_key("ada")
    store.revoke_key(first.key_id)
    with pytest.raises(InvalidApiKeyError, match="revoked"):
        store.subject_for_key(first.secret)
    assert store.subject_for_key(second.secret).name == "ada"
    assert {(k.key_id, k.active) for k in store.list_keys("ada")} == {(first.key_id, False), (second.key_id, True)}


def _tamper(secret: str, index: int) -> str:
    ch = secret[index]
    return secret[:index] + ("A" if ch != "A" else "B") + secret[index + 1 :]


def test_adversarial_api_keys(store: AccountStore):
    _, key = store.add_account("ada")
    _, other = store.add_account("bob")
    prefix, key_id, secret = key.secret.split("_", 2)
    forged = [
        "",
        "egk_",
        key.secret + "x",
        key.secret[:-1],
        _tamper(key.secret, len(key.secret) - 1),
        f"{prefix}_{other.key_id}_{secret}",  # ada's secret under bob's key id
        f"{prefix}_{key_id.upper()}_{secret}",
        key.secret.upper(),
        " " + key.secret,
        key.secret + "\n",
        f"egk_{key_id}_{'A' * 43}",
        "egk_../../etc_" + "A" * 43,
        f"egk_{key_id}_{secret}'--",
    ]
    for token in forged:
        with pytest.raises(InvalidApiKeyError):
            store.subject_for_key(token)


def test_schema_is_migrated_and_newer_schema_refused(tmp_path: Path):
    path = tmp_path / "a.db"
    store = AccountStore(path)
    assert store.schema_version == len(MIGRATIONS)
    store.close()
    AccountStore(path).close()  # reopening applies nothing twice
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StoreError, match="this exportgate knows up to"):
        AccountStore(path)


def test_unopenable_store_is_a_store_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        AccountStore(blocker / "accounts.db")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_authenticator_caches_by_hash_and_expires(store: AccountStore):
    _, key = store.add_account("ada", citizenships=["US"])
    clock = FakeClock()
    auth = Authenticator(store, key_ttl=5.0, clock=clock)
    assert auth.authenticate(key.secret).name == "ada"
    assert all(isinstance(k, bytes) and len(k) == 32 for k in auth._cache)
    assert key.secret not in repr(auth._cache)
    calls = []
    lookup = store.subject_for_key
    store.subject_for_key = lambda token: calls.append(token) or lookup(token)  # type: ignore[method-assign]
    auth.authenticate(key.secret)
    assert calls == []  # served from the cache
    clock.now += 5.1
    auth.authenticate(key.secret)
    assert len(calls) == 1  # expired: looked up again


def test_a_change_by_another_process_takes_effect_on_the_next_request(tmp_path):
    gateway_side = AccountStore(tmp_path / "accounts.db")
    cli_side = AccountStore(tmp_path / "accounts.db")  # another connection, as another process has
    _, key = cli_side.add_account("ada", citizenships=["US"], kyc=KycLevel.VERIFIED)
    auth = Authenticator(gateway_side, key_ttl=3600.0)
    assert not auth.authenticate(key.secret).suspended
    cli_side.set_suspended("ada", True)
    assert auth.authenticate(key.secret).suspended  # no waiting for the cache to expire
    cli_side.hold_for_reverification("ada")
    assert auth.authenticate(key.secret).kyc is KycLevel.NONE
    assert cli_side.kyc_held("ada") is KycLevel.VERIFIED
    cli_side.hold_for_reverification("ada")  # a second hold keeps the level from before the first
    cli_side.restore_kyc("ada")
    assert auth.authenticate(key.secret).kyc is KycLevel.VERIFIED and cli_side.kyc_held("ada") is None
    cli_side.revoke_key(key.key_id)
    with pytest.raises(InvalidApiKeyError):
        auth.authenticate(key.secret)
    gateway_side.close()
    cli_side.close()


def test_authenticator_does_not_cache_failures(store: AccountStore):
    auth = Authenticator(store)
    for _ in range(3):
        with pytest.raises(InvalidApiKeyError):
            auth.authenticate("egk_000000000000_" + "A" * 43)
    assert auth._cache == {}


def test_authenticator_without_jwt_refuses_other_tokens(store: AccountStore):
    from exportgate.errors import AuthenticationError, InvalidTokenError

    with pytest.raises(InvalidTokenError, match="invalid credentials"):  # names nothing of what is accepted
        Authenticator(store).authenticate("eyJhbGciOiJub25lIn0.e30.")
    with pytest.raises(AuthenticationError, match="missing"):
        Authenticator(store).authenticate("")
