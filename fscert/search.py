"""Bounded-cost search over the compatible-patch graph, without listing it (DESIGN §6).

A reachable latent is a path through the layered graph of frontier states (one layer per
cell, raster order; :mod:`fscert.enumeration`). Many certificate questions are "which paths
have an additive cost ≤ B?":

* near-copies of a training image x_t (:mod:`fscert.nearcopy`): the decoder is local, so the
  squared error of the decoded image to x_t is a sum of per-block terms, each known as soon
  as the R×R window of its block is placed;
* the most probable outputs (:mod:`fscert.probable`): −log P is a sum of −log conditionals.

Algorithm (the guarantee is at the end).

1. **State.** After cell i the search keeps the last ``slots`` = max(ρW+ρ, (R−1)(W+1)+1)
   cells (ring buffer, M bits per cell, as in the enumerator): those the next contexts
   (Pre, ρ) *and* the unfinished blocks' windows (R×R) still read. Slots neither reads again
   are zeroed so that equivalent states merge. When ρ ≥ R−1 this is the enumerator's frontier.
2. **Forward pass with pruning.** Layer by layer, every state expands through the pairs
   (Pre, token) of E at the next cell (exactly the enumerator's transitions). The caller's
   ``cost`` callback prices each candidate edge from the child's cells (e.g. the error of the
   blocks that complete at this cell); an edge survives iff
   g(parent) + cost + lb[i] ≤ B, where g(s) is the smallest cost of any surviving prefix that
   reaches s (min-plus dynamic programming, so states still merge) and lb[i] is an admissible
   lower bound on the cost of the cells after i. Surviving children are merged by state.
3. **Backward pass.** h(s) = the exact smallest cost from s to the last cell over surviving
   edges. An edge is *alive* iff g(parent) + cost + h(child) ≤ B.
4. **Listing and counting** the paths of cost ≤ B (:mod:`fscert.search_paths`): a walk over
   the alive edges, or a binned dynamic program when there are too many to list.

Guarantee. Every path whose cost is ≤ B passes every pruning test (g ≤ its prefix cost,
lb is admissible), so the pruned graph holds *all* of them (up to a relative slack of
``SLACK`` on float64 sums, which only ever keeps more). The smallest cost h(root) is the exact
minimum over all reachable latents whenever it is ≤ B.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numba
import numpy as np

from .enumeration.kernels import _contexts, _n_edges, _table_slots, intern_row
from .enumeration.tables import Tables, keep_masks
from .errors import FscertError

#: relative slack on float64 cost sums (pruning keeps paths up to B·(1 + SLACK))
SLACK = 1e-9


# ----------------------------------------------------------------------------- state layout


@dataclass
class Layout:
    """Ring-buffer layout of the search state and the decoder blocks that complete at each cell.

    ``blocks[i]`` lists the blocks (y, x) whose R×R window is complete once cell i is placed;
    ``window_slots[i]`` (n_blocks, Q) holds the ring slots of each window's in-grid cells in
    raster order (−1 pads to Q = R²); ``windows[i]`` the same cells as raster indices.
    """

    shape: tuple[int, int, int]
    rho: int
    radius: int                     # r = (R − 1) / 2
    slots: int
    per_word: int
    n_words: int
    keep_masks: np.ndarray          # uint64 (L, n_words)
    blocks: list[list[tuple[int, int]]] = field(default_factory=list)
    window_slots: list[np.ndarray] = field(default_factory=list)
    windows: list[list[list[int]]] = field(default_factory=list)

    @property
    def n_cells(self) -> int:
        return self.shape[1] * self.shape[2]

    @property
    def key_words(self) -> int:
        """uint64 words of a packed window key (R² tokens of M bits)."""
        q = (2 * self.radius + 1) ** 2
        return max(1, -(-q // self.per_word))


def window_cells(y: int, x: int, h: int, w: int, r: int) -> list[int]:
    """Raster indices of the in-grid cells of the (2r+1)² window centred on (y, x), raster order."""
    return [yy * w + xx for yy in range(max(0, y - r), min(h, y + r + 1))
            for xx in range(max(0, x - r), min(w, x + r + 1))]


def completion_cell(y: int, x: int, h: int, w: int, r: int) -> int:
    """The cell after which block (y, x)'s whole window is placed (its last cell in raster order)."""
    return min(h - 1, y + r) * w + min(w - 1, x + r)


