"""Time and peak-memory measurement of a block, shared by the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR = Path("/proc/self/clear_refs")


def _peak_rss_mb() -> float:
    """The process's peak resident set (VmHWM) in MiB."""
    for line in _STATUS.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Reset VmHWM so the next reading is the peak of the next stage only (Linux)."""
    try:
        _CLEAR.write_text("5")
    except OSError:
        pass


@dataclass
class Stages:
    rows: list[tuple[str, float, float]] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        _reset_peak()
        start = time.perf_counter()
        yield
        self.rows.append((name, time.perf_counter() - start, _peak_rss_mb()))
        print(
            f"{name:<28} {self.rows[-1][1]:8.2f} s   peak RSS {self.rows[-1][2]:8.0f} MiB",
            flush=True,
        )

    def total(self) -> float:
        return sum(seconds for _, seconds, _ in self.rows)
