"""Exact nearest training rows on a Dask cluster: :func:`fscert.metrics.nearest.nearest`, sharded.

:func:`nearest_sharded` returns the same :class:`~fscert.metrics.nearest.Nearest` (nearest and
second-nearest training row of every query row, exact float64 squared distances, the inner
step of Eq. 9) as ``nearest(query, train)`` in one process, bit for bit, ties included, while
each worker reads only its own shard of the training rows from the dataset itself
(:class:`FileRows`: ``.npy``, ``.npz``, HDF5; :class:`~fscert.metrics.file_rows.FolderRows`:
a folder of image files; :class:`ArrayRows`: an in-memory array, for
tests and small sets, scattered once).

How. ``nearest`` (a) centres both sets on the training mean, a float64 sum of per-chunk
column sums (``Rows.mean64``, chunks of ``TRAIN_CHUNK`` rows) divided by n; (b) for each
training chunk of ``chunk`` rows and each query batch of ``batch`` rows, forms the float32
distance matrix by one matrix product (a query row's ``exclude`` row set to +inf) and keeps
its ``kk = min(k, chunk rows)`` smallest
(``topk``); (c) merges them into the running ``k`` best per query row (``topk`` of the
concatenation); (d) re-ranks the final ``k`` by exact float64 distance, ties to the lower
index. Here, with shard boundaries at multiples of both chunk sizes:

1. each shard task returns its per-``TRAIN_CHUNK`` float64 column sums; the client adds them
   in row order into a float64 zero vector and divides by n: the same operations on the same
   values in the same order as (a), so the same centre, bit for bit;
2. each shard task runs (b) on its chunks with the same query batches, so every float32
   matrix and every per-chunk ``topk`` is the one ``nearest`` computes, and returns, per query
   row and chunk, those ``kk`` candidates (values, indices, in ``topk``'s own order) with their
   exact float64 distances (the same sums of squared differences ``nearest`` computes, row by row);
3. the client replays (c) chunk by chunk in row order, with the same concatenations and the
   same ``topk`` calls, carrying each candidate's exact distance along, and then (d) verbatim.

So the candidate set, including which of several equal float32 values ``topk`` keeps, is the
one of ``nearest``, and so is the result: identical inputs to identical deterministic
operations. A simpler merge, each shard's best ``k`` ranked by exact distance, would not be:
a shard keeps candidates that ``nearest``'s float32 pass dropped (at ≥ k float32 ties, e.g.
duplicate training images, or where float32 rounding misorders a true neighbour); its result
would then be more exact than ``nearest``'s, but different, so it is not used.

When it can differ: only where the single process computes a float differently, which takes
several torch threads (workers run one). On several threads (i) MKL can round a small float32
product differently, so ``nearest`` can keep, of two rows whose float32 distances agree to
rounding, the other one as a candidate; (ii) torch splits the sum over one row of more than
32768 values across threads, so an exact distance can differ in its last bit. ``nearest``
itself then differs between thread counts in the same places. The guarantee is therefore
equality with ``nearest`` on one torch thread with the same torch (versions are checked by
:func:`fscert.cluster.client_for`); at other thread counts the two differ at most where
``nearest`` differs from itself (measured: nowhere, 1000 MNIST images at 1, 2 and 8 threads),
and every distance reported is the float64 distance of the rows reported either way. Input
rows are taken C-contiguous (what every loader gives); a transposed float64 view could
change the last bits of ``nearest``'s own mean.

Cost: a shard's result holds ``k`` candidates per query row and chunk, 20 bytes each (50 000
query rows, 8 chunks, k = 4: 32 MB); their exact distances take k / ``chunk`` of the
multiply-adds of the float32 products (0.1 %), the client's replay a few ``topk`` calls per
chunk and batch.

Fault tolerance: tasks are pure functions of the source, the shard bounds and the (scattered,
replicated) query rows, so Dask reruns those of a lost worker elsewhere (up to its
``allowed-failures``). :class:`ArrayRows` shards live only in worker memory: losing the worker
that holds one fails the search with Dask's error; use :class:`FileRows` on a cluster.
"""
from __future__ import annotations

import contextlib
import importlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .file_rows import CHECK_ROWS, FileRows, FolderRows, file_rows_for  # noqa: F401  (re-exported)
from .nearest import CANDIDATES, GEN_BATCH, TRAIN_CHUNK, Nearest, Rows, approx_sqdist, exact_sqdist, rank_candidates

if TYPE_CHECKING:
    from distributed import Client, Future

# the submodule itself (``fscert.metrics.nearest`` as an attribute is the function): its
# TRAIN_CHUNK is read at call time, as Rows.mean64 reads it
_nearest_module = importlib.import_module(".nearest", __package__)

#: shards are at most this many units of lcm(chunk, TRAIN_CHUNK) rows when ``shard_rows`` is not given
MAX_SHARD_UNITS = 8
#: ... and aim at this many shards per worker thread (load balance, and reruns of a lost worker)
SHARDS_PER_THREAD = 2
class ArrayRows:
    """Training rows held in this process (numpy or torch, one row per image), scattered once."""

    def __init__(self, x: Any):
        self.t_ND = _rows_2d(x)

    def count(self) -> int:
        return int(self.t_ND.shape[0])


