"""Survival table: the exact probability of completing a latent from a frontier state (DESIGN §6).

S(s) for a frontier state s after cell i is the probability that the empirical sampler, having
reached s, places every remaining cell without a dead end:

    S(s after the last cell) = 1,    S(s after cell i) = Σ_children P(token | context) · S(child).

The future of a prefix depends only on its last ρW+ρ cells (the enumerator's frontier,
:func:`fscert.search.make_layout` with radius 0), so S is a function of those. Its use: a
capped search (:func:`fscert.search.search` with ``max_states``) weighs a dropped state by its
forward mass × S, which is exactly the raw mass of the complete paths through it — the
certified interval of the near-copy mass then loses only what was dropped, not every
prefix that was going to die in a dead end anyway (at ρ = 1 that is > 99 % of the mass).

Algorithm, in bounded memory and one pass over the edges each way (no edge is ever stored):

1. **Forward**: layer by layer, the distinct frontier states after each cell. One compiled
   kernel (:func:`_insert_children`) walks the parents in chunks of at most ``chunk_edges``
   candidate edges and interns every child into one open-addressing hash set (the counting
   step's, :func:`fscert.enumeration.kernels.intern_row`) that grows with the layer's
   *distinct* states (a power of two ≥ 2× them plus one chunk), never with its edges. The
   layer is then sorted lexicographically.
2. **Backward**: from the last layer (S = 1) down, the next layer's states are put in a hash
   set again and one kernel (:func:`_survival_of_parents`) walks every parent's transitions,
   finds each child by hashing, and sums S(parent) = Σ cond × S(child) in transition order.

Each layer's sorted states and S are written to a temporary directory and read back through
memory maps, so resident memory is about two layers and their hash set, whatever the number
of cells (the 1,000-image ρ = 1 graph's ~10^9 edges per cell are never materialised). The
directory is removed when the table is garbage-collected or :meth:`Survival.close` is called.
:class:`SurvivalTooLarge` is raised before a layer that would not fit in ``max_memory``.

Guarantee: the table holds every reachable frontier state and its exact S (float64 sums of
products, in a fixed order: the same value for the same inputs). Σ over the states after
any cell of (forward mass × S) = 1 − dead_end_mass (tested).
"""
from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

import numba
import numpy as np

from .enumeration.kernels import (_contexts, _table_slots, find_row, intern_row, lookup_row, radix_argsort,
                                  rehash_rows)
from .enumeration.tables import Tables
from .errors import FscertError
from .progress import Progress
from .resources import memory_limit, size_str
from .search import Layout, make_layout

#: candidate edges walked between two checks of the hash set's room (the set always has room
#: for one more chunk of new states)
CHUNK_EDGES = 4_000_000


class SurvivalTooLarge(FscertError):
    """A layer of the survival table does not fit in memory."""


@numba.njit(cache=True, inline="always")
def _child(states, s, e, tok, cword, cshift, clear, keep, child):
    """Write into ``child`` the state after placing token ``tok[e]`` on state ``s`` (masked)."""
    for w in range(child.shape[0]):
        child[w] = states[s, w]
    child[cword] = (child[cword] & clear) | (tok[e] << cshift)
    for w in range(child.shape[0]):
        child[w] &= keep[w]


@numba.njit(cache=True)
def _insert_children(states, ctx_N, lo, hi, ctx_ptr, tok, cell_slot, keep, per_word, m, table, rows, n_rows):
    """Intern the children of parents lo..hi−1 into the hash set; returns the new number of rows.

    The caller guarantees room: ``rows`` has n_rows + (the chunk's edges) rows and the set at
    least twice as many slots."""
    tokmask = (np.uint64(1) << np.uint64(m)) - np.uint64(1)
    cword = cell_slot // per_word
    cshift = (np.uint64(cell_slot) % np.uint64(per_word)) * np.uint64(m)
    clear = ~(tokmask << cshift)
    child = np.empty(states.shape[1], np.uint64)
    for s in range(lo, hi):
        c = ctx_N[s]
        if c < 0:
            continue
        for e in range(ctx_ptr[c], ctx_ptr[c + 1]):
            _child(states, s, e, tok, cword, cshift, clear, keep, child)
            _, new = intern_row(table, rows, n_rows, child)
            if new:
                n_rows += 1
    return n_rows


