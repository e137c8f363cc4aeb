"""The state database on both backends: schema checks, change notifications, revisions, concurrent changes,
published directives, admin tokens, JWT-subject suspensions."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from exportgate.config import Settings
from exportgate.errors import AuthenticationError, ConflictError, NotFoundError, StoreError
from exportgate.identity import AccountStore, Authenticator, JwksSource, JwtVerifier
from exportgate.state import ALERTS, STATE, AdminTokens, DirectiveStore, PostgresDatabase, open_database
from tests.conftest import EXAMPLE
from tests.idp import AUDIENCE, ISSUER, TestIdp
from tests.pgserver import PgServer


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = request.getfixturevalue("state_url") if request.param == "postgres" else None
    return Settings({"home": str(tmp_path / "home"), "database_url": url}, env={})


def test_a_postgres_database_is_used_only_once_upgraded(pg_server: PgServer, tmp_path: Path):
    url = pg_server.create_database()
    settings = Settings({"home": str(tmp_path), "database_url": url}, env={})
    with pytest.raises(StoreError, match="run exportgate db upgrade"):
        open_database(settings, "state")
    open_database(settings, "state", upgrade=True).close()
    db = open_database(settings, "state")
    with db.transaction() as tx:
        tx.execute("UPDATE state_schema SET version = 99 WHERE component = 'state'")
    db.close()
    with pytest.raises(StoreError, match="knows up to"):
        open_database(settings, "state")


def test_a_database_url_that_is_not_postgres_is_refused(tmp_path: Path):
    from exportgate.errors import ConfigError

    with pytest.raises(ConfigError, match="postgresql://"):
        open_database(Settings({"home": str(tmp_path), "database_url": "mysql://x/y"}, env={}), "state")


def test_postgres_down_at_start_is_one_store_error(tmp_path: Path):
    settings = Settings({"home": str(tmp_path), "database_url": "postgresql://127.0.0.1:1/none"}, env={})
    with pytest.raises(StoreError, match="cannot connect"):
        open_database(settings, "state")


def test_a_change_reaches_a_listening_replica_with_its_topic(state_url: str):
    listener, writer = PostgresDatabase(state_url), AccountStore(PostgresDatabase(state_url))
    heard: list[tuple[int, frozenset[str]]] = []
    try:
        listener.listen(lambda revision, topics: heard.append((revision, topics)))
        time.sleep(0.3)  # listening
        started = time.monotonic()
        writer.add_account("ada", citizenships=["US"])
        while not any("accounts" in topics for _, topics in heard):
            assert time.monotonic() - started < 1.0, heard
            time.sleep(0.005)
        assert listener.revision.current() == writer.revision.current()
        assert not listener.stale() and listener.staleness() < 1.0
    finally:
        listener.close()
        writer.close()


def test_concurrent_changes_to_one_account_lose_nothing(settings: Settings):
    stores = [AccountStore(open_database(settings, "state")) for _ in range(2)]  # two replicas' connections
    try:
        stores[0].add_account("ada", citizenships=["US"])
        errors: list[BaseException] = []

        def change(store: AccountStore, changes: dict) -> None:
            try:
                for _ in range(20):
                    store.update_account("ada", changes)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=change, args=(stores[0], {"organization": "Lab"})),
                   threading.Thread(target=change, args=(stores[1], {"residencies": ["GB"]}))]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        account = stores[1].get_account("ada")
        assert account.organization == "Lab" and account.residencies == ("GB",)  # both changes landed
        assert account.revision == 41  # created at 1, then 40 changes, each counted
        with pytest.raises(ConflictError, match="changed since revision 40"):
            stores[0].update_account("ada", {"organization": "Other"}, expected_revision=40)
        assert stores[0].update_account("ada", {"organization": "Other"}, expected_revision=41).after.revision == 42
    finally:
        for store in stores:
            store.close()


def test_published_directives_are_one_growing_history(settings: Settings):
    db = open_database(settings, "state")
    store = DirectiveStore(db)
    try:
        assert store.active() is None and store.history() == []
        text = EXAMPLE.read_text("utf-8")
        first = store.publish(text, directive_id="d", directive_version="1", by="ops", note="first")
        second = store.publish(text + "\n", directive_id="d", directive_version="2", by="ops")
        again = store.publish(text, directive_id="d", directive_version="1", by="ops", rollback_of=1)
        assert [v.version for v in store.history()] == [1, 2, 3] and store.latest_version() == 3
        assert store.active() == store.get(3) and again.sha256 == first.sha256 != second.sha256
        assert store.get(1).content == text and store.get(3).rollback_of == 1
        with pytest.raises(NotFoundError):
            store.get(9)
    finally:
        db.close()


def test_admin_tokens_verify_only_while_live(settings: Settings):
    db = open_database(settings, "state")
    tokens = AdminTokens(db)
    try:
        made = tokens.add("ops", "officer", by="root")
        assert tokens.verify(made.secret).role == "officer" and made.token.may("viewer") and not made.token.may("admin")
        for forged in (made.secret[:-1] + ("A" if made.secret[-1] != "A" else "B"), "egadm_nope_x", "", "Bearer x"):
            with pytest.raises(AuthenticationError):
                tokens.verify(forged)
        assert made.secret not in repr(db.query("SELECT * FROM admin_tokens"))  # stored hashed
        tokens.revoke(made.token.id)
        with pytest.raises(AuthenticationError, match="revoked"):
            tokens.verify(made.secret)
    finally:
        db.close()


def test_a_suspended_jwt_subject_is_decided_suspended(settings: Settings, tmp_path: Path):
    idp = TestIdp(tmp_path)
    store = AccountStore(open_database(settings, "state"))
    auth = Authenticator(store, JwtVerifier(JwksSource(str(idp.jwks)), issuer=ISSUER, audience=AUDIENCE))
    try:
        token = idp.token(sub="u-7")
        subject = auth.authenticate(token)
        assert not subject.suspended and subject.subject_id == f"jwt:{ISSUER}#u-7"
        store.suspend_subject(subject.subject_id, by="ops", note="directive 17")
        assert auth.authenticate(token).suspended  # the cache is dropped on the revision
        assert [s.subject for s in store.suspensions()] == [subject.subject_id]
        store.restore_subject(subject.subject_id)
        assert not auth.authenticate(token).suspended
        from exportgate.errors import ConfigError

        with pytest.raises(ConfigError, match="not a JWT subject"):
            store.suspend_subject("ada")
    finally:
        store.close()


def test_both_schemas_are_numbered_steps():
    for migrations in (STATE, ALERTS):
        assert migrations.sqlite and migrations.postgresql
        assert all(step.strip() for step in (*migrations.sqlite, *migrations.postgresql))


def test_reading_the_shared_state_needs_no_home_and_makes_none(state_url: str, tmp_path: Path, capsys, monkeypatch):
    from exportgate.cli import main

    nowhere = tmp_path / "nowhere"
    monkeypatch.setenv("EXPORTGATE_DATABASE_URL", state_url)
    for args in (["directive", "history"], ["accounts", "list"], ["admin", "tokens", "list"], ["monitor", "alerts"],
                 ["db", "status"]):  # fmt: skip
        assert main([*args, "--home", str(nowhere)]) == 0, capsys.readouterr().err
    assert not nowhere.exists()
    assert main(["directive", "show", "--home", str(nowhere)]) == 1
    assert "no directive has been published" in capsys.readouterr().err


def test_a_replica_refuses_to_serve_a_schema_it_does_not_know(pg_server: PgServer, tmp_path: Path, capsys):
    from exportgate.cli import main

    url = pg_server.create_database()  # never upgraded
    code = main(["serve", "--database-url", url, "--home", str(tmp_path / "h"), "--port", str(_free())])
    err = capsys.readouterr().err
    assert code == 1 and "run exportgate db upgrade" in err and err.count("\n") == 1
    code = main(["serve", "--database-url", "postgresql://127.0.0.1:1/x", "--home", str(tmp_path / "h"),
                 "--port", str(_free())])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "cannot connect" in err and err.count("\n") == 1


def _free() -> int:
    from tests.gateway.conftest import free_port

    return free_port()


def test_a_formula_a_client_chose_is_inert_in_the_csv_export(tmp_path: Path, capsys):
    import csv
    import io

    from exportgate.audit import AuditWriter, open_store
    from exportgate.cli import main
    from exportgate.signing import home_signer
    from tests.audit.conftest import entry

    home = tmp_path / "home"
    store = open_store(None, home)
    writer = AuditWriter(store, home_signer(home), home=home).start()
    writer.append(entry(1, requested_model="=HYPERLINK(\"http://x\")", key_id="@SUM(A1)", model="-1+1"))
    writer.close()
    store.close()
    assert main(["audit", "export", "--format", "csv", "--home", str(home)]) == 0
    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert row["requested_model"] == "'=HYPERLINK(\"http://x\")" and row["key_id"] == "'@SUM(A1)"
    assert row["model"] == "'-1+1" and row["http_status"] == "200"
    assert main(["audit", "export", "--home", str(home)]) == 0  # JSON lines: exactly as recorded
    assert '"requested_model": "=HYPERLINK' in capsys.readouterr().out.replace('":"', '": "')


def test_yaml_aliases_are_one_line_for_directive_check(tmp_path: Path, capsys):
    from exportgate.cli import main

    laughs = tmp_path / "laughs.yaml"
    laughs.write_text("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9)))
    started = time.monotonic()
    assert main(["directive", "check", str(laughs)]) == 1
    err = capsys.readouterr().err
    assert "aliases" in err and err.count("\n") == 1 and time.monotonic() - started < 5


def test_db_status_fails_when_the_database_cannot_be_read(tmp_path: Path, capsys):
    from exportgate.cli import main

    code = main(["db", "status", "--database-url", "postgresql://127.0.0.1:1/none", "--home", str(tmp_path)])
    assert code == 1 and "cannot connect" in capsys.readouterr().out
    assert main(["db", "status", "--home", str(tmp_path)]) == 0  # a home without stores: made on first use


def test_an_action_is_refused_before_it_changes_anything_while_the_audit_store_is_down(
    pg_server: PgServer, tmp_path: Path
):
    from exportgate.actions import Actor, open_actions

    settings = Settings({"home": str(tmp_path / "home"), "audit_url": pg_server.create_database()}, env={})
    with open_actions(settings, Actor("ops", "officer", "cli")) as act:
        act.create_account("ada", citizenships=["US"])
        pg_server.stop()
        try:
            with pytest.raises(StoreError, match=r"account\.suspend refused"):
                act.suspend("ada", note="case 1")
            assert act.accounts.get_account("ada").suspended is False  # nothing changed
        finally:
            pg_server.start()
        act.suspend("ada", note="case 1")  # the store answers again: done, and recorded
    from exportgate.audit import RecordFilter, open_store

    store = open_store(settings.audit_url, settings.home_path)
    try:
        actions = [row.body for row in store.query(RecordFilter(kinds=("admin",)))]
    finally:
        store.close()
    assert [("account.create" in a, "account.suspend" in a) for a in actions] == [(True, False), (False, True)]


def test_account_and_alert_commands_take_the_database_url_as_a_flag(state_url: str, tmp_path: Path, capsys):
    from exportgate.cli import main

    home, flag = str(tmp_path / "ops"), ["--database-url", state_url]
    assert main(["accounts", "add", "ada", "--citizenship", "US", *flag, "--home", home]) == 0
    assert f"(state: database {state_url.rsplit('@', 1)[-1]}" in capsys.readouterr().err.replace("postgresql://", "")
    assert main(["accounts", "suspend", "ada", "--note", "case 3", *flag, "--home", home]) == 0
    store = AccountStore(PostgresDatabase(state_url))
    try:
        assert store.get_account("ada").suspended  # in the shared database, not in a local file
    finally:
        store.close()
    assert not (tmp_path / "ops" / "accounts.db").exists()
    assert main(["accounts", "list", "--format", "json", *flag, "--home", str(tmp_path / "nowhere")]) == 0
    assert '"ada"' in capsys.readouterr().out
    assert main(["monitor", "alerts", *flag, "--home", str(tmp_path / "nowhere")]) == 0
    assert main(["monitor", "ack", "alert-none", *flag, "--home", home]) == 1
    assert not (tmp_path / "nowhere").exists()
