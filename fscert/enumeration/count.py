"""Exact counting of the reachable latents by the frontier forward pass (DESIGN §6.4–6.5; paper A.3.6).

A latent is **reachable** iff every pair (Pre_i, z_i) occurs in E at cell i
(:mod:`fscert.enumeration.tables`); its probability is the product of the conditionals. A
partial stitching whose next context never occurs in E is a **dead end** (the sampler
restarts); ``dead_end_mass`` is the total probability of dead ends.

Algorithm. :func:`forward` runs one compiled pre-pass and step per cell
(:mod:`fscert.enumeration.kernels`) from the empty frontier (the root) to the last cell. A
state of layer i (a frontier after cells 0..i−1) carries

* the exact number of prefixes as little-endian 32-bit limbs (multi-precision, so counts far
  beyond 2^64 are exact; the layer after cell i has as many limbs as its bound needs, from
  the number of distinct tokens per cell, :meth:`Tables.limbs_after`),
* the forward probability mass (float64); states whose context is not in E add their mass
  to ``dead_end_mass``.

Prefix split. Before each step the pass computes the step's memory from the exact
candidate-edge count (child rows, hash table or trimmed copy, stored edges). A step larger
than ``work`` bytes (default :data:`WORK_BYTES`, the same on every machine) is **split**: the
layer is cut into chunks of prefix states (sorted so that states which merge soon share a
chunk), consecutive runs whose first step takes at most ``work`` bytes, and each chunk is
continued through the remaining cells on its own, depth-first (:func:`count_prefixes`); a
chunk may split again later. These chunks depend only on E, ρ and ``work``, never on the
machine, so every float64 mass is summed in the same order on any machine, and on a Dask
cluster, where the chunks are tasks (:mod:`fscert.enumeration.count_sharded`):
the same count and the same masses, bit for bit.

Memory guard. The step's memory plus what is held is checked against ``max_memory``
(default ¾ of the machine's memory, as in :mod:`fscert.resources`). Where the canonical
chunks do not fit, chunks are made smaller to fit (and retried smaller where a chunk meets a
later layer it cannot fit): the count stays exact, but the masses' last bits then depend on
the memory; ``CountResult.memory_splits`` counts these machine-dependent cuts (0: canonical).
Every reachable latent passes through exactly one state of
the split layer, so the chunks' counts (limbs), dead-end and reachable masses add up to the
unsplit result — counts exactly, masses up to float rounding. Memory stays bounded by the
held layers plus one chunk's work; the price is time, since states that would have merged
across chunks are computed once per chunk. When even one prefix state does not fit, the
pass stops with a one-line :class:`FscertError` naming the cell. The storing pass of the
listing (``forward(store=True)``) is never split: it refuses in the same way.

Guarantee: ``count`` is the exact number of reachable latents (a Python int), whether or not
layers were split; the step keeps the edges (for :mod:`fscert.enumeration.listing`) only when
asked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FscertError
from ..progress import Progress
from ..resources import memory_limit, size_str
from .kernels import EDGE_BYTES, _contexts, _merge_keys, _n_edges, _run_end, _step, _step_bytes
from .tables import LIMB_BITS, Tables, build_tables


@dataclass
class CountResult:
    """Exact reachable count (Python int) and the dead-end mass (DESIGN §6.4)."""

    count: int
    dead_end_mass: float
    reachable_mass: float            # Σ of un-normalised products over reachable latents
    max_states: int                  # largest frontier layer held at once (a chunk's layer after a split)
    edges: list | None = None        # per cell (parent, child, tok, cond, n_parent, n_child) when stored
    peak_bytes: int = 0              # largest memory estimate (bytes) of a step whose work was kept
    splits: int = 0                  # layers split into prefix chunks (all depths)
    retries: int = 0                 # chunks stopped before a layer that did not fit, redone smaller
    memory_splits: int = 0           # splits and chunks cut by the memory limit, not ``work`` (0: canonical)
    tasks: int = 0                   # chunks run as Dask tasks


#: a counting step above this many bytes is split into prefix chunks of at most this size
#: (module docstring): fixed, so that the float64 masses are summed in the same order on every
#: machine and on a cluster
WORK_BYTES = 2 << 30


def limbs_to_int(limbs_L: np.ndarray) -> int:
    return sum(int(v) << (LIMB_BITS * i) for i, v in enumerate(limbs_L.tolist()))


def _layer_bytes(states_NW: np.ndarray, limbs_NL: np.ndarray, mass_N: np.ndarray) -> int:
    return int(states_NW.nbytes + limbs_NL.nbytes + mass_N.nbytes)


def _root(tables: Tables) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The layer before cell 0: one empty frontier, count 1, mass 1."""
    limbs_NL = np.zeros((1, 2), np.uint64)
    limbs_NL[0, 0] = 1
    return np.zeros((1, tables.n_words), np.uint64), limbs_NL, np.ones(1, np.float64)