def _rows_2d(x: Any) -> torch.Tensor:
    """The N×D tensor view ``Rows`` makes of ``x`` (its centre is never used here)."""
    return Rows(x.t_ND if isinstance(x, Rows) else x, center=torch.zeros(1)).t_ND


def _one_thread() -> None:
    # one torch thread per task: a worker process has one Dask thread (fscert.cluster)
    torch.set_num_threads(1)


@dataclass(frozen=True)
class _Shard:
    """Rows lo:hi of a :class:`FileRows`: what a task gets instead of the rows (a few bytes)."""

    source: FileRows
    lo: int
    hi: int


def _part_rows(part: "_Shard | torch.Tensor") -> torch.Tensor:
    """A task's shard: a :class:`_Shard` is read here, where the task runs; a scattered tensor arrives as is."""
    return _rows_2d(part.source.rows(part.lo, part.hi) if isinstance(part, _Shard) else part)


def _count(source: FileRows) -> int:
    _one_thread()
    return source.count()


def _shard_sums(part: Any, mean_chunk: int) -> np.ndarray:
    """float64 column sums of each ``mean_chunk`` rows of the shard, as ``Rows.mean64`` forms them."""
    _one_thread()
    t_ND = _part_rows(part)
    return torch.stack([t_ND[lo:lo + mean_chunk].to(torch.float64).sum(0)
                        for lo in range(0, t_ND.shape[0], mean_chunk)]).numpy()


