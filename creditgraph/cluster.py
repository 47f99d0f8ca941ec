"""Connecting to a Dask cluster: ``local`` starts one on this machine, an address joins one.

Only the commands given ``--cluster`` (or ``CREDITGRAPH_DASK_SCHEDULER``) import
Dask, through :func:`connect`; without it nothing here is loaded.

>>> with connect("local") as cluster:  # doctest: +SKIP
...     print(cluster.dashboard)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from creditgraph.errors import ClusterUnavailable, ConfigError

if TYPE_CHECKING:
    from distributed import Client

LOCAL = "local"


@dataclass(frozen=True)
class Cluster:
    """A connected Dask client and where its dashboard is (None when it has none)."""

    client: Client
    dashboard: str | None
    workers: int


def check_address(address: str) -> str:
    """``local`` or a scheduler URL (``tcp://host:8786``); raises ConfigError naming the value."""
    if address == LOCAL or "://" in address:
        return address
    raise ConfigError(f"--cluster must be 'local' or a scheduler address like "
                      f"tcp://host:8786, not {address!r}")  # fmt: skip


@contextmanager
def connect(address: str, *, timeout: float = 30.0) -> Iterator[Cluster]:
    """A client on ``address``; ``local`` starts a ``LocalCluster`` sized to this machine.

    The local cluster has one single-threaded worker process per core (XGBoost and the
    feature code release the GIL, but processes keep pandas' own work parallel too) and is
    closed on exit; a remote cluster is only disconnected from.
    """
    check_address(address)
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # the optional extra is missing
        raise ConfigError("--cluster needs Dask: pip install 'creditgraph[dask]'") from exc
    local: Any = None
    try:
        if address == LOCAL:
            cores = os.cpu_count() or 1
            local = LocalCluster(n_workers=cores, threads_per_worker=1, processes=True,
                                 dashboard_address=":0")  # fmt: skip
            client = Client(local, timeout=timeout)
        else:
            client = Client(address, timeout=timeout)
    except OSError as exc:  # refused, unreachable, or timed out
        if local is not None:
            local.close()
        raise ClusterUnavailable(f"no Dask scheduler answers at {address}: {exc}") from exc
    try:
        workers = len(client.scheduler_info().get("workers", {}))
        yield Cluster(client, client.dashboard_link, workers)
    finally:
        client.close()
        if local is not None:
            local.close()
