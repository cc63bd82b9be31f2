"""Dask clients for the work that fans out: scenario sweeps, town fan-out, unit-source
databases. A LocalCluster of single-threaded worker processes by default, or any running
cluster (``scheduler`` address: dask-jobqueue on an HPC system, dask-gateway), whose
workers need this package installed and the input files at the same paths."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator


def default_workers() -> int:
    """One worker per core: scenarios are independent, so this beats threads per run."""
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None,
                dashboard_address: str | None = ":8787",
                threads: int | None = None, processes: bool = True) -> Iterator:
    """A Dask client: to the cluster at ``scheduler``, or to a new LocalCluster of
    ``workers`` single-threaded processes, each with ``NUMBA_NUM_THREADS`` = ``threads``
    (default cores // workers, at least 1); ``processes=False``: workers as threads of
    this process (tests, debugging)."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    workers = workers or default_workers()
    numba_threads = threads or max(1, (os.cpu_count() or 1) // workers)
    # Set before the worker processes start: they import this package, and so Numba, as
    # they start. (silence_logs: a worker slow to stop under load is killed with a
    # warning; failures themselves are recorded in the store and the log.)
    spawn_env = dict(dask.config.get("distributed.nanny.pre-spawn-environ"),
                     NUMBA_NUM_THREADS=str(numba_threads))
    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                         dashboard_address=dashboard_address,
                         silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client
