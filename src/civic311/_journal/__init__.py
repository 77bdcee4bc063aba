"""The journal's storage: one interface (`store.JournalStore`) and two implementations, SQLite
(`sqlite.SQLiteStore`, the embedded default) and PostgreSQL (`postgres.PostgresStore`, for
workers on several machines). `open_store` is the ONE place that picks between them.

Private: users meet the journal through `civic311.ledger.Ledger` and `civic311.outbox.Outbox`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from civic311._journal.postgres import is_postgres_url
from civic311._journal.store import JournalStore

if TYPE_CHECKING:
    from civic311._journal.sqlite import Migration

__all__ = ["is_postgres_url", "open_store"]


def open_store(
    target: str | os.PathLike[str], *, sqlite_migrations: tuple[Migration, ...] | None = None
) -> JournalStore:
    """The journal store *target* names: a ``postgresql://`` (or ``postgres://``) URL opens
    `PostgresStore` (psycopg is imported only then); anything else is a SQLite file path,
    migrated with *sqlite_migrations* (default: `civic311._journal.sqlite.MIGRATIONS`).

    Raises:
        LedgerFileError: the file or database cannot be used (named; a URL without its
            password).
        LedgerSchemaError: the storage was written by a newer civic311.
    """
    if is_postgres_url(target):
        from civic311._journal.postgres import PostgresStore

        return PostgresStore(str(target))
    from civic311._journal.sqlite import MIGRATIONS, SQLiteStore

    return SQLiteStore(Path(target), MIGRATIONS if sqlite_migrations is None else sqlite_migrations)