def layer_contexts(tables: Tables, i: int, states_NW: np.ndarray) -> np.ndarray:
    """int32 (N,): context row at cell i of every state of layer i (−1: dead end) — the pre-pass."""
    ct = tables.cells[i]
    pre_slots = (ct.pre_cells % tables.frontier).astype(np.int64)
    return _contexts(states_NW, pre_slots, ct.ctx_keys, tables.per_word, tables.shape[0])


def candidate_edges(tables: Tables, i: int, states_NW: np.ndarray) -> int:
    """Exact number of candidate edges (parent, token) out of layer i: the rows a step allocates."""
    return int(_n_edges(layer_contexts(tables, i, states_NW), tables.cells[i].ctx_ptr))


def _child_row_bytes(tables: Tables, i: int) -> int:
    return 8 * (tables.n_words + int(tables.limbs_after()[i]) + 1)


def _bytes_str(n: int) -> str:
    return f"{n} B" if n < 1024 else size_str(n)


def _guard_line(what: str, need: int, i: int, tables: Tables, n_states: int, limit: int, why: str = "") -> str:
    """The one-line refusal: what needs how much at which cell, against the limit."""
    states = f"{n_states:,} frontier state{'' if n_states == 1 else 's'} so far{why}"
    return (f"{what} needs about {_bytes_str(need)} at cell {i + 1} of {tables.n_cells} ({states}) "
            f"and --max-memory is {_bytes_str(limit)}")


def _advance(tables: Tables, i: int, states_NW: np.ndarray, limbs_NL: np.ndarray, mass_N: np.ndarray,
             ctx_N: np.ndarray, n_edges: int, store: bool) -> tuple:
    """Run :func:`_step` at cell i and trim the child layer; returns (states, limbs, mass, dead, edges)."""
    ct = tables.cells[i]
    (st, lb, ms, nn, dead, ep, ec, et, econd) = _step(
        states_NW, limbs_NL, mass_N, ctx_N, n_edges, int(tables.limbs_after()[i]), i % tables.frontier,
        ct.ctx_ptr, ct.tok, ct.cond, tables.keep_masks[i], tables.per_word, tables.shape[0], store)
    if nn < n_edges:               # copy, so that the n_edges-row buffers are freed
        st, lb, ms = st[:nn].copy(), lb[:nn].copy(), ms[:nn].copy()
    return st, lb, ms, dead, (ep, ec, et, econd, len(states_NW), nn)


def _final(limbs_NL: np.ndarray, mass_N: np.ndarray) -> tuple[int, float]:
    """Count and reachable mass of the last layer."""
    if not len(limbs_NL):
        return 0, 0.0
    return sum(limbs_to_int(row) for row in limbs_NL), float(mass_N.sum())


