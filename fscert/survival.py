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

Algorithm, in bounded memory:

1. **Forward**: layer by layer, the distinct frontier states after each cell. A layer is
   expanded in chunks of parents (at most ``chunk_edges`` candidate edges each); every chunk's
   children are merged, and the union of the chunks is sorted lexicographically.
2. **Backward**: from the last layer (S = 1) down, each layer is expanded again chunk by
   chunk, every child is found in the next layer's sorted states by binary search, and
   S(parent) = Σ cond × S(child). No edge is kept between the passes.

Each layer's sorted states and S are written to a temporary directory and read back through
memory maps, so resident memory is about two layers plus one chunk, whatever the number of
cells (the 1,000-image ρ = 1 graph's edges alone exceed the machine's memory). The
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

from .enumeration.kernels import _contexts, find_row
from .enumeration.tables import Tables
from .errors import FscertError
from .progress import Progress
from .resources import memory_limit, size_str
from .search import Layout, _expand, _merge, make_layout

#: candidate edges expanded at once (each costs about 8·(words + 2) bytes)
CHUNK_EDGES = 4_000_000


class SurvivalTooLarge(FscertError):
    """A layer of the survival table does not fit in memory."""


def _degrees(states, pre_slots, ctx_keys, ctx_ptr, per_word, m) -> np.ndarray:
    """Number of transitions of each state at one cell."""
    ctx_N = _contexts(states, pre_slots, ctx_keys, per_word, m).astype(np.int64)
    ok = ctx_N >= 0
    c = np.maximum(ctx_N, 0)
    return np.where(ok, ctx_ptr[c + 1] - ctx_ptr[c], 0)


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


def sort_unique(rows_NW: np.ndarray) -> np.ndarray:
    """Distinct rows in lexicographic order (word 0 first), as
    :func:`fscert.enumeration.kernels.find_row` searches them."""
    if len(rows_NW) == 0:
        return rows_NW
    if rows_NW.shape[1] == 1:
        return np.unique(rows_NW[:, 0])[:, None]
    order = np.lexsort(rows_NW.T[::-1])
    rows_NW = rows_NW[order]
    new = np.ones(len(rows_NW), bool)
    new[1:] = (rows_NW[1:] != rows_NW[:-1]).any(axis=1)
    return rows_NW[new]


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
            pre = (ct.pre_cells % lay.slots).astype(np.int64)
            deg = _degrees(states, pre, ct.ctx_keys, ct.ctx_ptr, lay.per_word, m)
            parts, held, compact = [], 0, 0
            for lo, hi in _chunks(deg, chunk_edges):
                _, _, child = _expand(states[lo:hi], pre, ct.ctx_keys, ct.ctx_ptr, ct.tok, i % lay.slots,
                                      lay.per_word, m)
                _, uniq, _ = _merge(child, lay.keep_masks[i], np.zeros(len(child)))
                del child
                parts.append(uniq)
                held += uniq.nbytes
                if 3 * held + states.nbytes > limit:
                    raise SurvivalTooLarge(
                        f"the survival table's layer after cell {i} needs more than {size_str(3 * held)} "
                        f"({sum(len(p) for p in parts):,} states so far); above the memory limit {size_str(limit)}")
                if len(parts) > 1 and held > 2 * compact + (64 << 20):
                    parts = [sort_unique(np.concatenate(parts))]        # keep the union compact
                    held = compact = parts[0].nbytes
            states = sort_unique(np.concatenate(parts)) if parts else np.zeros((0, lay.n_words), np.uint64)
            del parts
            self.n_states.append(len(states))
            self._save(i + 1, states)
            bar.update(1)
            bar.set_postfix(states=len(states), refresh=False)
            if not len(states):
                break
        depth = len(self.n_states) - 1
        s_next = np.ones(self.n_states[-1]) if depth == n else np.zeros(self.n_states[-1])
        self._save_s(depth, s_next)
        for k in range(depth - 1, -1, -1):                          # 2. backward: S = Σ cond × S(child)
            ct = tables.cells[k]
            st = self._states(k)
            nxt = self._states(k + 1)
            pre = (ct.pre_cells % lay.slots).astype(np.int64)
            deg = _degrees(st, pre, ct.ctx_keys, ct.ctx_ptr, lay.per_word, m)
            s_k = np.zeros(len(st))
            for lo, hi in _chunks(deg, chunk_edges):
                parent, pair, child = _expand(st[lo:hi], pre, ct.ctx_keys, ct.ctx_ptr, ct.tok, k % lay.slots,
                                              lay.per_word, m)
                idx = _find_rows(nxt, child, lay.keep_masks[k])
                del child
                if (idx < 0).any():
                    raise AssertionError("survival table: a child state is missing from the next layer")
                s_k[lo:hi] += np.bincount(parent, weights=ct.cond[pair] * s_next[idx], minlength=hi - lo)
            self._save_s(k, s_k)
            s_next = s_k
            bar.update(1)
        bar.close()
        self.total_states = int(sum(self.n_states))
        self.disk_bytes = int(sum(p.stat().st_size for p in self._dir.iterdir()))

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
        idx = _find_rows(st, q, l0.keep_masks[i]) if len(st) else np.full(len(q), -1, np.int64)
        return np.where(idx >= 0, s[np.maximum(idx, 0)] if len(s) else 0.0, 1.0)   # not found (never): bound 1
