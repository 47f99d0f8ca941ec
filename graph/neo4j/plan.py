"""The batches of a resumable Neo4j load, and the progress mark that resumes it.

A load (:meth:`graph.neo4j.store.Neo4jStore.bulk_load`) is never one
transaction: each :class:`Batch` of :func:`load_plan` is its own retried
transaction that also records a :class:`LoadProgress` (Meta ``load_progress``),
so a killed load, re-run with the same id and frames, sends exactly the batches
that did not commit. Publishing a scoring run's properties
(:meth:`graph.neo4j.store.Neo4jStore.publish_properties`) is planned the same
way by :func:`publish_plan`, resumed from a :class:`RunProgress` (Meta
``score_progress``). Row arithmetic and frame slicing only: no driver.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import pandas as pd

from creditgraph.errors import InvalidArgument

LoadKind = Literal["removals", "nodes", "relationships"]  # removals: relationships deleted
StepKind = Literal[
    "removals", "nodes", "relationships", "properties"
]  # properties: a run's publish


class Batch(NamedTuple):
    """Rows ``start:stop`` of one step (a node label or relationship type): one transaction."""

    kind: StepKind
    name: str
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class LoadProgress:
    """How far load ``load_id`` got: every step before ``name`` is complete, and ``rows`` of it.

    Kept as Meta ``load_progress`` (``"<load_id> <kind> <name> <rows>"``) in
    the transaction of the batch it describes. Rows, not batch numbers, so a
    re-run with another ``batch_size`` still resumes at the right row.
    """

    load_id: str
    kind: str
    name: str
    rows: int

    @property
    def job_id(self) -> str:
        return self.load_id

    def encode(self) -> str:
        return f"{self.load_id} {self.kind} {self.name} {self.rows}"

    @classmethod
    def decode(cls, value: str | None) -> LoadProgress | None:
        parts = (value or "").split(" ")
        if len(parts) != 4 or not parts[3].isdigit():
            return None
        return cls(parts[0], parts[1], parts[2], int(parts[3]))


def load_plan(
    steps: Sequence[tuple[LoadKind, str, int]], batch_size: int, done: LoadProgress | None = None
) -> list[Batch]:
    """Every batch of a load in order, none over ``batch_size`` rows; after ``done`` only.

    ``steps`` are ``(kind, name, rows)`` in load order (nodes before the
    relationships that need them). With ``done`` the batches it says committed
    are left out. A ``done`` naming no step leaves nothing out, one past the
    end of its step re-sends that step: re-sending idempotent batches is safe.
    :meth:`Neo4jStore.bulk_load` sends exactly this plan (step by step).
    """
    resume = resume_at([(kind, name) for kind, name, _ in steps], done)
    plan: list[Batch] = []
    for position, (kind, name, rows) in enumerate(steps):
        if position >= resume[0]:
            first = resume[1] if position == resume[0] else 0
            plan += step_batches(kind, name, rows, batch_size, first)
    return plan


def resume_at(names: Sequence[tuple[str, str]], done: LoadProgress | None) -> tuple[int, int]:
    """(step position, first row) where a load resumes after ``done``; (0, 0) from scratch."""
    if done is None or (done.kind, done.name) not in names:
        return 0, 0
    return names.index((done.kind, done.name)), done.rows


def step_batches(kind: StepKind, name: str, rows: int, size: int, first: int) -> list[Batch]:
    """One step's batches from row ``first`` (from 0 if ``first`` is past its end)."""
    if size < 1:
        raise InvalidArgument(f"batch_size must be a positive number of rows, got {size!r}")
    starts = range(first if 0 <= first <= rows else 0, rows, size)
    return [Batch(kind, name, start, min(start + size, rows)) for start in starts]


@dataclass(frozen=True)
class RunProgress:
    """How far the publish of run ``run_id`` got: the first ``rows`` rows of ``label`` landed.

    Kept as Meta ``score_progress`` (``"<run_id> <label> <rows>"``) in the
    transaction of the batch it describes; rows, not batch numbers, as for loads.
    """

    run_id: str
    label: str
    rows: int

    @property
    def job_id(self) -> str:
        return self.run_id

    def encode(self) -> str:
        return f"{self.run_id} {self.label} {self.rows}"

    @classmethod
    def decode(cls, value: str | None) -> RunProgress | None:
        parts = (value or "").split(" ")
        if len(parts) != 3 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]))


def publish_plan(
    label: str, rows: int, batch_size: int, done: RunProgress | None = None
) -> list[Batch]:
    """Every batch that sets a run's properties on ``rows`` nodes of ``label``; after ``done``.

    None over ``batch_size`` rows. ``done`` (same run) leaves out the rows it
    says landed; a ``done`` for another label, or past the end, leaves out
    nothing (re-setting the same properties is idempotent). ``done`` at the
    last row leaves no batch: only the finishing transaction remains.
    """
    first = done.rows if done is not None and done.label == label else 0
    return step_batches("properties", label, rows, batch_size, first)


def batches(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    """Split a frame into consecutive slices of at most ``size`` rows."""
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]
