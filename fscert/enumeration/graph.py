"""The compatible-patch graph of E as a networkx graph, and its GraphML export (DESIGN §6.5).

One node per distinct (cell, Pre, z_i) of E; an edge where consecutive choices agree on the
cells their windows share. This is the graph the paper's exhaustive search (A.3.6) walks; the
library never builds it to count or list (:mod:`fscert.enumeration.count` works on frontier
states instead), it is an export for inspection. Guarantee: the graph attribute
``reachable_count`` is the exact count of :func:`fscert.enumeration.count.count_reachable`.
"""
from __future__ import annotations

import numpy as np

from ..fileio import atomic_path
from ..patches import pre_offsets, token_to_index, tokens
from .count import count_reachable
from .tables import check_empirical


def patch_graph(latents: np.ndarray, rho: int, counts: np.ndarray | None = None):
    """The compatible-patch graph (DESIGN §6.5) as a ``networkx.DiGraph``.

    One node per distinct (cell, Pre, z_i) of E (id ``"i:pre:token"``, attributes cell, y, x,
    pre, token, count, cond); an edge from a choice at cell i to one at cell i+1 where the two
    windows (Pre ∪ {cell}) agree on every cell they share. Paths through the graph are locally
    consistent stitchings; the reachable latents are the paths that also agree on the whole
    frontier, counted exactly by :func:`count_reachable` (graph attribute ``reachable_count``).
    """
    import networkx as nx          # ~0.3 s to import; only this export needs it

    z, w = check_empirical(latents, counts, rho)
    _, m, h, wd = z.shape
    tid_KL = token_to_index(tokens(z)).astype(np.int64)
    offs = pre_offsets(rho)
    g = nx.DiGraph(rho=int(rho), shape=f"{m}x{h}x{wd}")
    prev: dict[tuple, list[str]] | None = None
    prev_cells: list[int] = []
    for i in range(h * wd):
        y, x = divmod(i, wd)
        pre = [(y + dy) * wd + (x + dx) for dy, dx in offs if 0 <= y + dy < h and 0 <= x + dx < wd]
        win = pre + [i]
        rows: dict[tuple, int] = {}
        for r in range(len(z)):
            key = tuple(int(t) for t in tid_KL[r, win])
            rows[key] = rows.get(key, 0) + int(w[r])
        ctx_tot: dict[tuple, int] = {}
        for key, c in rows.items():
            ctx_tot[key[:-1]] = ctx_tot.get(key[:-1], 0) + c
        shared = [c for c in win if c in set(prev_cells)]
        for key in sorted(rows):
            node = f"{i}:{'.'.join(map(str, key[:-1]))}:{key[-1]}"
            g.add_node(node, cell=i, y=y, x=x, pre=" ".join(map(str, key[:-1])), token=key[-1],
                       count=rows[key], cond=rows[key] / ctx_tot[key[:-1]])
            vals = dict(zip(win, key))
            sk = tuple(vals[c] for c in shared)
            if prev is not None:
                for src in prev.get(sk, []):
                    g.add_edge(src, node)
        # index this cell's nodes by the values the next window shares with them
        if i + 1 < h * wd:
            y2, x2 = divmod(i + 1, wd)
            nxt = [(y2 + dy) * wd + (x2 + dx) for dy, dx in offs if 0 <= y2 + dy < h and 0 <= x2 + dx < wd] + [i + 1]
            nshared = [c for c in nxt if c in set(win)]
            prev = {}
            for key in sorted(rows):
                vals = dict(zip(win, key))
                node = f"{i}:{'.'.join(map(str, key[:-1]))}:{key[-1]}"
                prev.setdefault(tuple(vals[c] for c in nshared), []).append(node)
            prev_cells = win
    g.graph["reachable_count"] = str(count_reachable(z, rho, w).count)
    return g


def write_graphml(path, latents: np.ndarray, rho: int, counts: np.ndarray | None = None) -> None:
    """Write :func:`patch_graph` as GraphML, atomically."""
    import networkx as nx          # ~0.3 s to import; only this export needs it

    g = patch_graph(latents, rho, counts)
    with atomic_path(path) as tmp:
        nx.write_graphml(g, tmp)