@numba.njit(cache=True)
def _survival_of_parents(states, ctx_N, ctx_ptr, tok, cond, cell_slot, keep, per_word, m, table, nxt, s_next, out):
    """S(parent) = Σ over its transitions (tokens ascending) of cond × S(child), the child found
    in the next layer through its hash set. Returns False when a child is missing (never)."""
    tokmask = (np.uint64(1) << np.uint64(m)) - np.uint64(1)
    cword = cell_slot // per_word
    cshift = (np.uint64(cell_slot) % np.uint64(per_word)) * np.uint64(m)
    clear = ~(tokmask << cshift)
    child = np.empty(states.shape[1], np.uint64)
    for s in range(states.shape[0]):
        c = ctx_N[s]
        acc = 0.0
        if c >= 0:
            for e in range(ctx_ptr[c], ctx_ptr[c + 1]):
                _child(states, s, e, tok, cword, cshift, clear, keep, child)
                idx = lookup_row(table, nxt, child)
                if idx < 0:
                    return False
                acc += cond[e] * s_next[idx]
        out[s] = acc
    return True


@numba.njit(cache=True)
def _find_rows(sorted_states, queries, keep):
    """Row of each query (masked with ``keep``) in the lexicographically sorted states, or −1."""
    n = queries.shape[0]
    nw = queries.shape[1]
    out = np.full(n, -1, np.int64)
    key = np.empty(nw, np.uint64)
    for q in range(n):
        for w in range(nw):
            key[w] = queries[q, w] & keep[w]
        out[q] = find_row(key, sorted_states)
    return out


@numba.njit(cache=True)
def _gallop_sorted(col, keys):
    """Position of each of the ascending ``keys`` in the ascending ``col``, or −1: an exponential
    search onward from the previous key's position, so a batch costs O(n log(gap)) probes, not
    O(n log len(col)) (the layers reach 2.4·10⁸ rows)."""
    n, m = keys.shape[0], col.shape[0]
    out = np.full(n, -1, np.int64)
    lo = 0
    for q in range(n):
        k = keys[q]
        step = 1
        hi = lo
        while hi < m and col[hi] < k:      # gallop: col[lo..hi) < k
            lo = hi + 1
            hi = lo + step
            step *= 2
        if hi > m:
            hi = m
        while lo < hi:                     # first position ≥ k in [lo, hi)
            mid = (lo + hi) // 2
            if col[mid] < k:
                lo = mid + 1
            else:
                hi = mid
        if lo < m and col[lo] == k:
            out[q] = lo
    return out


