"""Exhaustive enumeration of an empirical FS-LAR generator (DESIGN §6; paper §4.2, A.3.6).

The empirical set E (drawn latents with multiplicities ``counts``) defines, at every cell i
(raster order, DESIGN §4), the conditional

    P_E(z_i = k | Pre_i = z°) = count(i, z°, k) / count(i, z°)                    (DESIGN §6.3)

A latent is **reachable** iff every pair (Pre_i, z_i) occurs in E at cell i; its probability
is the product of the conditionals. A partial stitching whose next context never occurs in E
is a **dead end** (the sampler restarts); ``dead_end_mass`` is the total probability of dead
ends, and listed probabilities are divided by (1 − dead_end_mass) so that they sum to 1.

Algorithm. After cells 0..i−1 are placed, only the **frontier** — the last F = ρ·W + ρ cells —
can still be seen by a future Pre. A frontier state is stored bit-packed in a ring buffer
(cell j in slot j mod F, M bits per slot; slots no future Pre reads are zeroed so that
equivalent states merge). Each cell is one **pre-pass** (:func:`_contexts`: every parent
state's context row, by binary search; their token counts add up to the exact number of
candidate edges, :func:`candidate_edges`) and one compiled **step** (:func:`_step`, numba)
mapping the states of layer i to those of layer i+1 through an open-addressing hash table.
The step's buffers are sized by that exact count (children ≤ candidate edges; the table a
power of two ≥ 2× it), not by states × the largest degree, and the child layer is trimmed
to its size. A state carries

* the exact number of prefixes as little-endian 32-bit limbs (multi-precision, so counts far
  beyond 2^64 are exact; the layer after cell i has as many limbs as its bound needs, from
  the number of distinct tokens per cell),
* the forward probability mass (float64); states whose context is not in E add their mass
  to ``dead_end_mass``.

Memory guard and prefix split. Before each step :func:`forward` estimates its memory from
the candidate-edge count (child rows, hash table or trimmed copy, stored edges) plus what is
held, against ``max_memory`` (default ¾ of the machine's memory, as in
:mod:`fscert.resources`). When a counting step does not fit, the layer is cut into chunks
of prefix states (sorted so that states which merge soon share a chunk) and each chunk is
continued through the remaining cells on its own, depth-first (:func:`count_prefixes`);
a chunk may split again later. Every reachable latent passes through exactly one state of
the split layer, so the chunks' counts (limbs), dead-end and reachable masses add up to the
unsplit result — counts exactly, masses up to float rounding. Memory stays bounded by the
held layers plus one chunk's work; the price is time, since states that would have merged
across chunks are computed once per chunk. When even one prefix state does not fit, the
pass stops with a one-line :class:`FscertError` naming the cell. The listing pass is never
split: it refuses in the same way.

Counting never lists. Listing (when the exact count is at most ``max_images``) re-runs the
forward pass storing its edges, marks the states that have at least one completion
(backward pass), and expands only those: the listing is the depth-first walk with tokens in
ascending order, i.e. latents in lexicographic order of their raster token sequence —
deterministic. Probabilities are float64 products of the conditionals in raster order, with
log-probabilities summed alongside.

:func:`patch_graph` exports the compatible-patch graph of DESIGN §6.5 (networkx).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np

from .errors import FscertError
from .patches import pre_offsets, token_to_index, tokens

MAX_CHANNELS = 32
LIMB_BITS = 32
#: bytes per stored edge (parent int64, child int64, token uint64, conditional float64)
EDGE_BYTES = 32


# ----------------------------------------------------------------------------- tables


@dataclass
class CellTable:
    """The distinct (Pre, token) pairs of E at one cell, with their weights (DESIGN §6.3).

    ``ctx_keys`` (n_ctx, Wc) uint64: contexts bit-packed (token ids of the in-grid Pre cells,
    M bits each), sorted lexicographically; tokens of context c are ``tok[ctx_ptr[c]:ctx_ptr[c+1]]``
    (ascending) with weights ``cnt`` and conditionals ``cond = cnt / Σ cnt``.
    """

    pre_cells: np.ndarray      # int64 (P,) raster index of every in-grid Pre cell, Pre order
    ctx_keys: np.ndarray       # uint64 (n_ctx, Wc)
    ctx_ptr: np.ndarray        # int64 (n_ctx + 1,)
    tok: np.ndarray            # uint64 (n_pairs,) token ids (token_to_index)
    cnt: np.ndarray            # int64 (n_pairs,)
    cond: np.ndarray           # float64 (n_pairs,)

    @property
    def n_contexts(self) -> int:
        return len(self.ctx_ptr) - 1


@dataclass
class Tables:
    """Everything the enumerator needs from E at observation range ρ."""

    shape: tuple[int, int, int]        # (M, H, W)
    rho: int
    frontier: int                      # F: ring-buffer slots
    per_word: int                      # slots per uint64 word
    n_words: int                       # words per frontier state
    keep_masks: np.ndarray             # uint64 (L, n_words): slots still visible after placing cell i
    cells: list[CellTable] = field(default_factory=list)

    @property
    def n_cells(self) -> int:
        return self.shape[1] * self.shape[2]

    def limbs_after(self) -> np.ndarray:
        """int64 (L,): 32-bit limbs that hold any prefix count after cell i — the count after
        cell i is at most Π_{j≤i} #distinct tokens at j — plus one limb of margin (≥ 2,
        non-decreasing; the layer after cell i is stored with this many limbs). Computed once."""
        cached = self.__dict__.get("_limbs_after")
        if cached is None or len(cached) != len(self.cells):
            bits = np.cumsum([math.log2(max(1, len(np.unique(c.tok)))) for c in self.cells])
            cached = self.__dict__["_limbs_after"] = (bits // LIMB_BITS).astype(np.int64) + 2
        return cached

    @property
    def n_limbs(self) -> int:
        return int(self.limbs_after()[-1]) if self.cells else 2


def _pack(tid_NP: np.ndarray, m: int, per_word: int) -> np.ndarray:
    """Pack token ids (N, P) into uint64 words (N, max(1, ceil(P / per_word))), M bits each."""
    n, p = tid_NP.shape
    out = np.zeros((n, max(1, -(-p // per_word))), np.uint64)
    for j in range(p):
        out[:, j // per_word] |= tid_NP[:, j].astype(np.uint64) << np.uint64((j % per_word) * m)
    return out


def check_empirical(latents: np.ndarray, counts: np.ndarray | None, rho: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate E (±1 int8 (K, M, H, W), counts ≥ 1, ρ ≥ 0); return (latents, counts int64)."""
    from .latents import validate_latents

    if not isinstance(rho, (int, np.integer)) or rho < 0:
        raise FscertError(f"ρ must be an integer ≥ 0, got {rho}")
    z = validate_latents(latents, "empirical set")
    if z.shape[1] > MAX_CHANNELS:
        raise FscertError(f"enumeration supports at most {MAX_CHANNELS} latent channels, got {z.shape[1]}")
    if counts is None:
        w = np.ones(len(z), np.int64)
    else:
        w = np.asarray(counts)
        if w.shape != (len(z),) or not np.issubdtype(w.dtype, np.integer):
            raise FscertError(f"counts must be integers of shape ({len(z)},), got {w.dtype} {w.shape}")
        if (w < 1).any():
            raise FscertError(f"counts must be ≥ 1, found {int(w.min())}")
        w = w.astype(np.int64)
    return z, w


