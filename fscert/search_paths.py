"""Listing and counting the paths of cost ≤ B of a pruned search graph (DESIGN §6).

:func:`fscert.search.search` leaves a layered graph whose alive edges are exactly those on
some path of cost ≤ B, with g (the smallest prefix cost) and h (the exact smallest cost to the
end) per state. From it:

* **Listing** (:func:`list_paths`): the compiled depth-first walk shared with the enumerator
  (:func:`fscert.enumeration.walk.walk_paths`) over the alive edges with the running cost g,
  entering an edge only when g + cost + h(child) ≤ B. Every step is on a path to at least
  one result, so the work is O(results × L) whatever the size of the graph. Tokens are walked
  in ascending order: results come in the enumerator's (lexicographic) order, and their
  probabilities are the same float64 products of conditionals in raster order.
* **Counting without listing** (:func:`count_binned`): a dynamic program over (state, binned
  cost) with the cost of each edge rounded down (a superset of the results) and up (a subset),
  so the exact count and mass lie in the two results' interval; when both counts agree the
  count is exact. Counts are multi-precision (32-bit limbs), masses float64.

Guarantee. :func:`list_paths` returns exactly the paths of cost ≤ B (up to a relative slack of
``SLACK`` on float64 sums, which the callers absorb by recomputing each result's figure
exactly); :func:`count_binned`'s interval holds the exact count and raw mass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .enumeration.walk import stack_layers, walk_paths
from .search import SLACK, Graph, SearchTooLarge

#: the walk writes tokens (not latents) when its latent output has no rows
_NO_LATENTS = np.zeros((0, 1, 1, 1), np.int8)


# ----------------------------------------------------------------------------- listing


@dataclass
class Paths:
    """Paths of cost ≤ B in enumeration order: token ids per cell, raw probability, cost."""

    tok: np.ndarray       # uint64 (K, L)
    raw_prob: np.ndarray  # float64 (K,): product of conditionals in raster order
    cost: np.ndarray      # float64 (K,)
    overflow: bool        # True: more than max_out paths exist (only the first max_out are here)


def _flatten(graph: Graph) -> tuple[np.ndarray, ...]:
    """The graph's layers as the walk's one CSR (:func:`fscert.enumeration.walk.stack_layers`),
    with h of every layer stacked alike."""
    lays = graph.layers
    state_off, row_ptr = stack_layers([lay.row_ptr for lay in lays])
    h_off = np.cumsum([0] + [len(x) for x in graph.h]).astype(np.int64)
    cat = lambda name, dt: np.concatenate([getattr(l, name) for l in lays]).astype(dt)  # noqa: E731
    return (state_off, row_ptr, cat("child", np.int64), cat("tok", np.uint64), cat("cond", np.float64),
            cat("cost", np.float64), h_off, np.concatenate(graph.h))


def list_paths(graph: Graph, budget: float | None = None, max_out: int = 100_000) -> Paths:
    """Every path of cost ≤ ``budget`` (default: the search's), up to ``max_out`` of them."""
    n = graph.layout.n_cells
    m, _, w = graph.layout.shape
    b = graph.budget if budget is None else min(budget, graph.budget)
    limit = b * (1.0 + SLACK) if math.isfinite(b) else math.inf
    if not graph.complete or graph.best > limit:
        return Paths(np.zeros((0, n), np.uint64), np.zeros(0), np.zeros(0), False)
    cap = max(0, int(max_out))
    out_tok = np.zeros((min(cap, 1 << 16), n), np.uint64)
    while True:
        out_prob = np.zeros(len(out_tok))
        out_cost = np.zeros(len(out_tok))
        k = walk_paths(*_flatten(graph), limit, len(out_tok), m, w, out_tok, _NO_LATENTS, out_prob, out_cost)
        if k <= len(out_tok) or len(out_tok) >= cap:
            break
        out_tok = np.zeros((min(cap, 8 * len(out_tok)), n), np.uint64)
    over = k > len(out_tok)
    k = min(k, len(out_tok))
    return Paths(out_tok[:k], out_prob[:k], out_cost[:k], over)


def tokens_to_latents(tok_KL: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Token ids per cell (K, L) → int8 ±1 latents (K, M, H, W) (channel 0 = most significant bit)."""
    m, h, w = shape
    bits = (tok_KL.astype(np.int64)[:, :, None] >> np.arange(m - 1, -1, -1)) & 1
    return np.ascontiguousarray((2 * bits - 1).astype(np.int8).reshape(len(tok_KL), h, w, m).transpose(0, 3, 1, 2))


# ----------------------------------------------------------------------------- counting without listing


@dataclass
class BinnedCount:
    """Count and raw mass of the paths of cost ≤ B, bracketed (module docstring)."""

    count_low: int
    count_high: int
    mass_low: float
    mass_high: float
    bins: int

    @property
    def count_exact(self) -> bool:
        return self.count_low == self.count_high


def _carry(limbs: np.ndarray) -> np.ndarray:
    out = limbs.copy()
    for j in range(out.shape[1] - 1):
        out[:, j + 1] += out[:, j] >> np.uint64(32)
        out[:, j] &= np.uint64(0xFFFFFFFF)
    if (out[:, -1] >> np.uint64(32)).any():
        raise OverflowError("limb overflow in a binned count")
    return out


def _binned_pass(graph: Graph, bins_e: list[np.ndarray], hb: list[np.ndarray], k_max: int, n_limbs: int,
                 max_entries: int) -> tuple[int, float]:
    st = np.zeros(1, np.int64)
    acc = np.zeros(1, np.int64)
    cnt = np.zeros((1, n_limbs), np.uint64)
    cnt[0, 0] = 1
    mass = np.ones(1)
    for i, lay in enumerate(graph.layers):
        deg = lay.row_ptr[st + 1] - lay.row_ptr[st]
        rep = np.repeat(np.arange(len(st)), deg)
        first = np.repeat(lay.row_ptr[st], deg)
        e = first + (np.arange(len(rep)) - np.repeat(np.cumsum(deg) - deg, deg))
        ch = lay.child[e]
        a2 = acc[rep] + bins_e[i][e]
        ok = a2 + hb[i + 1][ch] <= k_max
        rep, e, ch, a2 = rep[ok], e[ok], ch[ok], a2[ok]
        if len(rep) > max_entries:
            raise SearchTooLarge(i, len(st), len(rep))
        order = np.lexsort((a2, ch))
        rep, e, ch, a2 = rep[order], e[order], ch[order], a2[order]
        new = np.ones(len(ch), bool)
        new[1:] = (ch[1:] != ch[:-1]) | (a2[1:] != a2[:-1])
        starts = np.flatnonzero(new)
        if len(starts) == 0:
            return 0, 0.0
        cnt = _carry(np.add.reduceat(cnt[rep], starts, axis=0))
        mass = np.add.reduceat(mass[rep] * lay.cond[e], starts)
        st, acc = ch[starts], a2[starts]
    total = sum(int(v) << (32 * j) for j, v in enumerate(_carry(cnt.sum(0, keepdims=True))[0].tolist()))
    return total, float(mass.sum())


def count_binned(graph: Graph, budget: float, n_limbs: int, bins: int = 4096,
                 max_entries: int = 30_000_000) -> BinnedCount:
    """Certified [low, high] count and raw mass of the paths of cost ≤ ``budget`` ≤ the search's."""
    if not graph.complete or graph.best > budget * (1 + SLACK):
        return BinnedCount(0, 0, 0.0, 0.0, bins)
    delta = budget / bins if budget > 0 else 1.0
    res = []
    for rounding, k_max in ((np.ceil, math.floor(budget * (1 - SLACK) / delta)),
                            (np.floor, math.floor(budget * (1 + SLACK) / delta))):
        scale = (1 + SLACK) if rounding is np.ceil else (1 - SLACK)
        bins_e = [rounding(lay.cost * scale / delta).astype(np.int64) for lay in graph.layers]
        hb = _binned_h(graph, bins_e)
        res.append(_binned_pass(graph, bins_e, hb, k_max, n_limbs, max_entries))
    (c_lo, m_lo), (c_hi, m_hi) = res
    return BinnedCount(c_lo, c_hi, m_lo, m_hi, bins)


def _binned_h(graph: Graph, bins_e: list[np.ndarray]) -> list[np.ndarray]:
    big = np.iinfo(np.int64).max // 4
    h = [np.full(len(gi), big, np.int64) for gi in graph.g]
    h[-1][:] = 0
    for i in range(len(graph.layers) - 1, -1, -1):
        lay = graph.layers[i]
        via = np.minimum(bins_e[i] + h[i + 1][lay.child], big)
        parent = np.repeat(np.arange(len(lay.row_ptr) - 1), np.diff(lay.row_ptr))
        np.minimum.at(h[i], parent, via)
    return h
