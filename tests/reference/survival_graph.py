"""Reference survival table: the whole unpruned frontier graph kept in memory (every layer's
edges), then one backward sum-product over it. Obviously correct, and memory-hungry: the
library's :class:`fscert.survival.Survival` keeps no edge and spills layers to disk."""
from __future__ import annotations

import math

import numpy as np

from fscert.search import make_layout, search


def survival_by_graph(tables) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(states after k cells, S of each) for k = 0..L, from the full graph's backward pass."""
    layout0 = make_layout(tables, 0)
    graph = search(tables, layout0, lambda i, p, pa, c: np.zeros(len(p)), math.inf, max_edges=10**9,
                   keep_states=True)
    s_next = np.ones(len(graph.states[-1])) if graph.complete else np.zeros(len(graph.states[-1]))
    out = [s_next]
    for lay in reversed(graph.layers):
        parent = np.repeat(np.arange(len(lay.row_ptr) - 1), np.diff(lay.row_ptr))
        s_next = np.bincount(parent, weights=lay.cond * s_next[lay.child], minlength=len(lay.row_ptr) - 1)
        out.append(s_next)
    out.reverse()
    return graph.states, out