def build_tables(latents: np.ndarray, rho: int, counts: np.ndarray | None = None) -> Tables:
    """Tables of (cell, Pre, token) → count over E, position-anchored (DESIGN §4, §6.3)."""
    z, w = check_empirical(latents, counts, rho)
    _, m, h, wd = z.shape
    n_cells = h * wd
    tid_KL = token_to_index(tokens(z)).astype(np.int64)
    frontier = max(1, min(rho * wd + rho, n_cells))
    per_word = 64 // m
    n_words = -(-frontier // per_word)
    offs = pre_offsets(rho)
    last_use = np.full(n_cells, -1, np.int64)          # last cell whose Pre reads cell j
    cells: list[CellTable] = []
    for i in range(n_cells):
        y, x = divmod(i, wd)
        pre = [(y + dy) * wd + (x + dx) for dy, dx in offs if 0 <= y + dy < h and 0 <= x + dx < wd]
        pre_cells = np.asarray(pre, np.int64)
        last_use[pre_cells] = i
        keys = _pack(tid_KL[:, pre_cells], m, per_word)
        tok = tid_KL[:, i]
        order = np.lexsort((tok,) + tuple(keys[:, c] for c in range(keys.shape[1] - 1, -1, -1)))
        keys, tok, wt = keys[order], tok[order], w[order]
        new_pair = np.ones(len(tok), bool)
        new_pair[1:] = (keys[1:] != keys[:-1]).any(1) | (tok[1:] != tok[:-1])
        starts = np.flatnonzero(new_pair)
        pair_cnt = np.add.reduceat(wt, starts)
        pair_keys, pair_tok = keys[starts], tok[starts]
        new_ctx = np.ones(len(starts), bool)
        new_ctx[1:] = (pair_keys[1:] != pair_keys[:-1]).any(1)
        ctx_starts = np.flatnonzero(new_ctx)
        ctx_ptr = np.append(ctx_starts, len(starts)).astype(np.int64)
        ctx_tot = np.add.reduceat(pair_cnt, ctx_starts)
        cond = pair_cnt / np.repeat(ctx_tot, np.diff(ctx_ptr)).astype(np.float64)
        cells.append(CellTable(pre_cells, np.ascontiguousarray(pair_keys[ctx_starts]), ctx_ptr,
                               pair_tok.astype(np.uint64), pair_cnt.astype(np.int64), cond))
    keep = np.zeros((n_cells, n_words), np.uint64)
    tokmask = np.uint64((1 << m) - 1)
    for i in range(n_cells):
        for j in range(max(0, i - frontier + 1), i + 1):
            if last_use[j] > i:
                s = j % frontier
                keep[i, s // per_word] |= tokmask << np.uint64((s % per_word) * m)
    return Tables((m, h, wd), int(rho), frontier, per_word, n_words, keep, cells)


# ----------------------------------------------------------------------------- compiled kernels


@numba.njit(cache=True)
def _contexts(states, pre_slots, ctx_keys, per_word, m):
    """int32 (N,): the row of ``ctx_keys`` holding each state's Pre context, −1 where E never has it.

    The pre-pass of one cell: it reads every parent state once (binary search over the sorted
    context keys) and allocates nothing but its output.
    """
    n = states.shape[0]
    n_ctx, wc = ctx_keys.shape
    n_pre = pre_slots.shape[0]
    mm = np.uint64(m)
    pw = np.uint64(per_word)
    tokmask = (np.uint64(1) << mm) - np.uint64(1)
    key = np.zeros(max(wc, 1), np.uint64)
    ctx_N = np.empty(n, np.int32)
    for s in range(n):
        for w in range(wc):
            key[w] = np.uint64(0)
        for p in range(n_pre):
            sl = np.uint64(pre_slots[p])
            v = (states[s, pre_slots[p] // per_word] >> ((sl % pw) * mm)) & tokmask
            up = np.uint64(p)
            key[p // per_word] |= v << ((up % pw) * mm)
        # binary search for the context (rows of ctx_keys are sorted lexicographically)
        lo = 0
        hi = n_ctx
        found = -1
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
                found = mid
                break
            if cmp < 0:
                lo = mid + 1
            else:
                hi = mid
        ctx_N[s] = found
    return ctx_N


@numba.njit(cache=True)
def _n_edges(ctx_N, ctx_ptr):
    """Exact number of candidate edges of a layer: Σ over states of the tokens of their context."""
    total = 0
    for s in range(ctx_N.shape[0]):
        c = ctx_N[s]
        if c >= 0:
            total += ctx_ptr[c + 1] - ctx_ptr[c]
    return total


@numba.njit(cache=True)
def _table_slots(n_edges):
    """Hash-table slots for a layer of ``n_edges`` candidate edges: a power of two ≥ 2·n_edges (≥ 16)."""
    tsize = 16
    while tsize < 2 * n_edges:
        tsize *= 2
    return tsize


@numba.njit(cache=True)
def _step_bytes(n_edges, row_bytes, store):
    """Bytes one step allocates for ``n_edges`` candidate edges (children ≤ edges), child rows of
    ``row_bytes``: the child buffers, then the larger of the hash table (freed when the kernel
    returns) and the trimmed copy of the children; with ``store`` the four edge arrays."""
    rows = n_edges * row_bytes
    return rows + max(8 * _table_slots(n_edges), rows) + (EDGE_BYTES * n_edges if store else 0)


@numba.njit(cache=True)
def _run_end(ctx_N, ctx_ptr, row_bytes, start, budget):
    """End of the longest run of states from ``start`` whose step needs at most ``budget`` bytes
    (:func:`_step_bytes` of the run's candidate edges plus its int32 context indices); at
    least one state."""
    n = ctx_N.shape[0]
    p = 0
    e = 0
    for s in range(start, n):
        c = ctx_N[s]
        d = ctx_ptr[c + 1] - ctx_ptr[c] if c >= 0 else 0
        if p > 0 and 4 * (p + 1) + _step_bytes(e + d, row_bytes, False) > budget:
            return s
        p += 1
        e += d
    return n


@numba.njit(cache=True)
def _merge_keys(states, slots_K, per_word, m):
    """uint64 (N,): the tokens of frontier slots ``slots_K`` (most significant first, as many
    as fit in 64 bits) of every state — a sort key that puts states which merge soon together."""
    n = states.shape[0]
    mm = np.uint64(m)
    pw = np.uint64(per_word)
    tokmask = (np.uint64(1) << mm) - np.uint64(1)
    k = min(slots_K.shape[0], 64 // m)
    key_N = np.zeros(n, np.uint64)
    for s in range(n):
        v = np.uint64(0)
        for j in range(k):
            sl = np.uint64(slots_K[j])
            v = (v << mm) | ((states[s, slots_K[j] // per_word] >> ((sl % pw) * mm)) & tokmask)
        key_N[s] = v
    return key_N


@numba.njit(cache=True)
def _step(states, limbs, mass, ctx_N, cap, nl_out, cell_slot, ctx_ptr, tok, cond, keep, per_word, m, store):
    """One raster cell of the forward pass: layer-i states → layer-(i+1) states.

    ``ctx_N`` is the pre-pass (:func:`_contexts`) and ``cap`` its exact candidate-edge count
    (:func:`_n_edges`): the child buffers have ``cap`` rows, the hash table a power of two
    ≥ 2·cap slots (allocated here, freed on return). Returns (new_states, new_limbs, new_mass,
    n_children, dead_mass, e_parent, e_child, e_tok, e_cond): the child buffers untrimmed
    (the first ``n_children`` rows are the layer), the edge arrays (exactly ``cap`` long) empty
    unless ``store``. Children are numbered in order of first appearance (parents in order,
    tokens ascending), so the result is deterministic. Children get ``nl_out`` limbs (the
    bound on the count after this cell); parents may have fewer.
    """
    n, nw = states.shape
    nl = limbs.shape[1]
    mm = np.uint64(m)
    pw = np.uint64(per_word)
    tokmask = (np.uint64(1) << mm) - np.uint64(1)
    low32 = np.uint64(0xFFFFFFFF)
    tsize = _table_slots(cap)
    hmask = np.uint64(tsize - 1)
    table = np.full(tsize, -1, np.int64)
    new_states = np.empty((cap, nw), np.uint64)
    new_limbs = np.empty((cap, nl_out), np.uint64)
    new_mass = np.zeros(cap, np.float64)
    ecap = cap if store else 0
    e_parent = np.empty(ecap, np.int64)
    e_child = np.empty(ecap, np.int64)
    e_tok = np.empty(ecap, np.uint64)
    e_cond = np.empty(ecap, np.float64)
    child = np.empty(nw, np.uint64)
    cs = np.uint64(cell_slot)
    cword = cell_slot // per_word
    cshift = (cs % pw) * mm
    clear = ~(tokmask << cshift)
    dead = 0.0
    nn = 0
    ne = 0
    for s in range(n):
        found = ctx_N[s]
        if found < 0:
            dead += mass[s]
            continue
        for e in range(ctx_ptr[found], ctx_ptr[found + 1]):
            for w in range(nw):
                child[w] = states[s, w]
            child[cword] = (child[cword] & clear) | (tok[e] << cshift)
            h = np.uint64(0x9E3779B97F4A7C15)
            for w in range(nw):
                child[w] &= keep[w]
                x = child[w] ^ h
                x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
                x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
                h = x ^ (x >> np.uint64(31))
            slot = np.int64(h & hmask)
            while True:
                cid = table[slot]
                if cid < 0:
                    cid = nn
                    table[slot] = cid
                    for w in range(nw):
                        new_states[cid, w] = child[w]
                    for l in range(nl_out):
                        new_limbs[cid, l] = np.uint64(0)
                    nn += 1
                    break
                same = True
                for w in range(nw):
                    if new_states[cid, w] != child[w]:
                        same = False
                        break
                if same:
                    break
                slot = (slot + 1) & (tsize - 1)
            for l in range(nl):
                new_limbs[cid, l] += limbs[s, l]
            new_mass[cid] += mass[s] * cond[e]
            if store:
                e_parent[ne] = s
                e_child[ne] = cid
                e_tok[ne] = tok[e]
                e_cond[ne] = cond[e]
                ne += 1
    overflow = False
    for c in range(nn):
        carry = np.uint64(0)
        for l in range(nl_out):
            v = new_limbs[c, l] + carry
            new_limbs[c, l] = v & low32
            carry = v >> np.uint64(32)
        if carry != np.uint64(0):
            overflow = True
    if overflow:
        raise OverflowError("limb overflow in the reachable count")
    return new_states, new_limbs, new_mass, nn, dead, e_parent, e_child, e_tok, e_cond


# ----------------------------------------------------------------------------- forward pass


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
    from .resources import size_str

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


def _sort_for_split(tables: Tables, i: int, states_NW: np.ndarray, limbs_NL: np.ndarray, mass_N: np.ndarray,
                    spare: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Layer i reordered by :func:`_merge_slots` (a copy), or None when the copy and the sort's
    two index arrays would not fit in ``spare`` bytes. Reordering never changes a count."""
    if len(states_NW) < 2 or _layer_bytes(states_NW, limbs_NL, mass_N) + 24 * len(states_NW) > spare:
        return None
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
                   bar=None, depth: int = 0) -> CountResult:
    """Count the completions of the given prefix states of layer ``cell`` (cells 0..cell−1 placed).

    ``states_NW``/``limbs_NL``/``mass_N`` are rows of a layer of the forward pass (any subset:
    a chunk). The result is the *partial* CountResult of those prefixes over cells
    cell..L−1: the exact number of complete latents through them, the dead-end mass met from
    cell ``cell`` on, and their reachable mass. Every path has exactly one state at layer
    ``cell``, so the partial results of a partition of a layer add up exactly to the
    layer's (plus the dead-end mass before it): chunks are independent, and a distributed
    engine (e.g. Dask) can run one task per chunk, sum counts, dead-end and reachable masses
    and take the max of ``max_states``.

    Before each cell the step's memory is estimated from the exact candidate-edge count
    (:func:`candidate_edges`); when ``held`` plus the estimate exceeds ``max_memory`` (bytes;
    None: ¾ of the machine's memory) the layer is split into prefix chunks run depth-first
    (:func:`_split_layer`). With ``can_abort`` the call may instead give up before
    allocating (internal :class:`_DoesNotFit`) so that the caller retries smaller chunks:
    it does so when the layer to split would take more than ``NEST_FRACTION`` of its room.
    ``held``: bytes the caller keeps alive meanwhile, including the given arrays (default:
    their size). ``bar``/``depth``: progress display (tqdm) and nesting depth.
    """
    from .resources import memory_limit

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
        need = held + own + ctx_N.nbytes + int(_step_bytes(n_edges, _child_row_bytes(tables, i), False))
        if need > limit:
            if can_abort and own + ctx_N.nbytes > NEST_FRACTION * (limit - held):
                raise _DoesNotFit(need)
            del ctx_N
            srt = _sort_for_split(tables, i, states_NW, limbs_NL, mass_N, limit - held - own)
            if srt is not None:       # the sorted copy replaces the layer this call owns, else adds to it
                own = own or _layer_bytes(*srt)
                states_NW, limbs_NL, mass_N = srt
                del srt
            ctx_N = layer_contexts(tables, i, states_NW)
            part = _split_layer(tables, i, states_NW, limbs_NL, mass_N, ctx_N, limit, held + own, can_abort,
                                bar, depth)
            if bar is not None and depth == 0:
                bar.update(tables.n_cells - i)
            part.dead_end_mass += dead
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
                 ctx_N: np.ndarray, limit: int, held: int, can_abort: bool, bar, depth: int) -> CountResult:
    """Count layer i chunk by chunk (depth-first) and add up the partial results.

    Chunks are consecutive runs of prefix states whose first step fits in a byte budget
    (initially half the room beside ``held``). A chunk of several states may give up before
    a later layer it cannot fit; it is then retried with the budget scaled by
    min(½, 0.8 · room / need), so a give-up costs recomputation, never memory. After a chunk
    succeeds the budget grows back (at most ×2) towards 0.8 · room / its peak. A chunk of
    one state cannot shrink: it splits again at a later layer, or gives up to an enclosing
    chunk (``can_abort``), or — at the top — refuses with the one-line error.
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
                                  depth=depth + 1)
        except _DoesNotFit as err:
            if not multi:
                raise
            budget = int(budget * min(0.5, 0.8 * room / (err.need - held_c)))
            total.retries += 1
            continue
        _accumulate(total, part)
        if part.peak_bytes > held_c:
            budget = int(min(room, budget * min(2.0, 0.8 * room / (part.peak_bytes - held_c))))
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


def forward(tables: Tables, store: bool = False, progress: bool = False, max_memory: int | None = None) -> CountResult:
    """Run the frontier DP over all cells; see the module docstring.

    ``max_memory`` (bytes; None: ¾ of the machine's memory, :func:`fscert.resources.memory_limit`)
    bounds every step: counting splits a layer that does not fit into prefix chunks
    (:func:`count_prefixes`), listing (``store``) refuses with a one-line :class:`FscertError`.
    """
    from .progress import Progress
    from .resources import memory_limit

    limit = memory_limit(max_memory)
    with Progress(total=tables.n_cells, desc="enumerate" if store else "count", unit="cell",
                  show=progress, leave=False) as bar:
        if store:
            return _forward_listing(tables, limit, bar)
        return count_prefixes(tables, 0, *_root(tables), max_memory=limit, bar=bar)


def count_reachable(latents: np.ndarray, rho: int, counts: np.ndarray | None = None,
                    progress: bool = False, max_memory: int | None = None) -> CountResult:
    """Exact number of reachable latents and the dead-end mass, without listing (DESIGN §6.5).

    ``max_memory`` bytes (None: ¾ of the machine's memory) bound the counting pass, which
    splits layers into prefix chunks to stay below it (:func:`forward`)."""
    return forward(build_tables(latents, rho, counts), store=False, progress=progress, max_memory=max_memory)


# ----------------------------------------------------------------------------- listing


@dataclass
class Listing:
    """Every reachable latent with its exact probability (DESIGN §6.4–6.6)."""

    latents: np.ndarray       # int8 (K, M, H, W), lexicographic in the raster token sequence
    prob: np.ndarray          # float64 (K,): product of conditionals / (1 − dead_end_mass)
    log_prob: np.ndarray      # float64 (K,): Σ log conditionals − log(1 − dead_end_mass)
    raw_prob: np.ndarray      # float64 (K,): product of conditionals (not renormalised)
    count: int
    dead_end_mass: float
    max_states: int


class TooManyImages(FscertError):
    """The exact count exceeds ``max_images``; carries the count."""

    def __init__(self, count: int, max_images: int):
        self.count = count
        self.max_images = max_images
        super().__init__(
            f"{count} reachable latents exceed --max-images {max_images}; nothing was listed. "
            "Use fewer trials, a smaller τ (fewer flips), a larger ρ, --count-only, or raise --max-images")


@numba.njit(cache=True)
def _dfs(state_off, row_ptr, child, tok, cond, count, m, h, w, out, prob, logp):
    """Depth-first walk over the alive edges (tokens ascending): writes latents, products, log-probs."""
    n_cells = h * w
    cur = np.zeros(n_cells, np.int64)
    end = np.zeros(n_cells, np.int64)
    pr = np.ones(n_cells + 1, np.float64)
    lp = np.zeros(n_cells + 1, np.float64)
    path = np.zeros(n_cells, np.int64)
    cur[0] = row_ptr[state_off[0]]
    end[0] = row_ptr[state_off[0] + 1]
    d = 0
    k = 0
    while d >= 0:
        if cur[d] >= end[d]:
            d -= 1
            if d >= 0:
                cur[d] += 1
            continue
        e = cur[d]
        path[d] = np.int64(tok[e])
        pr[d + 1] = pr[d] * cond[e]
        lp[d + 1] = lp[d] + np.log(cond[e])
        if d == n_cells - 1:
            if k < count:
                for i in range(n_cells):
                    y = i // w
                    x = i - y * w
                    for c in range(m):
                        out[k, c, y, x] = np.int8(2 * ((path[i] >> (m - 1 - c)) & 1) - 1)
                prob[k] = pr[n_cells]
                logp[k] = lp[n_cells]
            k += 1
            cur[d] += 1
        else:
            s2 = child[e]
            d += 1
            cur[d] = row_ptr[state_off[d] + s2]
            end[d] = row_ptr[state_off[d] + s2 + 1]
    return k


def _expand(tables: Tables, res: CountResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward alive marking, then the compiled depth-first walk (:func:`_dfs`) over alive edges.

    Only states with at least one completion are entered, so the work is O(count · L).
    """
    edges = res.edges
    n_cells = tables.n_cells
    m, h, w = tables.shape
    alive_edges: list[np.ndarray] = [np.zeros(0, bool)] * n_cells
    alive_next = np.ones(edges[-1][5], bool)
    for i in range(n_cells - 1, -1, -1):
        ep, ec, _, _, n_parent, _ = edges[i]
        a = alive_next[ec]
        alive_edges[i] = a
        alive_next = np.zeros(n_parent, bool)
        alive_next[ep[a]] = True
    ptrs, childs, toks, conds = [], [], [], []
    state_off = np.zeros(n_cells, np.int64)
    n_states = n_edges = 0
    for i in range(n_cells):
        ep, ec, et, econd, n_parent, _ = edges[i]
        a = alive_edges[i]
        deg = np.bincount(ep[a], minlength=n_parent)
        ptrs.append(n_edges + np.cumsum(deg) - deg)
        childs.append(ec[a])
        toks.append(et[a])
        conds.append(econd[a])
        state_off[i] = n_states
        n_states += n_parent
        n_edges += int(a.sum())
    row_ptr = np.append(np.concatenate(ptrs), n_edges).astype(np.int64)
    k = res.count
    out = np.zeros((k, m, h, w), np.int8)
    prob = np.zeros(k, np.float64)
    logp = np.zeros(k, np.float64)
    found = _dfs(state_off, row_ptr, np.concatenate(childs), np.concatenate(toks), np.concatenate(conds),
                 k, m, h, w, out, prob, logp) if alive_next[0] else 0
    if found != k:
        raise RuntimeError(f"listing found {found} latents, the count says {k}")
    return out, prob, logp


def enumerate_reachable(latents: np.ndarray, rho: int, counts: np.ndarray | None = None,
                        max_images: int | None = 100_000, progress: bool = False,
                        max_memory: int | None = None) -> Listing:
    """List every reachable latent with its exact probability (DESIGN §6.4–6.5).

    Counts first; raises :class:`TooManyImages` (an :class:`FscertError` with the exact count)
    before listing when the count exceeds ``max_images``. ``max_memory`` bytes (None: ¾ of
    the machine's memory) bound both passes (:func:`forward`).
    """
    tables = build_tables(latents, rho, counts)
    res = forward(tables, store=False, progress=progress, max_memory=max_memory)
    if max_images is not None and res.count > max_images:
        raise TooManyImages(res.count, max_images)
    return list_from_tables(tables, res.count, progress=progress, max_memory=max_memory)


def list_from_tables(tables: Tables, expected_count: int | None = None, progress: bool = False,
                     max_memory: int | None = None) -> Listing:
    """List from prebuilt tables: the stored forward pass (refused above ``max_memory``), then
    :func:`_expand`."""
    m, h, w = tables.shape
    res = forward(tables, store=True, progress=progress, max_memory=max_memory)
    if len(res.edges) < tables.n_cells or res.count == 0:
        z = np.zeros((0, m, h, w), np.int8)
        e = np.zeros(0, np.float64)
        return Listing(z, e, e.copy(), e.copy(), 0, res.dead_end_mass, res.max_states)
    if expected_count is not None and expected_count != res.count:
        raise RuntimeError(f"the listing pass counts {res.count} latents, the counting pass {expected_count}")
    z, raw, logp = _expand(tables, res)
    norm = 1.0 - res.dead_end_mass
    return Listing(z, raw / norm, logp - math.log(norm), raw, res.count,
                   res.dead_end_mass, res.max_states)


# ----------------------------------------------------------------------------- graph export


def patch_graph(latents: np.ndarray, rho: int, counts: np.ndarray | None = None):
    """The compatible-patch graph (DESIGN §6.5) as a ``networkx.DiGraph``.

    One node per distinct (cell, Pre, z_i) of E (id ``"i:pre:token"``, attributes cell, y, x,
    pre, token, count, cond); an edge from a choice at cell i to one at cell i+1 where the two
    windows (Pre ∪ {cell}) agree on every cell they share. Paths through the graph are locally
    consistent stitchings; the reachable latents are the paths that also agree on the whole
    frontier, counted exactly by :func:`count_reachable` (graph attribute ``reachable_count``).
    """
    import networkx as nx

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
    import networkx as nx

    from .errors import atomic_path

    g = patch_graph(latents, rho, counts)
    with atomic_path(path) as tmp:
        nx.write_graphml(g, tmp)
