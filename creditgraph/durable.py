"""Crash-only writes: everything a user relies on is written aside, then switched in.

A file is written to a temporary name in the same directory, flushed to disk
and renamed over the target; a directory is built under a temporary name and
renamed into place; a pointer is a one-line file replaced the same way. A
SIGKILL at any moment therefore leaves the old state or the new one, and the
leftovers (``.tmp-*``) are ignored by readers and removed by :func:`sweep`.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from creditgraph.errors import StoreUnavailable

TMP_PREFIX = ".tmp-"
FAILPOINT_VARIABLE = "CREDITGRAPH_FAILPOINT"


def failpoint(name: str) -> None:
    """Die here, as by ``kill -9``, when ``CREDITGRAPH_FAILPOINT`` names this point.

    Crash tests use it to kill a command exactly inside its most delicate
    window (e.g. after the graph committed, before the pointer switched).
    """
    if os.environ.get(FAILPOINT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_path(path: Path) -> None:
    """Flush a file's content, or a directory's entries (a rename), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_sibling(path: Path) -> Path:
    """A fresh temporary name beside ``path`` (same file system, so rename is atomic)."""
    return path.parent / f"{TMP_PREFIX}{secrets.token_hex(6)}-{path.name}"


def replace_file(path: Path, write: Callable[[Path], object], *, mode: int | None = None) -> Path:
    """Write ``path`` through ``write(temporary)`` and rename it into place, durably.

    ``mode`` (e.g. ``0o600``) is set on the temporary file before anything is
    written to it, so the content is never readable by others, even briefly.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(path)
    try:
        if mode is not None:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
        write(temporary)
        if mode is not None:
            os.chmod(temporary, mode)  # some writers recreate the file
        fsync_path(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)
    return path


def write_text(path: Path, text: str, *, mode: int | None = None) -> Path:
    return replace_file(path, lambda tmp: tmp.write_text(text), mode=mode)


def write_parquet(path: Path, frame: pd.DataFrame, *, mode: int | None = None) -> Path:
    return replace_file(path, lambda tmp: frame.to_parquet(tmp, index=False), mode=mode)


def write_pointer(path: Path, target: str) -> Path:
    """Switch the pointer ``path`` to ``target`` in one atomic rename."""
    return write_text(path, target + "\n")


def read_pointer(path: Path) -> str | None:
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    return value or None


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Build a directory aside and rename it to ``final`` when the block succeeds.

    An existing ``final`` is never overwritten: directories published this way
    are immutable (the staged copy is discarded). On error the staged copy is
    removed and ``final`` is untouched.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    staged = temporary_sibling(final)
    staged.mkdir()
    try:
        yield staged
        for child in sorted(staged.rglob("*"), reverse=True):  # files, then their folders
            fsync_path(child)
        fsync_path(staged)
        if final.exists():
            shutil.rmtree(staged)
        else:
            os.rename(staged, final)
            fsync_path(final.parent)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def sweep(directory: Path) -> None:
    """Remove leftovers of writes that were killed before their rename."""
    if not directory.is_dir():
        return
    for child in directory.glob(f"{TMP_PREFIX}*"):
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


class Busy(StoreUnavailable):
    """The lock is held by another process (raised only when not waiting for it)."""


_held: dict[Path, tuple[int, int]] = {}  # lock file → (descriptor, depth) in this process
_held_guard = threading.Lock()


@contextmanager
def exclusive(
    lock_file: Path, *, wait: bool = True, waiting: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (``flock``) for the block; re-entrant per process.

    Another process holding it makes this wait (``waiting`` hears who holds it
    once) or, with ``wait=False``, raise :class:`Busy`. The kernel releases a
    lock when its holder dies, so a killed command never leaves it held.
    """
    key = lock_file.absolute()
    with _held_guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if not reentered:
        key.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                if not wait:
                    raise Busy(f"{key} is held by process {holder}") from None
                if waiting is not None:
                    waiting(f"waiting for process {holder}, which holds {key}")
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        with _held_guard:
            _held[key] = (fd, 1)
    try:
        yield
    finally:
        with _held_guard:
            fd, depth = _held[key]
            if depth > 1:
                _held[key] = (fd, depth - 1)
            else:
                del _held[key]
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
