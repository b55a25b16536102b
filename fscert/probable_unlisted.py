"""What a capped listing of the most probable paths left out (for :mod:`fscert.probable`).

The top-k proof of :mod:`fscert.probable` lists at most ``cap`` paths of cost ≤ b, in
lexicographic order of their raster token sequence. When more exist, the listing stops at a
last path ℓ, and the proof needs q = the exact largest float64 raw probability among the
paths after ℓ that are not already known candidates X. This module computes it:

* :func:`top_after` — the kk largest path products after ℓ, by one forward pass keeping the kk
  largest prefix products per state (exact: float64 multiplication by a positive
  conditional is monotone);
* :func:`max_excluding` — the largest of them once X's own products are taken out by value;
* :func:`lex_after`, :func:`merge_lex` — lexicographic order on token rows (which known
  candidates come after ℓ; the union of two listings without duplicates).

Guarantee: q is exact, not a bound — the proof's "p_i > q" never accepts a candidate that an
unlisted path outranks.
"""
from __future__ import annotations

import numpy as np

from .search import Graph


def top_after(graph: Graph, last: np.ndarray, kk: int) -> np.ndarray:
    """The ``kk`` largest float64 raw probabilities (products of conditionals in raster order;
    a multiset, one value per path, decreasing) over the complete paths of ``graph`` that come
    after the token sequence ``last`` (a path of the graph) in lexicographic order. Exact.

    One forward pass keeping, per state, the kk largest products over the prefixes reaching it
    that already went above ``last`` (branched off with a larger token). fl(x·c) is
    non-decreasing in x for c > 0, so the kk largest path products through a state extend
    the kk largest prefix products there (a prefix outside them is matched by kk others at
    least as large along the same edges).
    """
    v = np.full((1, kk), -1.0)
    s = 0
    x = 1.0
    for d, lay in enumerate(graph.layers):
        parent = np.repeat(np.arange(len(lay.row_ptr) - 1), np.diff(lay.row_ptr))
        lo, hi = int(lay.row_ptr[s]), int(lay.row_ptr[s + 1])
        e = lo + int(np.searchsorted(lay.tok[lo:hi], last[d]))
        if e >= hi or lay.tok[e] != last[d]:
            raise RuntimeError("the last listed path is not a path of the search graph")
        pv = v[parent]                                              # (E, kk)
        on = pv >= 0.0
        ch = np.broadcast_to(lay.child[:, None], pv.shape)[on]
        val = (pv * lay.cond[:, None])[on]
        ch = np.concatenate([ch, lay.child[e + 1:hi]])              # branching off above ``last``
        val = np.concatenate([val, x * lay.cond[e + 1:hi]])
        nxt = np.full((lay.n_child, kk), -1.0)
        if len(val):
            order = np.lexsort((-val, ch))
            ch, val = ch[order], val[order]
            first = np.ones(len(ch), bool)
            first[1:] = ch[1:] != ch[:-1]
            starts = np.flatnonzero(first)
            rank = np.arange(len(ch)) - np.repeat(starts, np.diff(np.append(starts, len(ch))))
            keep = rank < kk
            nxt[ch[keep], rank[keep]] = val[keep]
        x = x * lay.cond[e]
        s = int(lay.child[e])
        v = nxt
    out = np.sort(v[v >= 0.0])[::-1]
    return out[:kk]


def max_excluding(values: np.ndarray, known: np.ndarray) -> float:
    """Largest of ``values`` (the top |known|+1 products of a set of paths, decreasing) once
    the products of ``known`` paths of that set are taken out (as a multiset, by value); −1
    if none is left."""
    rest = list(values.tolist())
    for y in known.tolist():
        if y in rest:
            rest.remove(y)
    return max(rest) if rest else -1.0


def lex_after(tok_KL: np.ndarray, last: np.ndarray) -> np.ndarray:
    """bool (K,): rows of ``tok_KL`` that come after ``last`` in lexicographic order."""
    diff = tok_KL != last[None, :]
    first = np.argmax(diff, axis=1)
    anydiff = diff.any(1)
    return anydiff & (tok_KL[np.arange(len(tok_KL)), first] > last[first])


def merge_lex(tok_a, raw_a, cost_a, tok_b, raw_b, cost_b):
    """Union of two path sets (token rows), in lexicographic order, without duplicates."""
    tok = np.concatenate([tok_a, tok_b])
    raw = np.concatenate([raw_a, raw_b])
    cost = np.concatenate([cost_a, cost_b])
    order = np.lexsort(tok.T[::-1])
    tok, raw, cost = tok[order], raw[order], cost[order]
    new = np.ones(len(tok), bool)
    new[1:] = (tok[1:] != tok[:-1]).any(1)
    return tok[new], raw[new], cost[new]
