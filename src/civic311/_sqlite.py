"""The one way civic311 opens a SQLite file (the `Outbox` and the `Ledger`, possibly the same
file): private, write-ahead logged, durable, patient with other processes."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

__all__ = ["BUSY_TIMEOUT", "connect"]

#: Seconds a writer waits for another process's lock before giving up.
BUSY_TIMEOUT = 30.0


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating it 0600 if missing) the database at *path*.

    WAL lets readers and one writer work at once across processes; ``synchronous=FULL``
    makes every committed change survive a crash or a kill; isolation_level=None means no
    implicit transactions: every write opens its own.
    """
    if not path.exists():
        # Create it private before SQLite opens it (DESIGN promise 6: reports hold personal
        # data). SQLite gives the -wal and -shm files the database file's permissions.
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    try:
        db.row_factory = sqlite3.Row
        # The busy timeout first: switching to WAL itself needs a lock another process may hold.
        db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
    except BaseException:
        db.close()
        raise
    return db
