"""The near-copy search of every training image on a Dask cluster (:func:`fscert.nearcopy.near_copy_search`
with a ``client``).

Each training image's search (:meth:`fscert.nearcopy.NearCopySearch.run_one`) is independent
of the others once the survival table is built, which :func:`~fscert.nearcopy.near_copy_search`
does before any search, so the images are cut into blocks and each block is one task. A worker
builds its :class:`~fscert.nearcopy.NearCopySearch` once per job (the inputs are scattered
to every worker once, and the searcher is cached in the worker process under the job's key)
and takes the survival table from the client's directory through memory maps — a worker that
cannot read it (another machine, no shared filesystem) builds the same table itself. The
client gathers the blocks in training-image order, so the list of per-image results, and
everything the certificate computes from it, is the one of the single process: the same
deterministic search on the same inputs (tested byte for byte on the certificate's
``content_sha256``).

What differs: ``windows_decoded`` and ``rounding_ties`` of the certificate's ``search``
attribute add up each worker's decoder, so a window decoded by two workers counts twice; they
describe the work done, not the result, and are outside ``content_sha256``.

Faults: a task is a pure function of the scattered inputs and its block, so Dask reruns the
blocks of a lost worker elsewhere; on any exception, Ctrl-C included, the futures are cancelled.
"""
from __future__ import annotations

import contextlib
import math
import uuid
from typing import TYPE_CHECKING, Any

from .progress import Progress

if TYPE_CHECKING:
    from distributed import Client

    from .nearcopy import NearCopySearch, TrainResult

#: blocks per worker thread (smaller blocks balance uneven searches; each costs one round trip)
BLOCKS_PER_THREAD = 8

#: the searcher of the job this worker process is running (key → NearCopySearch)
_SEARCHERS: dict[str, Any] = {}


def _searcher(key: str, spec: tuple, survival: tuple) -> "NearCopySearch":
    from .nearcopy import NearCopySearch

    s = _SEARCHERS.get(key)
    if s is None:
        _SEARCHERS.clear()                    # one job at a time per worker: free the previous one
        latents, counts, rho, model, train, cfg, tables = spec
        s = NearCopySearch(latents, counts, rho, model, train, cfg, tables)
        s.survival.adopt(*survival)
        _SEARCHERS[key] = s
    return s


def _search_block(key: str, spec: tuple, survival: tuple, indices: list[int]) -> tuple[list, int, int]:
    """One task: the results of training images ``indices``, and the decoder's new ties and windows."""
    import torch

    torch.set_num_threads(1)                  # one thread per worker process (fscert.cluster)
    s = _searcher(key, spec, survival)
    ties, decoded = s.dec.ties, s.dec.decoded
    out = [s.run_one(t) for t in indices]
    return out, s.dec.ties - ties, s.dec.decoded - decoded


def _block_size(client: "Client", n: int) -> int:
    threads = max(1, sum((client.nthreads() or {}).values()))
    return max(1, math.ceil(n / (BLOCKS_PER_THREAD * threads)))


def run_sharded(s: "NearCopySearch", spec: tuple, idx: list[int], client: "Client",
                progress: bool = False, save=None) -> list["TrainResult"]:
    """Run ``s.run_one(t)`` for every t of ``idx`` on ``client``'s workers; results in ``idx`` order.

    ``spec``: (latents, counts, ρ, model, train, cfg) as given to ``NearCopySearch``; ``s``'s
    survival table must be built (its directory is what the workers read). ``save``: called with
    each result as it arrives (the search checkpoint)."""
    key = uuid.uuid4().hex
    surv = (s.survival.exact, s.survival.reason, str(s.survival.directory) if s.survival.directory else None)
    size = _block_size(client, len(idx))
    blocks = [idx[lo:lo + size] for lo in range(0, len(idx), size)]
    futures: list = []
    try:
        [spec_f] = client.scatter([tuple(spec) + (s.tables,)], broadcast=True, hash=False)
        futures.append(spec_f)
        tasks = [client.submit(_search_block, key, spec_f, surv, b, pure=False) for b in blocks]
        futures += tasks
        per: list = []
        with Progress(total=len(idx), desc="near-copies", unit="training image", show=progress, leave=False) as bar:
            for f in tasks:                    # in order (the blocks run meanwhile): the results' order is idx's
                out, ties, decoded = f.result()
                per += out
                for r in out if save is not None else ():
                    save(r)
                s.dec.ties += ties
                s.dec.decoded += decoded
                bar.update(len(out))
    finally:
        with contextlib.suppress(Exception):
            client.cancel(futures)
    return per