def make_layout(tables: Tables, radius: int) -> Layout:
    m, h, w = tables.shape
    rho, n = tables.rho, h * w
    slots = max(1, min(n, max(rho * w + rho, 2 * radius * (w + 1) + 1)))
    per_word = 64 // m
    n_words = -(-slots // per_word)
    last_use = np.full(n, -1, np.int64)
    for i, ct in enumerate(tables.cells):
        last_use[ct.pre_cells] = np.maximum(last_use[ct.pre_cells], i)
    blocks: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    windows: list[list[list[int]]] = [[] for _ in range(n)]
    for y in range(h):
        for x in range(w):
            i = completion_cell(y, x, h, w, radius)
            cells = window_cells(y, x, h, w, radius)
            blocks[i].append((y, x))
            windows[i].append(cells)
            last_use[cells] = np.maximum(last_use[cells], i)
    q = (2 * radius + 1) ** 2
    wslots = []
    for i in range(n):
        a = np.full((len(blocks[i]), q), -1, np.int64)
        for b, cells in enumerate(windows[i]):
            a[b, :len(cells)] = np.asarray(cells) % slots
        wslots.append(a)
    keep = keep_masks(last_use, slots, per_word, n_words, m)
    return Layout((m, h, w), rho, radius, slots, per_word, n_words, keep, blocks, wslots, windows)


# ----------------------------------------------------------------------------- compiled kernels


@numba.njit(cache=True)
def _expand(states, pre_slots, ctx_keys, ctx_ptr, tok, cell_slot, per_word, m):
    """Every transition of every state at one cell: (parent, pair, unmasked child words)."""
    n, nw = states.shape
    mm = np.uint64(m)
    pw = np.uint64(per_word)
    tokmask = np.uint64((1 << m) - 1)
    found = _contexts(states, pre_slots, ctx_keys, per_word, m)
    total = _n_edges(found, ctx_ptr)
    parent = np.empty(total, np.int64)
    pair = np.empty(total, np.int64)
    child = np.empty((total, nw), np.uint64)
    cs = np.uint64(cell_slot)
    cword = cell_slot // per_word
    cshift = (cs % pw) * mm
    clear = ~(tokmask << cshift)
    k = 0
    for s in range(n):
        f = found[s]
        if f < 0:
            continue
        for e in range(ctx_ptr[f], ctx_ptr[f + 1]):
            for w in range(nw):
                child[k, w] = states[s, w]
            child[k, cword] = (child[k, cword] & clear) | (tok[e] << cshift)
            parent[k] = s
            pair[k] = e
            k += 1
    return parent, pair, child


@numba.njit(cache=True)
def _window_keys(child, wslots, per_word, m, kw):
    """Packed window keys (E, n_blocks, kw) of the blocks completing at this cell."""
    e_n = child.shape[0]
    nb, q = wslots.shape
    mm = np.uint64(m)
    pw = np.uint64(per_word)
    tokmask = np.uint64((1 << m) - 1)
    out = np.zeros((e_n, nb, kw), np.uint64)
    for e in range(e_n):
        for b in range(nb):
            for j in range(q):
                sl = wslots[b, j]
                if sl < 0:
                    break
                v = (child[e, sl // per_word] >> ((np.uint64(sl) % pw) * mm)) & tokmask
                uj = np.uint64(j)
                out[e, b, j // per_word] |= v << ((uj % pw) * mm)
    return out


@numba.njit(cache=True)
def _merge(child, keep, gval):
    """Mask children with ``keep`` and merge equal states: (child id per edge, states, g_min)."""
    e_n, nw = child.shape
    table = np.full(_table_slots(e_n + 1), -1, np.int64)
    states = np.empty((e_n, nw), np.uint64)
    gmin = np.empty(e_n, np.float64)
    cid = np.empty(e_n, np.int64)
    row = np.empty(nw, np.uint64)
    nn = 0
    for e in range(e_n):
        for w in range(nw):
            row[w] = child[e, w] & keep[w]
        c, new = intern_row(table, states, nn, row)
        if new:
            gmin[c] = gval[e]
            nn += 1
        elif gval[e] < gmin[c]:
            gmin[c] = gval[e]
        cid[e] = c
    return cid, states[:nn], gmin[:nn]


# ----------------------------------------------------------------------------- the pruned graph


@dataclass
class Layer:
    """Surviving edges into cell i's layer, sorted by (parent, token)."""

    row_ptr: np.ndarray     # int64 (n_parent + 1,)
    child: np.ndarray       # int64 (E,)
    tok: np.ndarray         # uint64 (E,)
    cond: np.ndarray        # float64 (E,)
    cost: np.ndarray        # float64 (E,)
    n_child: int


@dataclass
class Graph:
    """The pruned layered graph of one search, with g (forward) and h (backward) per state."""

    layout: Layout
    budget: float
    layers: list[Layer]
    g: list[np.ndarray]             # g[i]: per state of layer i (layer 0 = the empty prefix)
    h: list[np.ndarray]             # h[i]: exact smallest cost to the end, inf where none
    max_states: int
    complete: bool                  # False: every prefix was pruned before the last cell
    dropped_mass: float = 0.0       # raw mass of complete paths through the states the cap dropped (upper bound)
    states: list[np.ndarray] | None = None   # keep_states: the states after each cell (index 0: the root)

    @property
    def best(self) -> float:
        """Smallest cost of a complete path within the budget (inf if there is none)."""
        return float(self.h[0][0]) if self.complete else math.inf


#: cost callback: (cell i, parent index per edge, pair index per edge, unmasked child words) → cost per edge
CostFn = Callable[[int, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def search(tables: Tables, layout: Layout, cost: CostFn, budget: float, lower_bound: np.ndarray | None = None,
           max_edges: int = 20_000_000, max_states: int | None = None, survival=None,
           keep_states: bool = False) -> Graph:
    """Forward pruned pass then backward pass (module docstring, steps 1–3).

    ``lower_bound[i]`` (L,): admissible bound on the cost of cells i+1..L−1 (default 0).
    Raises :class:`SearchTooLarge` when a layer would hold more than ``max_edges`` candidate
    edges (the caller then reports a bound instead of an exact figure).

    ``max_states``: where a layer holds more states, only the ``max_states`` of largest weight
    are kept and the others' weights are added to ``dropped_mass``. A state's weight is its
    forward mass (the probability of reaching it) times, with ``survival``, the exact
    probability of completing from it without a dead end (:class:`fscert.survival.Survival`), i.e. the raw
    mass of all complete paths through it; without ``survival`` the forward mass alone (a
    looser bound). The paths found are then a subset of the paths of cost ≤ B, and the raw
    mass of the missing ones is at most ``dropped_mass``: results become certified intervals."""
    m = layout.shape[0]
    n = layout.n_cells
    lb = np.zeros(n) if lower_bound is None else np.asarray(lower_bound, np.float64)
    limit = budget * (1.0 + SLACK) if math.isfinite(budget) else math.inf
    states = np.zeros((1, layout.n_words), np.uint64)
    g = [np.zeros(1)]
    mass = np.ones(1)
    dropped = 0.0
    layers: list[Layer] = []
    widest = 1
    kept: list[np.ndarray] | None = [states] if keep_states else None
    for i, ct in enumerate(tables.cells):
        pre_slots = (ct.pre_cells % layout.slots).astype(np.int64)
        parent, pair, child = _expand(states, pre_slots, ct.ctx_keys, ct.ctx_ptr, ct.tok, i % layout.slots,
                                      layout.per_word, m)
        if len(parent) > max_edges:
            raise SearchTooLarge(i, len(states), len(parent))
        c = cost(i, parent, pair, child) if len(parent) else np.zeros(0)
        gval = g[-1][parent] + c
        ok = gval + lb[i] <= limit
        parent, pair, child, c, gval = parent[ok], pair[ok], child[ok], c[ok], gval[ok]
        cid, states, gmin = _merge(child, layout.keep_masks[i], gval)
        mass_c = np.bincount(cid, weights=mass[parent] * ct.cond[pair], minlength=len(states))
        surv = survival.of(i, states, layout) if survival is not None and (
            getattr(survival, "ready", False) or (max_states is not None and len(states) > max_states)) else None
        if surv is not None and (surv == 0).any():      # states that always end in a dead end: no output
            alive = surv > 0
            new_id = np.cumsum(alive) - 1
            ok = alive[cid]
            parent, pair, c, cid = parent[ok], pair[ok], c[ok], new_id[cid[ok]]
            states, gmin, mass_c, surv = states[alive], gmin[alive], mass_c[alive], surv[alive]
        if max_states is not None and len(states) > max_states:
            weight = mass_c * surv if surv is not None else mass_c
            keep_s = np.zeros(len(states), bool)
            keep_s[np.argpartition(-weight, max_states - 1)[:max_states]] = True
            dropped += float(weight[~keep_s].sum())
            new_id = np.cumsum(keep_s) - 1
            ok = keep_s[cid]
            parent, pair, c, cid = parent[ok], pair[ok], c[ok], new_id[cid[ok]]
            states, gmin, mass_c = states[keep_s], gmin[keep_s], mass_c[keep_s]
        mass = mass_c
        order = np.lexsort((ct.tok[pair], parent))       # by parent, tokens ascending
        deg = np.bincount(parent, minlength=len(g[-1]))
        layers.append(Layer(np.concatenate([[0], np.cumsum(deg)]).astype(np.int64), cid[order],
                            ct.tok[pair[order]], ct.cond[pair[order]], c[order], len(states)))
        g.append(gmin)
        if kept is not None:
            kept.append(states)
        widest = max(widest, len(states))
        if len(states) == 0:
            break
    complete = len(layers) == n and len(states) > 0
    h = _backward(layers, g, complete)
    return Graph(layout, budget, layers, g, h, widest, complete, dropped, kept)


def _backward(layers: list[Layer], g: list[np.ndarray], complete: bool) -> list[np.ndarray]:
    h = [np.full(len(gi), math.inf) for gi in g]
    if not complete:
        return h
    h[-1][:] = 0.0
    for i in range(len(layers) - 1, -1, -1):
        lay = layers[i]
        via = lay.cost + h[i + 1][lay.child]
        parent = np.repeat(np.arange(len(lay.row_ptr) - 1), np.diff(lay.row_ptr))
        np.minimum.at(h[i], parent, via)
    return h


class SearchTooLarge(FscertError):
    """A layer of the pruned search exceeds the edge budget."""

    def __init__(self, cell: int, states: int, edges: int):
        self.cell, self.states, self.edges = cell, states, edges
        super().__init__(f"the pruned search holds {edges:,} candidate edges at cell {cell} "
                         f"({states:,} states); above the search's limit")