@numba.njit(cache=True)
def _project(states, first, last, fs, f0, per_word, m, keep0, nw0):
    """Search states (ring of fs slots) → states of the radius-0 layout (ring of f0 slots), cells first..last."""
    n = states.shape[0]
    mm = np.uint64(m)
    pw = np.uint64(per_word)
    tokmask = np.uint64((1 << m) - 1)
    out = np.zeros((n, nw0), np.uint64)
    for s in range(n):
        for c in range(first, last + 1):
            sl = np.uint64(c % fs)
            v = (states[s, (c % fs) // per_word] >> ((sl % pw) * mm)) & tokmask
            d = np.uint64(c % f0)
            out[s, (c % f0) // per_word] |= v << ((d % pw) * mm)
        for w in range(nw0):
            out[s, w] &= keep0[w]
    return out


def sort_rows(rows_NW: np.ndarray) -> np.ndarray:
    """Distinct rows in lexicographic order (word 0 first), as
    :func:`fscert.enumeration.kernels.find_row` searches them (no duplicate check: np.unique's
    hashing costs ~7× the sort)."""
    if rows_NW.shape[1] == 1:
        return np.sort(rows_NW[:, 0])[:, None]
    return rows_NW[np.lexsort(rows_NW.T[::-1])]


def _chunks(deg_N: np.ndarray, max_edges: int) -> list[tuple[int, int]]:
    """Consecutive parent ranges holding at most ``max_edges`` transitions each (one parent at least)."""
    out, lo, n = [], 0, len(deg_N)
    cum = np.cumsum(deg_N)
    while lo < n:
        base = cum[lo - 1] if lo else 0
        hi = int(np.searchsorted(cum, base + max_edges, side="right"))
        hi = max(hi, lo + 1)
        out.append((lo, hi))
        lo = hi
    return out


class Survival:
    """S of every reachable frontier state, per layer, held on disk (module docstring).

    ``of(i, states, layout)`` gives S of search states after cell i laid out by any search
    layout (they are projected onto the enumerator's frontier first)."""

    def __init__(self, tables: Tables, max_memory: int | None = None, chunk_edges: int = CHUNK_EDGES,
                 workdir: str | Path | None = None, progress: bool = False):
        self.tables = tables
        self.layout0: Layout = make_layout(tables, 0)
        self._dir = Path(tempfile.mkdtemp(prefix="fscert-survival-", dir=workdir))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self._dir), True)
        limit = memory_limit(max_memory)
        lay, m = self.layout0, tables.shape[0]
        n = lay.n_cells
        bar = Progress(total=2 * n, desc="survival table", unit="cell", show=progress, leave=False)
        states = np.zeros((1, lay.n_words), np.uint64)
        self.n_states = [1]
        self._save(0, states)
        for i, ct in enumerate(tables.cells):                      # 1. forward: distinct states per layer
            states = self._forward_layer(i, states, chunk_edges, limit)
            self.n_states.append(len(states))
            self._save(i + 1, states)
            bar.update(1)
            bar.set_postfix(states=len(states), refresh=False)
            if not len(states):
                break
        depth = len(self.n_states) - 1
        del states
        s_next = np.ones(self.n_states[-1]) if depth == n else np.zeros(self.n_states[-1])
        self._save_s(depth, s_next)
        for k in range(depth - 1, -1, -1):                          # 2. backward: S = Σ cond × S(child)
            ct = tables.cells[k]
            st, nxt = self._states(k), self._states(k + 1)
            need = 8 * _table_slots(len(nxt)) + 12 * len(st) + s_next.nbytes
            if need > limit:
                raise SurvivalTooLarge(f"the survival table's backward pass needs {size_str(need)} after cell {k} "
                                       f"({len(nxt):,} states); above the memory limit {size_str(limit)}")
            table = np.full(_table_slots(len(nxt)), -1, np.int64)
            rehash_rows(table, nxt, len(nxt))
            pre = (ct.pre_cells % lay.slots).astype(np.int64)
            ctx = _contexts(st, pre, ct.ctx_keys, lay.per_word, m)
            s_k = np.zeros(len(st))
            if not _survival_of_parents(st, ctx, ct.ctx_ptr, ct.tok, ct.cond, k % lay.slots, lay.keep_masks[k],
                                        lay.per_word, m, table, nxt, s_next, s_k):
                raise AssertionError("survival table: a child state is missing from the next layer")
            del table, ctx
            self._save_s(k, s_k)
            s_next = s_k
            bar.update(1)
        bar.close()
        self.total_states = int(sum(self.n_states))
        self.disk_bytes = int(sum(p.stat().st_size for p in self._dir.iterdir()))

    def _forward_layer(self, i: int, states: np.ndarray, chunk_edges: int, limit: int) -> np.ndarray:
        """The sorted distinct states after cell i, from the states before it (module docstring, 1)."""
        lay, ct, m = self.layout0, self.tables.cells[i], self.tables.shape[0]
        pre = (ct.pre_cells % lay.slots).astype(np.int64)
        ctx = _contexts(states, pre, ct.ctx_keys, lay.per_word, m)
        c = np.maximum(ctx, 0)
        deg = np.where(ctx >= 0, ct.ctx_ptr[c + 1] - ct.ctx_ptr[c], 0)
        del c
        held = states.nbytes + ctx.nbytes + deg.nbytes
        rows = np.empty((0, lay.n_words), np.uint64)
        table = np.full(16, -1, np.int64)
        n_rows = 0
        for lo, hi in _chunks(deg, chunk_edges):
            need = n_rows + int(deg[lo:hi].sum())
            if need > len(rows):                               # room for every child of the chunk
                cap = max(need, int(1.5 * len(rows)))
                slots = max(len(table), _table_slots(cap))
                total = held + rows.nbytes + 8 * lay.n_words * cap + 8 * slots
                if total > limit:
                    raise SurvivalTooLarge(
                        f"the survival table's layer after cell {i} needs more than {size_str(total)} "
                        f"({n_rows:,} states so far); above the memory limit {size_str(limit)}")
                grown = np.empty((cap, lay.n_words), np.uint64)
                grown[:n_rows] = rows[:n_rows]
                rows = grown
                del grown
                if slots > len(table):
                    del table
                    table = np.full(slots, -1, np.int64)
                    rehash_rows(table, rows, n_rows)
            n_rows = _insert_children(states, ctx, lo, hi, ct.ctx_ptr, ct.tok, i % lay.slots, lay.keep_masks[i],
                                      lay.per_word, m, table, rows, n_rows)
        del table, ctx, deg
        return sort_rows(rows[:n_rows])

    @classmethod
    def attach(cls, directory: str | Path, tables: Tables) -> "Survival":
        """The table another process built in ``directory`` (e.g. a Dask worker on the same
        machine or a shared filesystem), read through memory maps; its owner removes the files."""
        self = cls.__new__(cls)
        self.tables, self.layout0 = tables, make_layout(tables, 0)
        self._dir = Path(directory)
        self._finalizer = weakref.finalize(self, lambda: None)
        k = 0
        while (self._dir / f"s_{k}.npy").exists():
            k += 1
        if k == 0:
            raise FileNotFoundError(f"no survival table in {directory}")
        self.n_states = [len(np.load(self._dir / f"s_{j}.npy", mmap_mode="r")) for j in range(k)]
        self.total_states = int(sum(self.n_states))
        self.disk_bytes = int(sum(p.stat().st_size for p in self._dir.iterdir()))
        return self

    @property
    def directory(self) -> Path:
        return self._dir

    # ------------------------------------------------------------------ storage

    def _save(self, k: int, states: np.ndarray) -> None:
        np.save(self._dir / f"states_{k}.npy", states)

    def _save_s(self, k: int, s: np.ndarray) -> None:
        np.save(self._dir / f"s_{k}.npy", s)

    def _states(self, k: int) -> np.ndarray:
        return np.asarray(np.load(self._dir / f"states_{k}.npy", mmap_mode="r"))

    def _s(self, k: int) -> np.ndarray:
        return np.asarray(np.load(self._dir / f"s_{k}.npy", mmap_mode="r"))

    def close(self) -> None:
        """Remove the table's files now (they are also removed when the table is collected)."""
        self._finalizer()

    # ------------------------------------------------------------------ lookup

    def layer(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(sorted states, S) after k cells (k = 0: the empty prefix)."""
        if k >= len(self.n_states):
            return np.zeros((0, self.layout0.n_words), np.uint64), np.zeros(0)
        return self._states(k), self._s(k)

    def of(self, i: int, states: np.ndarray, layout: Layout) -> np.ndarray:
        """S of search states after cell i (laid out by ``layout``); the bound 1 for a state missing
        from the table (never: every search state is reachable)."""
        st, s = self.layer(i + 1)
        l0 = self.layout0
        q = _project(states, max(0, i - l0.slots + 1), i, layout.slots, l0.slots, layout.per_word,
                     layout.shape[0], l0.keep_masks[i], l0.n_words)
        if not len(st):
            idx = np.full(len(q), -1, np.int64)
        elif l0.n_words == 1:          # one word: search in sorted order (cache-friendly on a large layer)
            key = q[:, 0] & l0.keep_masks[i, 0]
            order = radix_argsort(key)
            idx = np.empty(len(q), np.int64)
            idx[order] = _gallop_sorted(st[:, 0], key[order])
        else:
            idx = _find_rows(st, q, l0.keep_masks[i])
        return np.where(idx >= 0, s[np.maximum(idx, 0)] if len(s) else 0.0, 1.0)   # not found (never): bound 1
