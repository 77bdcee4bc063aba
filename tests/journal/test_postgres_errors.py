"""PostgreSQL journal errors name the URL without its password; the store picks itself."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from civic311._journal import open_store
from civic311._journal.postgres import PG_MIGRATIONS, PgMigration, PostgresStore, safe_url
from civic311._journal.sqlite import SQLiteStore
from civic311.errors import LedgerFileError, LedgerSchemaError
from civic311.ledger import Ledger

PASSWORD = "hunter2-SECRET"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_safe_url_drops_the_password_wherever_it_is() -> None:
    """The password in the user part or in a password= parameter never shows."""
    assert safe_url(f"postgresql://civic:{PASSWORD}@db.example:5432/j") == (
        "postgresql://civic@db.example:5432/j"
    )
    shown = safe_url(f"postgres://db.example/j?password={PASSWORD}&sslmode=require")
    assert PASSWORD not in shown
    assert "sslmode=require" in shown


def test_a_path_opens_sqlite_and_a_url_opens_postgres(tmp_path: Path, postgres_url: str) -> None:
    """open_store: a path (str or Path) is SQLite; postgresql:// and postgres:// are PostgreSQL."""
    for target in (tmp_path / "a.sqlite", str(tmp_path / "b.sqlite")):
        store = open_store(target)
        assert isinstance(store, SQLiteStore)
        store.close()
    for url in (postgres_url, "postgres://" + postgres_url.partition("://")[2]):
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        store.close()


def test_an_unreachable_server_is_a_ledger_error_without_the_password() -> None:
    """Nothing listening: LedgerFileError naming host and database, never the password."""
    url = f"postgresql://civic:{PASSWORD}@127.0.0.1:{closed_port()}/journal?connect_timeout=2"
    with pytest.raises(LedgerFileError) as caught:
        Ledger(url)
    message = str(caught.value)
    assert PASSWORD not in message
    assert PASSWORD not in repr(caught.value)
    assert "127.0.0.1" in message
    assert "/journal" in message
    assert "cannot be reached" in message
    assert caught.value.path == safe_url(url)


def test_a_missing_database_is_named(postgres_server: str) -> None:
    """A database that does not exist: LedgerFileError saying so, password-free."""
    url = urlunsplit(urlsplit(postgres_server)._replace(path="/no_such_journal"))
    with pytest.raises(LedgerFileError) as caught:
        open_store(url)
    assert "no_such_journal" in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_a_password_in_the_url_never_shows(postgres_server: str, password_url: str) -> None:
    """A URL with a password: a refused write names the URL without it, and the store's
    location, its repr and the Ledger's hold none."""
    assert PASSWORD in password_url
    with pytest.raises(LedgerFileError) as refused:  # no schema it may create tables in
        Ledger(password_url)
    assert "refuses civic311's writes" in str(refused.value)
    assert PASSWORD not in str(refused.value)
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA civic_pw AUTHORIZATION civic_pw")  # first on its path
    with Ledger(password_url) as ledger:
        shown = [repr(ledger), repr(ledger.store), ledger.store.location, str(ledger.path)]
    assert all(PASSWORD not in text for text in shown)
    assert "civic_pw@" in ledger.store.location


def test_the_cli_never_prints_the_password(
    postgres_server: str, password_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`civic311 ledger list` on a URL with a password (from --ledger or $CIVIC311_LEDGER)
    names the journal without it, and so does an error."""
    from click.testing import CliRunner

    from civic311.cli._app import cli

    refused = CliRunner().invoke(cli, ["--ledger", password_url, "ledger", "list"])
    assert refused.exit_code != 0
    assert "refuses civic311's writes" in refused.output
    assert PASSWORD not in refused.output
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA civic_pw AUTHORIZATION civic_pw")
    monkeypatch.setenv("CIVIC311_LEDGER", password_url)
    for args in (["ledger", "list"], ["--ledger", password_url, "ledger", "list"]):
        done = CliRunner().invoke(cli, args)
        assert done.exit_code == 0, done.output
        assert "Nothing in the ledger matches (postgresql://civic_pw@" in done.output
        assert PASSWORD not in done.output


def test_a_schema_from_a_newer_civic311_is_refused_and_left_alone(postgres_url: str) -> None:
    """A database at a newer schema version raises LedgerSchemaError and is not touched."""
    newer = (*PG_MIGRATIONS, PgMigration(4, "from the future", ("CREATE TABLE future (x int)",)))
    PostgresStore(postgres_url, newer).close()
    with pytest.raises(LedgerSchemaError) as caught:
        Ledger(postgres_url)
    assert (caught.value.found, caught.value.supported) == (4, 3)
    assert caught.value.path == safe_url(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        versions = conn.execute("SELECT version FROM ledger_schema_version ORDER BY 1").fetchall()
    assert [v[0] for v in versions] == [3, 4]


def test_tables_civic311_did_not_make_are_a_ledger_error(postgres_url: str) -> None:
    """A schema holding a foreign ledger_submissions table: LedgerFileError, not psycopg's."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE ledger_submissions (whatever int)")
    with pytest.raises(LedgerFileError) as caught:
        open_store(postgres_url)
    assert "did not create" in str(caught.value)


def test_without_psycopg_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """psycopg missing: LedgerFileError naming the [postgres] extra."""
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(LedgerFileError) as caught:
        open_store(f"postgresql://u:{PASSWORD}@127.0.0.1/j")
    assert "civic311[postgres]" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_a_closed_store_refuses_work(postgres_url: str) -> None:
    """After close(), a PostgresStore raises a civic311 error, not a psycopg one."""
    store = open_store(postgres_url)
    store.close()
    store.close()  # twice is fine
    with pytest.raises(Exception, match="closed") as caught:
        store.rows()
    assert caught.type.__module__ == "civic311.errors"