def _merge_slots(tables: Tables, i: int) -> np.ndarray:
    """int64: the frontier slots visible at layer i (before cell i), longest-lived first.

    Two states merge at a later layer once they agree on every slot still visible there, so
    ordering a layer by its longest-lived slots puts states that merge soon next to each
    other — in the same prefix chunk, where they still merge (fewer duplicated states)."""
    f, keep = tables.frontier, tables.keep_masks
    life: list[tuple[int, int, int]] = []
    for c in range(max(0, i - f), i):
        s = c % f
        bit = np.uint64(((1 << tables.shape[0]) - 1) << ((s % tables.per_word) * tables.shape[0]))
        t = i - 1
        while t < tables.n_cells and keep[t, s // tables.per_word] & bit:
            t += 1
        if t > i - 1:
            life.append((t, c, s))
    return np.asarray([s for _, _, s in sorted(life, reverse=True)], np.int64)


#: :func:`_sort_for_split`'s answer when the sorted copy does not fit
_NO_ROOM = object()


def _sort_for_split(tables: Tables, i: int, states_NW: np.ndarray, limbs_NL: np.ndarray, mass_N: np.ndarray,
                    spare: int):
    """Layer i reordered by :func:`_merge_slots` (a copy); None where there is nothing to sort;
    ``_NO_ROOM`` when the copy and the sort's two index arrays would not fit in ``spare`` bytes.
    Reordering never changes a count."""
    if len(states_NW) < 2:
        return None
    if _layer_bytes(states_NW, limbs_NL, mass_N) + 24 * len(states_NW) > spare:
        return _NO_ROOM
    slots_K = _merge_slots(tables, i)
    if not len(slots_K):
        return None
    order_N = np.argsort(_merge_keys(states_NW, slots_K, tables.per_word, tables.shape[0]), kind="stable")
    return states_NW[order_N], limbs_NL[order_N], mass_N[order_N]


class _DoesNotFit(Exception):
    """Internal: a chunk that may give up met a step it cannot fit; ``need``: total bytes it needed."""

    def __init__(self, need: int):
        super().__init__(need)
        self.need = need


#: a chunk that meets a layer it cannot step nests (splits that layer) when the layer takes at
#: most this fraction of its room; otherwise it gives up and is retried smaller
NEST_FRACTION = 0.5


def count_prefixes(tables: Tables, cell: int, states_NW: np.ndarray, limbs_NL: np.ndarray, mass_N: np.ndarray,
                   *, max_memory: int | None = None, held: int | None = None, can_abort: bool = False,
                   bar=None, depth: int = 0, work: int = WORK_BYTES, client=None) -> CountResult:
    """Count the completions of the given prefix states of layer ``cell`` (cells 0..cell−1 placed).

    ``states_NW``/``limbs_NL``/``mass_N`` are rows of a layer of the forward pass (any subset:
    a chunk). The result is the *partial* CountResult of those prefixes over cells
    cell..L−1: the exact number of complete latents through them, the dead-end mass met from
    cell ``cell`` on, and their reachable mass. Every path has exactly one state at layer
    ``cell``, so the partial results of a partition of a layer add up exactly to the
    layer's (plus the dead-end mass before it): chunks are independent, and a distributed
    engine (e.g. Dask) can run one task per chunk, sum counts, dead-end and reachable masses
    and take the max of ``max_states``.

    Before each cell the step's memory is computed from the exact candidate-edge count
    (:func:`candidate_edges`); when it exceeds ``work`` bytes, or ``held`` plus it exceeds
    ``max_memory`` (bytes; None: ¾ of the machine's memory), the layer is split into prefix
    chunks run depth-first (:func:`_split_layer`); with ``client`` (a Dask client) the chunks
    run as tasks on its workers (nested splits too), with the same result. With ``can_abort`` the call may instead give up before
    allocating (internal :class:`_DoesNotFit`) so that the caller retries smaller chunks:
    it does so when the layer to split would take more than ``NEST_FRACTION`` of its room.
    ``held``: bytes the caller keeps alive meanwhile, including the given arrays (default:
    their size). ``bar``/``depth``: progress display (:class:`fscert.progress.Progress`) and
    nesting depth.
    """
    limit = memory_limit(max_memory)
    held = _layer_bytes(states_NW, limbs_NL, mass_N) if held is None else held
    own = 0            # bytes of the layer this call allocated (the given prefixes are in ``held``)
    dead = 0.0
    res = CountResult(0, 0.0, 0.0, len(states_NW))
    for i in range(cell, tables.n_cells):
        if not len(states_NW):
            break
        ctx_N = layer_contexts(tables, i, states_NW)
        n_edges = int(_n_edges(ctx_N, tables.cells[i].ctx_ptr))
        step = int(_step_bytes(n_edges, _child_row_bytes(tables, i), False))
        need = held + own + ctx_N.nbytes + step
        if (step > work and len(states_NW) > 1) or need > limit:     # one state cannot split at its own cell
            if need > limit and can_abort and own + ctx_N.nbytes > NEST_FRACTION * (limit - held):
                raise _DoesNotFit(need)
            del ctx_N
            memory_cut = step <= work              # split for want of memory, not for ``work``
            srt = _sort_for_split(tables, i, states_NW, limbs_NL, mass_N, limit - held - own)
            if srt is _NO_ROOM:
                memory_cut, srt = True, None
            if srt is not None:       # the sorted copy replaces the layer this call owns, else adds to it
                own = own or _layer_bytes(*srt)
                states_NW, limbs_NL, mass_N = srt
                del srt
            ctx_N = layer_contexts(tables, i, states_NW)
            part = _split_layer(tables, i, states_NW, limbs_NL, mass_N, ctx_N, limit, held + own, can_abort,
                                bar, depth, work, client)
            if bar is not None and depth == 0:
                bar.update(tables.n_cells - i)
            part.dead_end_mass += dead
            part.memory_splits += memory_cut
            part.max_states = max(res.max_states, part.max_states)
            part.peak_bytes = max(res.peak_bytes, part.peak_bytes)
            return part
        states_NW, limbs_NL, mass_N, d, _ = _advance(tables, i, states_NW, limbs_NL, mass_N, ctx_N, n_edges, False)
        del ctx_N
        dead += d
        own = _layer_bytes(states_NW, limbs_NL, mass_N)
        res.max_states = max(res.max_states, len(states_NW))
        res.peak_bytes = max(res.peak_bytes, need)
        if bar is not None:
            bar.update(1 if depth == 0 else 0)
            bar.set_postfix(states=len(states_NW), depth=depth, refresh=False)
    res.count, res.reachable_mass = _final(limbs_NL, mass_N)
    res.dead_end_mass = dead
    return res


def _split_layer(tables: Tables, i: int, states_NW: np.ndarray, limbs_NL: np.ndarray, mass_N: np.ndarray,
                 ctx_N: np.ndarray, limit: int, held: int, can_abort: bool, bar, depth: int, work: int = WORK_BYTES,
                 client=None) -> CountResult:
    """Count layer i chunk by chunk (depth-first) and add up the partial results in chunk order.

    Chunks are consecutive runs of prefix states whose first step fits in a byte budget:
    ``work`` (canonical, module docstring), or half the room beside ``held`` where that is
    less. Only under that memory bound: a chunk of several states may give up before a later
    layer it cannot fit; it is then retried with the budget scaled by min(½, 0.8 · room / need),
    so a give-up costs recomputation, never memory; after a chunk succeeds the budget grows
    back (at most ×2, never above ``work``) towards 0.8 · room / its peak. A chunk of one
    state cannot shrink: it splits again at a later layer, or gives up to an enclosing chunk
    (``can_abort``), or — at the top — refuses with the one-line error. With ``client``, the
    canonical chunks run as Dask tasks (:func:`fscert.enumeration.count_sharded.count_chunks`).
    """
    ct = tables.cells[i]
    row = _child_row_bytes(tables, i)
    held_c = held + ctx_N.nbytes
    room = limit - held_c
    one = 4 + int(_step_bytes(int(np.diff(ct.ctx_ptr).max()), row, False))
    if one > room:
        if can_abort:
            raise _DoesNotFit(held_c + one)
        raise FscertError(_guard_line("counting", held_c + one, i, tables, len(states_NW), limit,
                                      ", even one prefix state at a time"))
    budget = room // 2 if one <= room // 2 else room
    total = CountResult(0, 0.0, 0.0, len(states_NW), None, 0, 1)
    if budget < work:
        total.memory_splits += 1
    budget = min(budget, work)
    if client is not None and budget == work:
        from .count_sharded import count_chunks

        bounds = []
        start = 0
        while start < len(states_NW):
            bounds.append((start, int(_run_end(ctx_N, ct.ctx_ptr, row, start, budget))))
            start = bounds[-1][1]
        for part in count_chunks(client, tables, i, states_NW, limbs_NL, mass_N, bounds, work, bar):
            _accumulate(total, part)
        total.tasks += len(bounds)
        return total
    start = 0
    while start < len(states_NW):
        end = int(_run_end(ctx_N, ct.ctx_ptr, row, start, budget))
        multi = end - start > 1
        if bar is not None:
            bar.set_postfix(cell=i + 1, prefixes=f"{start:,}–{end:,} of {len(states_NW):,}", depth=depth + 1,
                            refresh=False)
        try:
            part = count_prefixes(tables, i, states_NW[start:end], limbs_NL[start:end], mass_N[start:end],
                                  max_memory=limit, held=held_c, can_abort=multi or can_abort, bar=bar,
                                  depth=depth + 1, work=work)
        except _DoesNotFit as err:
            if not multi:
                raise
            budget = int(budget * min(0.5, 0.8 * room / (err.need - held_c)))
            total.retries += 1
            total.memory_splits += 1
            continue
        _accumulate(total, part)
        if part.peak_bytes > held_c:
            budget = int(min(room, work, budget * min(2.0, 0.8 * room / (part.peak_bytes - held_c))))
        if budget < work:
            total.memory_splits += 1              # the next chunk is cut by the memory, not ``work``
        start = end
    return total


def _accumulate(total: CountResult, part: CountResult) -> None:
    """Add a chunk's partial result to ``total`` (counts and masses add; sizes take the max)."""
    total.count += part.count
    total.dead_end_mass += part.dead_end_mass
    total.reachable_mass += part.reachable_mass
    total.max_states = max(total.max_states, part.max_states)
    total.peak_bytes = max(total.peak_bytes, part.peak_bytes)
    total.splits += part.splits
    total.retries += part.retries
    total.memory_splits += part.memory_splits
    total.tasks += part.tasks


def _forward_listing(tables: Tables, limit: int, bar) -> CountResult:
    """The forward pass storing its edges (for listing): never split, refused above ``limit``."""
    states_NW, limbs_NL, mass_N = _root(tables)
    dead = 0.0
    edges: list = []
    kept = 0               # bytes of the stored edges
    res = CountResult(0, 0.0, 0.0, 1, edges)
    for i in range(tables.n_cells):
        ctx_N = layer_contexts(tables, i, states_NW)
        n_edges = int(_n_edges(ctx_N, tables.cells[i].ctx_ptr))
        need = (kept + _layer_bytes(states_NW, limbs_NL, mass_N) + ctx_N.nbytes
                + int(_step_bytes(n_edges, _child_row_bytes(tables, i), True)))
        if need > limit:
            raise FscertError(_guard_line("listing", need, i, tables, len(states_NW), limit))
        states_NW, limbs_NL, mass_N, d, e = _advance(tables, i, states_NW, limbs_NL, mass_N, ctx_N, n_edges, True)
        dead += d
        kept += EDGE_BYTES * n_edges
        edges.append(e)
        res.max_states = max(res.max_states, len(states_NW))
        res.peak_bytes = max(res.peak_bytes, need)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(states=len(states_NW), refresh=False)
        if not len(states_NW):
            break
    res.count, res.reachable_mass = _final(limbs_NL, mass_N)
    res.dead_end_mass = dead
    return res


def forward(tables: Tables, store: bool = False, progress: bool = False, max_memory: int | None = None,
            work: int = WORK_BYTES, client=None) -> CountResult:
    """Run the frontier DP over all cells; see :mod:`fscert.enumeration.count`.

    ``max_memory`` (bytes; None: ¾ of the machine's memory, :func:`fscert.resources.memory_limit`)
    bounds every step: counting splits a layer whose step exceeds ``work`` bytes or does not
    fit into prefix chunks (:func:`count_prefixes`), listing (``store``) refuses with a
    one-line :class:`FscertError`. ``client``: the counting chunks run on its workers (the
    same result, bit for bit, while ``memory_splits`` is 0).
    """
    limit = memory_limit(max_memory)
    with Progress(total=tables.n_cells, desc="enumerate" if store else "count", unit="cell",
                  show=progress, leave=False) as bar:
        if store:
            return _forward_listing(tables, limit, bar)
        return count_prefixes(tables, 0, *_root(tables), max_memory=limit, bar=bar, work=work, client=client)


def count_reachable(latents: np.ndarray, rho: int, counts: np.ndarray | None = None,
                    progress: bool = False, max_memory: int | None = None, work: int = WORK_BYTES,
                    client=None) -> CountResult:
    """Exact number of reachable latents and the dead-end mass, without listing (DESIGN §6.5).

    ``max_memory`` bytes (None: ¾ of the machine's memory) bound the counting pass, which
    splits layers into prefix chunks of at most ``work`` bytes, and smaller where memory
    demands it (:func:`forward`); ``client``: those chunks run as Dask tasks."""
    return forward(build_tables(latents, rho, counts), store=False, progress=progress, max_memory=max_memory,
                   work=work, client=client)
