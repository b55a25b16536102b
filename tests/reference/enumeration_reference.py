"""Plain-Python / networkx reference enumerators for DESIGN §6 (self-checked in
tests/test_enumeration_reference.py).

Deliberately independent of fscert.enumeration and fscert.patches: windows are read off
the grid cell by cell, tables are dicts of tuples, probabilities are Python floats.
The numba enumerator is tested against these in test_enumeration.py, and benchmarked
against :func:`ref_dfs` in tests/benchmarks/test_bench_enumeration.py.
"""
from __future__ import annotations

import itertools

import networkx as nx
import numpy as np


def ref_pre_cells(i: int, h: int, w: int, rho: int) -> list[int | None]:
    """Pre(i) in raster order (ρ rows above, full width, then ρ cells to the left); None = padding."""
    y, x = divmod(i, w)
    out: list[int | None] = []
    for dy in range(-rho, 1):
        for dx in range(-rho, rho + 1 if dy < 0 else 0):
            yy, xx = y + dy, x + dx
            out.append(yy * w + xx if 0 <= yy < h and 0 <= xx < w else None)
    return out


def _cell_tokens(z: np.ndarray) -> list[tuple[int, ...]]:
    m, h, w = z.shape
    return [tuple(int(z[c, y, x]) for c in range(m)) for y in range(h) for x in range(w)]


def _ctx(toks: list, pre: list[int | None], m: int) -> tuple:
    return tuple(toks[j] if j is not None else (0,) * m for j in pre)


def ref_tables(E: np.ndarray, counts, rho: int) -> list[dict[tuple, dict[tuple, int]]]:
    """Per cell: {Pre context: {token: weighted count}} (DESIGN §6.3)."""
    k, m, h, w = E.shape
    counts = [1] * k if counts is None else [int(c) for c in counts]
    tabs: list[dict] = [dict() for _ in range(h * w)]
    for r in range(k):
        toks = _cell_tokens(E[r])
        for i in range(h * w):
            ctx = _ctx(toks, ref_pre_cells(i, h, w, rho), m)
            d = tabs[i].setdefault(ctx, {})
            d[toks[i]] = d.get(toks[i], 0) + counts[r]
    return tabs


def _cond(tab: dict[tuple, int], tok: tuple) -> float:
    return tab[tok] / sum(tab.values())


def ref_brute(E: np.ndarray, counts, rho: int) -> dict[bytes, float]:
    """Every latent of {±1}^(M·H·W) checked for reachability: {int8 bytes: product of conditionals}."""
    _, m, h, w = E.shape
    tabs = ref_tables(E, counts, rho)
    out: dict[bytes, float] = {}
    for bits in itertools.product((-1, 1), repeat=m * h * w):
        z = np.array(bits, np.int8).reshape(m, h, w)
        toks = _cell_tokens(z)
        p = 1.0
        for i in range(h * w):
            t = tabs[i].get(_ctx(toks, ref_pre_cells(i, h, w, rho), m))
            if t is None or toks[i] not in t:
                break
            p = p * _cond(t, toks[i])
        else:
            out[z.tobytes()] = p
    return out


def ref_dfs(E: np.ndarray, counts, rho: int) -> tuple[list[tuple[np.ndarray, float]], float]:
    """Depth-first stitching (tokens ascending by token index): listed (latent, raw prob) and dead-end mass."""
    _, m, h, w = E.shape
    tabs = ref_tables(E, counts, rho)
    pres = [ref_pre_cells(i, h, w, rho) for i in range(h * w)]
    weights = [1 << (m - 1 - c) for c in range(m)]

    def index(tok):
        return sum(wt for wt, v in zip(weights, tok) if v > 0)

    listed: list[tuple[np.ndarray, float]] = []
    dead = [0.0]
    toks: list = []

    def walk(i: int, p: float) -> None:
        if i == h * w:
            z = np.array(toks, np.int8).reshape(h, w, m).transpose(2, 0, 1)
            listed.append((np.ascontiguousarray(z), p))
            return
        t = tabs[i].get(_ctx(toks, pres[i], m))
        if t is None:
            dead[0] += p
            return
        for tok in sorted(t, key=index):
            toks.append(tok)
            walk(i + 1, p * _cond(t, tok))
            toks.pop()

    walk(0, 1.0)
    return listed, dead[0]


def ref_state_dag(E: np.ndarray, counts, rho: int) -> nx.MultiDiGraph:
    """networkx DAG over (cell, frontier tokens) states; paths 'start' → 'end' = reachable latents."""
    _, m, h, w = E.shape
    tabs = ref_tables(E, counts, rho)
    n = h * w
    f = min(rho * w + rho, n)
    g = nx.MultiDiGraph()   # parallel edges: with ρ = 0 every token leads to the same empty frontier
    layer = {(): None}
    g.add_node((0, ()))
    for i in range(n):
        pre = ref_pre_cells(i, h, w, rho)
        nxt: dict = {}
        for front in layer:
            # front holds the tokens of cells max(0, i-f) .. i-1
            first = i - len(front)
            toks = {first + j: t for j, t in enumerate(front)}
            ctx = tuple(toks[j] if j is not None else (0,) * m for j in pre)
            t = tabs[i].get(ctx)
            if t is None:
                continue
            for tok in t:
                new = (front + (tok,))[-f:] if f else ()
                g.add_edge((i, front), (i + 1, new), tok=tok)
                nxt[new] = None
        layer = nxt
    for front in layer:
        g.add_edge((n, front), "end")
    return g


def ref_count_networkx(E: np.ndarray, counts, rho: int) -> int:
    """Number of start→end paths in :func:`ref_state_dag` (Python ints, topological order)."""
    g = ref_state_dag(E, counts, rho)
    if "end" not in g:
        return 0
    paths = {(0, ()): 1}
    for node in nx.topological_sort(g):
        c = paths.get(node, 0)
        for _, succ in g.out_edges(node):
            paths[succ] = paths.get(succ, 0) + c
    return paths.get("end", 0)


def random_empirical(seed: int, m: int, h: int, w: int, n_base: int, trials: int, flip: float,
                     with_counts: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """A small E: Rademacher samples of a few random base latents, optional multiplicities."""
    rng = np.random.default_rng(seed)
    base = rng.choice(np.array([-1, 1], np.int8), size=(n_base, m, h, w))
    E = np.concatenate([np.where(rng.random(base.shape) < flip, -base, base) for _ in range(trials)]).astype(np.int8)
    counts = rng.integers(1, 4, size=len(E)).astype(np.int64) if with_counts else None
    return E, counts
