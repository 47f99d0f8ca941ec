"""Versions of an embedded database file, switched by a pointer.

The embedded engine writes its log into its data file when a database closes
(a checkpoint), and a kill during that checkpoint can leave the file holding
part of a committed transaction. So a write never goes into the file readers
use: it goes into a copy (:meth:`GraphVersions.stage`), the copy is closed
(checkpointed) and flushed, renamed to a new version and only then does the
one-line pointer ``CURRENT`` switch to it (:meth:`GraphVersions.publish`). A
kill at any moment leaves the pointer on the old version or on the new one,
each complete; leftovers (``.tmp-*``) are swept like every staged write.
"""

from __future__ import annotations

import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

from creditgraph.durable import (
    failpoint,
    fsync_path,
    read_pointer,
    sweep,
    temporary_sibling,
    write_pointer,
)

POINTER = "CURRENT"


class GraphVersions:
    """The versions of one database in ``directory``: ``<version>`` files plus ``CURRENT``.

    ``seed`` is a database to start from while the directory holds no version
    yet (a store kept as a single file before versions existed); it is read,
    never written.
    """

    def __init__(self, directory: Path, *, seed: Path | None = None, keep: int = 2) -> None:
        self.directory = directory
        self.seed = seed
        self.keep = keep  # the current version and the one before it, for readers still on it

    def current(self) -> Path | None:
        """The database readers use now (None before the first version)."""
        name = read_pointer(self.directory / POINTER)
        if name is not None:
            return self.directory / name
        if self.seed is not None and self.seed.is_file():
            return self.seed
        return None

    def stage(self) -> Path:
        """A private copy of the current database (or a fresh path) to write into."""
        self.directory.mkdir(parents=True, exist_ok=True)
        staged = temporary_sibling(self.directory / _new_name())
        source = self.current()
        if source is not None:
            for file in _files_of(source):  # the log too, if a legacy file kept one
                suffix = file.name[len(source.name) :]
                shutil.copyfile(file, staged.with_name(staged.name + suffix))
        return staged

    def publish(self, staged: Path) -> Path:
        """Make ``staged`` (closed, so fully checkpointed) the current version."""
        final = self.directory / staged.name.rsplit("-", 1)[-1]
        for leftover in _files_of(staged)[1:]:  # a closed database keeps no log
            leftover.unlink()
        fsync_path(staged)
        os.rename(staged, final)
        fsync_path(self.directory)
        failpoint("graph:version-renamed")
        write_pointer(self.directory / POINTER, final.name)
        return final

    def discard(self, staged: Path) -> None:
        for path in _files_of(staged):
            path.unlink(missing_ok=True)

    def prune(self) -> list[Path]:
        """Remove leftovers and every version but the newest ``keep`` (the current among them)."""
        sweep(self.directory)
        current = read_pointer(self.directory / POINTER)
        if current is None:
            return []
        versions = sorted(p for p in self.directory.glob("v*") if p.is_file() and "." not in p.name)
        stale = [p for p in versions[: -self.keep] if p.name != current]
        for path in stale:
            for file in _files_of(path):
                file.unlink(missing_ok=True)
        return stale


def _new_name() -> str:
    """A version name that sorts by creation time."""
    return f"v{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}{secrets.token_hex(3)}"


def _files_of(database: Path) -> list[Path]:
    """A database file and its sidecars (``<name>.wal`` and the like), the file first."""
    if not database.parent.is_dir():
        return []
    sidecars = sorted(database.parent.glob(f"{database.name}.*"))
    return ([database] if database.exists() else []) + sidecars
