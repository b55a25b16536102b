"""The counting pass on a Dask cluster: the chunks of its first prefix split as tasks (issue 14).

:func:`fscert.enumeration.count.count_prefixes` cuts a layer whose step exceeds ``work`` bytes
into chunks of prefix states that depend only on E, ρ and ``work`` (canonical chunks), and
adds their partial results (exact limb counts, float64 dead-end and reachable masses) in
chunk order. Here the chunks are Dask tasks: each worker continues its chunk through the
remaining cells with the same code; where that chunk splits again (by the same rule), its
sub-chunks become tasks too (the parent task leaves its worker's thread pool while it waits,
:func:`distributed.secede`), and every level adds its chunks' results in chunk order. The operations and their
order are those of the single process, so the count, both masses and ``max_states`` are the
same, bit for bit, as long as neither side had to cut a chunk for want of memory
(``CountResult.memory_splits`` = 0 on both; a worker's memory is the smaller of ¾ of its
machine's and ¾ of its Dask memory limit).

The tables are scattered to every worker once (sub-chunks reuse them). A chunk's rows travel inside its task (not
scattered to one worker, where they would die with it), so Dask can rerun the task of a lost
worker elsewhere (tested: a worker killed mid-count changes nothing); at most
``AHEAD_PER_THREAD`` chunks per worker thread are submitted at a time, so the client never
ships a whole layer at once. On any exit
by exception, Ctrl-C included, the futures are cancelled.
"""
from __future__ import annotations

import contextlib
import threading
import warnings
from typing import Iterator

import numpy as np

from ..cluster import in_order
from ..resources import memory_limit
from .count import CountResult, count_prefixes
from .tables import Tables

#: chunks submitted ahead of the one being added, per worker thread
AHEAD_PER_THREAD = 2


def _worker_memory() -> int:
    """Bytes this worker may use: ¾ of its machine's memory, and of its Dask memory limit if set."""
    limit = memory_limit(None)
    with contextlib.suppress(Exception):
        from distributed import get_worker

        dask_limit = get_worker().memory_manager.memory_limit
        if dask_limit:
            limit = min(limit, int(0.75 * dask_limit))
    return limit


#: in a task: the key of the tables scattered by the client, which sub-chunks reuse
_task = threading.local()


def _count_chunk(tables: Tables, cell: int, states_NW: np.ndarray, limbs_NL: np.ndarray, mass_N: np.ndarray,
                 work: int, tables_key: str) -> CountResult:
    from distributed import get_client

    _task.tables_key = tables_key
    try:
        return count_prefixes(tables, cell, states_NW, limbs_NL, mass_N, max_memory=_worker_memory(), work=work,
                              client=get_client())
    finally:
        _task.tables_key = None


def _in_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
        return True
    except (ImportError, ValueError):
        return False


def count_chunks(client, tables: Tables, cell: int, states_NW: np.ndarray, limbs_NL: np.ndarray, mass_N: np.ndarray,
                 bounds: list[tuple[int, int]], work: int, bar=None) -> Iterator[CountResult]:
    """The partial result of each chunk [lo, hi) of layer ``cell``, in the order of ``bounds``,
    counted on ``client``'s workers."""
    futures: list = []
    nested = _in_worker()
    if nested:                                    # a task splitting its chunk: wait outside the thread pool
        from distributed import rejoin, secede

        secede()
    try:
        key = getattr(_task, "tables_key", None) if nested else None
        if key is not None:                       # a sub-split: the tables are on the workers already
            from distributed import Future

            tables_f = Future(key, client=client)
        else:
            [tables_f] = client.scatter([tables], broadcast=True, hash=False)
            futures.append(tables_f)

        def submit(b: tuple[int, int]):
            lo, hi = b
            with warnings.catch_warnings():       # the chunk travels in the task, on purpose (docstring)
                warnings.filterwarnings("ignore", message=".*[Ll]arge (object|graph).*")
                return client.submit(_count_chunk, tables_f, cell, states_NW[lo:hi], limbs_NL[lo:hi], mass_N[lo:hi],
                                     work, tables_f.key, pure=False)

        for (lo, hi), part in in_order(client, bounds, submit, AHEAD_PER_THREAD):
            if bar is not None:
                bar.set_postfix(cell=cell + 1, prefixes=f"{hi:,} of {len(states_NW):,}", tasks=len(bounds),
                                refresh=False)
            yield part
    finally:
        with contextlib.suppress(Exception):      # a lost scheduler must not hide the result or the error
            client.cancel(futures)
        if nested:
            rejoin()
