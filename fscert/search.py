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
4. **Listing** (:func:`list_paths`): a depth-first walk over alive edges with the running cost
   g, entering an edge only when g + cost + h(child) ≤ B. Every step is on a path to at least
   one result, so the work is O(results × L) whatever the size of the graph. Tokens are walked
   in ascending order: results come in the enumerator's (lexicographic) order, and their
   probabilities are the same float64 products of conditionals in raster order.
5. **Counting without listing** (:func:`count_binned`): a dynamic program over (state, binned
   cost) with the cost of each edge rounded down (a superset of the results) and up (a subset),
   so the exact count and mass lie in the two results' interval; when both counts agree the
   count is exact. Counts are multi-precision (32-bit limbs), masses float64.

Guarantee. Every path whose cost is ≤ B passes every pruning test (g ≤ its prefix cost,
lb is admissible), so the pruned graph holds *all* of them, and :func:`list_paths` returns
exactly the paths of cost ≤ B (up to a relative slack of ``SLACK`` on float64 sums, which the
callers absorb by recomputing each result's figure exactly). The smallest cost h(root) is
the exact minimum over all reachable latents whenever it is ≤ B.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numba
import numpy as np

from .enumeration import Tables, _contexts
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
    keep = np.zeros((n, n_words), np.uint64)
    tokmask = np.uint64((1 << m) - 1)
    for i in range(n):
        for j in range(max(0, i - slots + 1), i + 1):
            if last_use[j] > i:
                s = j % slots
                keep[i, s // per_word] |= tokmask << np.uint64((s % per_word) * m)
    return Layout((m, h, w), rho, radius, slots, per_word, n_words, keep, blocks, wslots, windows)


# ----------------------------------------------------------------------------- compiled kernels


@numba.njit(cache=True)
def _find_context(key, ctx_keys):
    """Row of ``key`` in the lexicographically sorted ``ctx_keys``, or −1."""
    lo, hi = 0, ctx_keys.shape[0]
    wc = ctx_keys.shape[1]
    while lo < hi:
        mid = (lo + hi) // 2
        cmp = 0
        for w in range(wc):
            a = ctx_keys[mid, w]
            if a < key[w]:
                cmp = -1
                break
            if a > key[w]:
                cmp = 1
                break
        if cmp == 0:
            return mid
        if cmp < 0:
            lo = mid + 1
        else:
            hi = mid
    return -1


@numba.njit(cache=True)
def _expand(states, pre_slots, ctx_keys, ctx_ptr, tok, cell_slot, per_word, m):
    """Every transition of every state at one cell: (parent, pair, unmasked child words)."""
    n, nw = states.shape
    mm = np.uint64(m)
    pw = np.uint64(per_word)
    tokmask = np.uint64((1 << m) - 1)
    found = _contexts(states, pre_slots, ctx_keys, per_word, m)
    total = 0
    for s in range(n):
        if found[s] >= 0:
            total += ctx_ptr[found[s] + 1] - ctx_ptr[found[s]]
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
def _hash_of(row):
    h = np.uint64(0x9E3779B97F4A7C15)
    for w in range(row.shape[0]):
        x = row[w] ^ h
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h = x ^ (x >> np.uint64(31))
    return h


@numba.njit(cache=True)
def _merge(child, keep, gval):
    """Mask children with ``keep`` and merge equal states: (child id per edge, states, g_min)."""
    e_n, nw = child.shape
    tsize = 1
    while tsize < 2 * e_n + 2:
        tsize *= 2
    table = np.full(tsize, -1, np.int64)
    states = np.empty((e_n, nw), np.uint64)
    gmin = np.empty(e_n, np.float64)
    cid = np.empty(e_n, np.int64)
    row = np.empty(nw, np.uint64)
    nn = 0
    for e in range(e_n):
        for w in range(nw):
            row[w] = child[e, w] & keep[w]
        slot = np.int64(_hash_of(row) & np.uint64(tsize - 1))
        while True:
            c = table[slot]
            if c < 0:
                c = nn
                table[slot] = c
                for w in range(nw):
                    states[c, w] = row[w]
                gmin[c] = gval[e]
                nn += 1
                break
            same = True
            for w in range(nw):
                if states[c, w] != row[w]:
                    same = False
                    break
            if same:
                if gval[e] < gmin[c]:
                    gmin[c] = gval[e]
                break
            slot = (slot + 1) & (tsize - 1)
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


# ----------------------------------------------------------------------------- listing


@numba.njit(cache=True)
def _dfs(off_state, row_ptr, child, tok, cond, cost, off_h, h, limit, n_cells, max_out, out_tok, out_prob, out_cost):
    """Depth-first walk over alive edges; returns the number of results (max_out + 1: more)."""
    cur = np.zeros(n_cells, np.int64)
    end = np.zeros(n_cells, np.int64)
    pr = np.ones(n_cells + 1, np.float64)
    gs = np.zeros(n_cells + 1, np.float64)
    path = np.zeros(n_cells, np.uint64)
    cur[0] = row_ptr[off_state[0]]
    end[0] = row_ptr[off_state[0] + 1]
    d = 0
    k = 0
    while d >= 0:
        if cur[d] >= end[d]:
            d -= 1
            if d >= 0:
                cur[d] += 1
            continue
        e = cur[d]
        c2 = child[e]
        gnew = gs[d] + cost[e]
        if gnew + h[off_h[d + 1] + c2] > limit:
            cur[d] += 1
            continue
        path[d] = tok[e]
        pr[d + 1] = pr[d] * cond[e]
        gs[d + 1] = gnew
        if d == n_cells - 1:
            if k >= max_out:
                return k + 1
            for i in range(n_cells):
                out_tok[k, i] = path[i]
            out_prob[k] = pr[n_cells]
            out_cost[k] = gnew
            k += 1
            cur[d] += 1
        else:
            d += 1
            cur[d] = row_ptr[off_state[d] + c2]
            end[d] = row_ptr[off_state[d] + c2 + 1]
    return k


@dataclass
class Paths:
    """Paths of cost ≤ B in enumeration order: token ids per cell, raw probability, cost."""

    tok: np.ndarray       # uint64 (K, L)
    raw_prob: np.ndarray  # float64 (K,): product of conditionals in raster order
    cost: np.ndarray      # float64 (K,)
    overflow: bool        # True: more than max_out paths exist (only the first max_out are here)


def _flatten(graph: Graph):
    lays = graph.layers
    off_state = np.zeros(len(lays), np.int64)
    ptrs, n_edges, n_states = [], 0, 0
    for i, lay in enumerate(lays):
        off_state[i] = n_states
        n_states += len(lay.row_ptr) - 1
        ptrs.append(lay.row_ptr[:-1] + n_edges)
        n_edges += len(lay.child)
    row_ptr = np.append(np.concatenate(ptrs), n_edges).astype(np.int64)
    off_h = np.cumsum([0] + [len(x) for x in graph.h]).astype(np.int64)
    cat = lambda name, dt: np.concatenate([getattr(l, name) for l in lays]).astype(dt)  # noqa: E731
    return (off_state, row_ptr, cat("child", np.int64), cat("tok", np.uint64), cat("cond", np.float64),
            cat("cost", np.float64), off_h, np.concatenate(graph.h))


def list_paths(graph: Graph, budget: float | None = None, max_out: int = 100_000) -> Paths:
    """Every path of cost ≤ ``budget`` (default: the search's), up to ``max_out`` of them."""
    n = graph.layout.n_cells
    b = graph.budget if budget is None else min(budget, graph.budget)
    limit = b * (1.0 + SLACK) if math.isfinite(b) else math.inf
    if not graph.complete or graph.best > limit:
        return Paths(np.zeros((0, n), np.uint64), np.zeros(0), np.zeros(0), False)
    cap = max(0, int(max_out))
    out_tok = np.zeros((min(cap, 1 << 16), n), np.uint64)
    while True:
        out_prob = np.zeros(len(out_tok))
        out_cost = np.zeros(len(out_tok))
        k = _dfs(*_flatten(graph), limit, n, len(out_tok), out_tok, out_prob, out_cost)
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
    """Count and raw mass of the paths of cost ≤ B, bracketed (module docstring, step 5)."""

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