def _shard_candidates(part: Any, offset: int, q_ND: torch.Tensor, center_D: torch.Tensor,
                      excl_N: torch.Tensor | None, batch: int, chunk: int,
                      k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query row and chunk of the shard, ``nearest``'s float32 ``topk`` candidates and their exact distances.

    ``excl_N``: per query row, the (global) training row it skips, -1 none, as in ``nearest``.
    Returns ``v_NCk`` (float32, ``topk`` order; +inf pads a short last chunk), ``i_NCk`` (global
    row indices, -1 pads) and ``x_NCk`` (exact float64 squared distances, +inf where the float32
    value is not finite: ``nearest`` never re-ranks those).
    """
    _one_thread()
    with torch.no_grad():
        r = Rows(_part_rows(part), center=center_D)
        q = Rows(q_ND, center=center_D)
        n_chunks = -(-r.n // chunk)
        v_NCk = torch.full((q.n, n_chunks, k), float("inf"))
        i_NCk = torch.full((q.n, n_chunks, k), -1, dtype=torch.int64)
        for c, clo in enumerate(range(0, r.n, chunk)):
            chi = min(clo + chunk, r.n)
            r_cD = r.chunk(clo, chi)
            rn_c = (r_cD * r_cD).sum(1)
            kk = min(k, chi - clo)
            for blo in range(0, q.n, batch):
                bhi = min(blo + batch, q.n)
                d_bc = approx_sqdist(q.chunk(blo, bhi), r_cD, rn_c)
                if excl_N is not None:
                    e_b = excl_N[blo:bhi] - offset
                    hit = ((e_b >= clo) & (e_b < chi)).nonzero(as_tuple=True)[0]
                    d_bc[hit, e_b[hit] - clo] = float("inf")
                v, i = torch.topk(d_bc, kk, dim=1, largest=False, sorted=False)
                v_NCk[blo:bhi, c, :kk], i_NCk[blo:bhi, c, :kk] = v, i + clo
        ok = torch.isfinite(v_NCk) & (i_NCk >= 0)
        x_NCk = torch.full(v_NCk.shape, float("inf"), dtype=torch.float64)
        qi = torch.arange(q.n).view(-1, 1, 1).expand_as(i_NCk)
        x_NCk[ok] = exact_sqdist(q, qi[ok], r, i_NCk[ok])
        i_NCk[i_NCk >= 0] += offset
    return v_NCk.numpy(), i_NCk.numpy(), x_NCk.numpy()


def _default_shard_rows(client: "Client", n: int, unit: int) -> int:
    threads = max(1, sum(client.nthreads().values()))
    units = -(-n // unit)
    return unit * min(MAX_SHARD_UNITS, max(1, -(-units // (SHARDS_PER_THREAD * threads))))


def _mean(client: "Client", parts: list, n: int, mean_chunk: int, futures: list) -> torch.Tensor:
    """Step 1: ``Rows.mean64`` of all shards, from their per-chunk float64 sums added in row order."""
    sums = [client.submit(_shard_sums, p, mean_chunk, pure=False) for p in parts]
    futures += sums
    acc_D = None
    for f in sums:
        s_MD = torch.from_numpy(f.result())
        f.release()
        if acc_D is None:
            acc_D = torch.zeros(s_MD.shape[1], dtype=torch.float64)
        for s_D in s_MD:
            acc_D += s_D
    return acc_D / max(n, 1)


def _merge(cands: list, bounds: list[tuple[int, int]], n: int, nq: int, k: int, batch: int,
           chunk: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step 3: ``nearest``'s running merge (c), chunk by chunk in row order, exact distances carried along."""
    best_v = torch.full((nq, k), float("inf"))
    best_i = torch.full((nq, k), -1, dtype=torch.int64)
    best_x = torch.full((nq, k), float("inf"), dtype=torch.float64)
    for f, (lo, hi) in zip(cands, bounds):
        v_NCk, i_NCk, x_NCk = (torch.from_numpy(a) for a in f.result())
        f.release()
        for c, clo in enumerate(range(lo, hi, chunk)):
            kk = min(k, min(clo + chunk, n) - clo)
            for blo in range(0, nq, batch):
                bhi = min(blo + batch, nq)
                v = torch.cat([best_v[blo:bhi], v_NCk[blo:bhi, c, :kk]], 1)
                i = torch.cat([best_i[blo:bhi], i_NCk[blo:bhi, c, :kk]], 1)
                x = torch.cat([best_x[blo:bhi], x_NCk[blo:bhi, c, :kk]], 1)
                v, sel = torch.topk(v, k, dim=1, largest=False, sorted=False)
                best_v[blo:bhi], best_i[blo:bhi], best_x[blo:bhi] = v, i.gather(1, sel), x.gather(1, sel)
    return best_v, best_i, best_x


def nearest_sharded(query: Any, train: "FileRows | ArrayRows | Any", client: "Client",
                    shard_rows: int | None = None, batch: int = GEN_BATCH, chunk: int = TRAIN_CHUNK,
                    candidates: int = CANDIDATES, exclude: Any = None) -> Nearest:
    """``nearest(query, train_rows, batch=batch, chunk=chunk, candidates=candidates)`` on ``client``'s workers.

    ``train``: a :class:`FileRows` (each worker reads its shard), an :class:`ArrayRows` or an
    array / tensor (scattered once, shard by shard). ``shard_rows``: rows per task, a multiple
    of lcm(``chunk``, ``TRAIN_CHUNK``); default: about :data:`SHARDS_PER_THREAD` shards per
    worker thread, at most :data:`MAX_SHARD_UNITS` units. ``exclude``: as in ``nearest`` (per
    query row a training row to skip, -1 none). The query rows are scattered to every worker
    once. Equal to the single-process result bit for bit (module docstring: why, and the
    one-thread condition). On any exit by exception, Ctrl-C included, the futures are
    cancelled; the scattered rows are freed on the workers either way.
    """
    mean_chunk = _nearest_module.TRAIN_CHUNK
    q_ND = _rows_2d(query).contiguous()
    if not isinstance(train, (FileRows, FolderRows, ArrayRows)):
        train = ArrayRows(train)
    if isinstance(train, ArrayRows) and train.t_ND.shape[1] != q_ND.shape[1]:
        raise ValueError(f"query rows have {q_ND.shape[1]} values, reference rows {train.t_ND.shape[1]}")
    excl_N = None
    if exclude is not None:
        excl_N = torch.as_tensor(np.asarray(exclude, dtype=np.int64))
        if excl_N.shape != (q_ND.shape[0],):
            raise ValueError(f"exclude has shape {tuple(excl_N.shape)}, expected ({q_ND.shape[0]},)")
    unit = math.lcm(chunk, mean_chunk)
    if shard_rows is not None and (shard_rows < 1 or shard_rows % unit):
        raise ValueError(f"shard_rows must be a positive multiple of lcm(chunk, TRAIN_CHUNK) = {unit}, "
                         f"got {shard_rows}")
    futures: list[Future] = []
    try:
        if isinstance(train, ArrayRows):
            n = train.count()
        else:
            futures.append(client.submit(_count, train, pure=False))
            n = futures[-1].result()
        if n == 0:
            raise ValueError("the reference set is empty")
        size = shard_rows or _default_shard_rows(client, n, unit)
        bounds = [(lo, min(lo + size, n)) for lo in range(0, n, size)]
        if isinstance(train, ArrayRows):                 # one shard in this process's memory at a time
            parts: list[Any] = [client.scatter([train.t_ND[lo:hi].clone()], hash=False)[0] for lo, hi in bounds]
            futures += parts
        else:
            parts = [_Shard(train, lo, hi) for lo, hi in bounds]
        center_D = _mean(client, parts, n, mean_chunk, futures)
        if q_ND.shape[1] != center_D.shape[0]:
            raise ValueError(f"query rows have {q_ND.shape[1]} values, reference rows {center_D.shape[0]}")
        center_D = center_D.float()
        k = max(2, min(candidates, n))
        [q_f, e_f] = client.scatter([q_ND, excl_N], broadcast=True, hash=False)
        futures += [q_f, e_f]
        cands = [client.submit(_shard_candidates, p, lo, q_f, center_D, e_f, batch, chunk, k, pure=False)
                 for p, (lo, _) in zip(parts, bounds)]
        futures += cands
        best_v, best_i, best_x = _merge(cands, bounds, n, q_ND.shape[0], k, batch, chunk)
    finally:
        with contextlib.suppress(Exception):         # a lost scheduler must not hide the result or the error
            client.cancel(futures)
    return rank_candidates(best_v, best_i, best_x, n, int(center_D.shape[0]))
