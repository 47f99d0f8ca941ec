"""The access database: SQLite in WAL mode holding partners, tokens, grants and the audit log.

Every change runs in ``BEGIN IMMEDIATE``, so a CLI process writing at the same time waits
(``busy_timeout``) instead of failing. ``durable=True`` (the default) commits with
``synchronous=FULL``: an answered lookup's audit entry survives a power cut, at the cost of
one fsync per commit, which group commit (:meth:`AccessDB.submit`) shares among concurrent
lookups. ``durable=False`` (``synchronous=NORMAL``) survives a crash of the process but
may lose the last commits to a power cut; the hash chain stays valid either way. The file
and its ``-wal``/``-shm`` companions are readable by their owner only (``0600``).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from creditgraph.access.errors import AccessDatabaseCorrupt, AccessDatabaseMissing

Clock = Callable[[], datetime]
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS partners (
    partner_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS subject_tokens (
    token_id TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL,
    token_hash BLOB NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS subject_tokens_subject ON subject_tokens (subject_id);
CREATE TABLE IF NOT EXISTS grants (
    grant_id TEXT PRIMARY KEY,
    subject_id TEXT NOT NULL,
    partner_id TEXT NOT NULL REFERENCES partners (partner_id),
    purpose TEXT NOT NULL,
    scope TEXT NOT NULL,
    threshold INTEGER,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    max_uses INTEGER,
    uses INTEGER NOT NULL DEFAULT 0,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS grants_match ON grants (partner_id, subject_id, purpose);
CREATE INDEX IF NOT EXISTS grants_subject ON grants (subject_id);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    partner_id TEXT,
    subject_id TEXT,
    purpose TEXT,
    scope TEXT,
    outcome TEXT NOT NULL,
    reason TEXT,
    fields TEXT NOT NULL,
    grant_id TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject_id, seq);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
-- Append-only by construction; `audit verify` catches what bypasses these triggers.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


def default_db_path(data_dir: Path | str) -> Path:
    """Where the access database lives under a data directory (``Settings.data_dir``)."""
    from creditgraph.catalog import DataDir

    return DataDir(Path(data_dir)).access_db


def _create_private(path: Path) -> None:
    """Create the database file (and its folder) readable by its owner only, tighten an old one.

    SQLite gives the ``-wal`` and ``-shm`` files it creates the main file's permissions, so
    creating the main file ``0600`` before SQLite opens it keeps all three private whatever
    the umask. Files left world-readable by an earlier version are narrowed to ``0600``.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if stat.S_IMODE(file.stat().st_mode) & 0o077:
                file.chmod(0o600)
        except FileNotFoundError:
            continue
        except PermissionError:  # another user's file: SQLite will say if it cannot open it
            continue


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    """A timestamp as stored: ISO 8601 in UTC with microseconds."""
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment!r} has no timezone; use UTC")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(text: str) -> datetime:
    """Inverse of :func:`to_text`."""
    return datetime.fromisoformat(text)


class _Work:
    """One unit of work waiting for the group commit."""

    __slots__ = ("fn", "done", "result", "error")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class AccessDB:
    """An open access database; ``create=False`` refuses to make a new one.

    Reads use one connection per thread (WAL lets them run while a write commits). Writes
    go through one writer connection: :meth:`transaction` for occasional changes, and
    :meth:`submit` for the hot path, where every unit that arrived while a commit was
    running goes into the next one, so concurrent lookups share one fsync (group commit)
    instead of queueing behind each other's.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        create: bool = True,
        clock: Clock = utc_now,
        durable: bool = True,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self._synchronous = "FULL" if durable else "NORMAL"
        if not create and not self.path.exists():
            raise AccessDatabaseMissing(
                f"no access database at {self.path}; start `creditgraph serve` or add a "
                "partner to create one"
            )
        _create_private(self.path)
        self._write_lock = threading.RLock()
        self._depth = 0
        self._owner: int | None = None  # the thread inside a write transaction
        self._conns: list[sqlite3.Connection] = []
        self._local = threading.local()
        try:
            self._writer = self._connect()
            with self._write_lock:
                self._writer.execute("PRAGMA journal_mode=WAL")
                self._writer.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            for conn in self._conns:
                conn.close()
            raise AccessDatabaseCorrupt(
                f"{self.path} is not a readable access database ({exc}); restore it from a backup"
            ) from None
        self._queue: list[_Work] = []
        self._wake = threading.Condition()
        self._committing = False
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        self._conns.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: everything inside commits together or not at all."""
        with self._write_lock:
            if self._depth:  # nested: the outer block owns the transaction
                self._depth += 1
                try:
                    yield self._writer
                finally:
                    self._depth -= 1
                return
            self._writer.execute("BEGIN IMMEDIATE")
            self._depth, self._owner = 1, threading.get_ident()
            try:
                yield self._writer
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            else:
                self._writer.execute("COMMIT")
            finally:
                self._depth, self._owner = 0, None

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same snapshot."""
        if self._owner == threading.get_ident():
            yield self._writer  # inside our own write: read what it wrote
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        if conn.in_transaction:  # nested read
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in a write transaction shared with other waiting units.

        Group commit, leader/follower: a caller that finds no commit running takes every
        unit queued so far and commits them together; the others wait for it. ``fn`` runs
        in its own savepoint: if it raises, its changes are undone and the error is raised
        here while the others commit. Returns once its changes are durable.
        """
        work = _Work(fn)
        with self._wake:
            if self._closed:
                raise RuntimeError("the access database is closed")
            self._queue.append(work)
            while not work.done.is_set():
                if self._committing:
                    self._wake.wait()
                    continue
                self._committing = True
                batch, self._queue = self._queue, []
                self._wake.release()
                try:
                    self._commit(batch)
                finally:
                    self._wake.acquire()
                    self._committing = False
                    self._wake.notify_all()
        if work.error is not None:
            raise work.error
        return work.result

    def _commit(self, batch: list[_Work]) -> None:
        with self._write_lock:
            conn = self._writer
            self._owner = threading.get_ident()
            try:
                conn.execute("BEGIN IMMEDIATE")
                for work in batch:
                    conn.execute("SAVEPOINT unit")
                    try:
                        work.result = work.fn(conn)
                    except BaseException as exc:  # handed back to the waiting caller
                        conn.execute("ROLLBACK TO unit")
                        work.error = exc
                    conn.execute("RELEASE unit")
                conn.execute("COMMIT")
            except BaseException as exc:  # the commit itself failed: nothing landed
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                for work in batch:
                    work.error = work.error or exc
                    work.result = None
            finally:
                self._owner = None
                for work in batch:
                    work.done.set()

    def now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        with self._write_lock:
            for conn in self._conns:
                conn.close()

    def __enter__(self) -> AccessDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
