"""The journal's stores for the shared suite: every test taking ``journal_target`` runs twice,
on a SQLite file and on a fresh PostgreSQL schema.

PostgreSQL comes from ``$CIVIC311_TEST_POSTGRES_URL`` when set, else from one `pgserver`
(an embedded PostgreSQL 16, pip-installed by the dev extra) started once per session in a
temporary directory and stopped at its end. Each test gets its own schema (``search_path`` in
the URL), dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest


def with_schema(url: str, schema: str) -> str:
    """*url* with its tables in *schema* (libpq's ``options`` parameter sets search_path)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}', safe='')}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server for this session (its default database)."""
    given = os.environ.get("CIVIC311_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    import tempfile

    # A short path: the server's Unix socket lives in it (sun_path is ~107 bytes).
    with tempfile.TemporaryDirectory(prefix="c311pg") as data:
        with warnings.catch_warnings():
            # platformdirs (under pgserver) warns when XDG_RUNTIME_DIR is unset.
            warnings.simplefilter("ignore")
            import pgserver

            server = pgserver.get_server(data, cleanup_mode="stop")  # type: ignore[attr-defined]
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose journal is a fresh, empty schema (dropped after the test)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_schema(postgres_server, schema)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def journal_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a journal lives: a SQLite file path, or a postgresql:// URL (fresh schema)."""
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite")
    return str(request.getfixturevalue("postgres_url"))


#: The password of the role `password_url` logs in as: it must never show anywhere.
PASSWORD = "hunter2-SECRET"


@pytest.fixture
def password_url(postgres_server: str) -> Iterator[str]:
    """A URL holding a password (role ``civic_pw``, whose own schema is first on its path)."""
    import psycopg

    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS civic_pw CASCADE")
        conn.execute("DROP ROLE IF EXISTS civic_pw")
        conn.execute(f"CREATE ROLE civic_pw LOGIN PASSWORD '{PASSWORD}'")
    parts = urlsplit(postgres_server)
    host = parts.netloc.rpartition("@")[2]
    try:
        yield urlunsplit(parts._replace(netloc=f"civic_pw:{PASSWORD}@{host}"))
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS civic_pw CASCADE")
            conn.execute("DROP OWNED BY civic_pw")
            conn.execute("DROP ROLE civic_pw")
