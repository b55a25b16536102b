"""Compiled (numba) kernels of the frontier forward pass (DESIGN §6.5; paper A.3.6).

One raster cell of the forward pass is a **pre-pass** (:func:`_contexts`: every parent state's
context row, by binary search; their token counts add up to the exact number of candidate
edges, :func:`_n_edges`) and one **step** (:func:`_step`) mapping the states of layer i to
those of layer i+1 through an open-addressing hash table (:func:`intern_row`). The step's
buffers are sized by that exact count (children ≤ candidate edges; the table a power of two
≥ 2× it, :func:`_table_slots`), not by states × the largest degree. :func:`_step_bytes` and
:func:`_run_end` turn the count into the byte estimates of the memory guard
(:mod:`fscert.enumeration.count`); :func:`_merge_keys` orders a layer before it is split.

:func:`find_row`, :func:`hash_words`, :func:`intern_row`, :func:`lookup_row` and
:func:`rehash_rows` are the primitives the pruned search (:mod:`fscert.search`) and the
survival table (:mod:`fscert.survival`) share.

Guarantees: children are numbered in order of first appearance (parents in order, tokens
ascending), whatever the hash, so every result is deterministic; prefix counts are exact
(32-bit limbs with carries, :class:`OverflowError` rather than a wrong count).
"""
from __future__ import annotations

import numba
import numpy as np

#: bytes per stored edge (parent int64, child int64, token uint64, conditional float64)
EDGE_BYTES = 32


# ----------------------------------------------------------------------------- shared primitives
# Inlined into their callers at numba IR level: as ordinary calls (not inlined by LLVM) they
# made the counting step about 1.6× slower.


@numba.njit(cache=True, inline="always")
def find_row(key, rows):
    """Row of ``key`` in the lexicographically sorted uint64 ``rows`` (word 0 first), or −1."""
    lo, hi = 0, rows.shape[0]
    wc = rows.shape[1]
    while lo < hi:
        mid = (lo + hi) // 2
        cmp = 0
        for w in range(wc):
            a = rows[mid, w]
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


@numba.njit(cache=True, inline="always")
def hash_words(row):
    """64-bit hash of a row of uint64 words (splitmix64 finaliser, chained over the words)."""
    h = np.uint64(0x9E3779B97F4A7C15)
    for w in range(row.shape[0]):
        x = row[w] ^ h
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h = x ^ (x >> np.uint64(31))
    return h


@numba.njit(cache=True, inline="always")
def intern_row(table, rows, n_rows, row):
    """Id of ``row`` in an open-addressing hash set: ``table`` (a power of two of int64 slots,
    −1 = empty) maps to rows 0..n_rows−1 of ``rows``. Returns (id, new): a row not yet there
    is copied to ``rows[n_rows]`` and gets id ``n_rows`` (the caller then counts it)."""
    mask = table.shape[0] - 1
    nw = row.shape[0]
    slot = np.int64(hash_words(row) & np.uint64(mask))
    while True:
        cid = table[slot]
        if cid < 0:
            table[slot] = n_rows
            for w in range(nw):
                rows[n_rows, w] = row[w]
            return n_rows, True
        same = True
        for w in range(nw):
            if rows[cid, w] != row[w]:
                same = False
                break
        if same:
            return cid, False
        slot = (slot + 1) & mask


@numba.njit(cache=True)
def rehash_rows(table, rows, n_rows):
    """Put rows 0..n_rows−1 (distinct) into the empty hash set ``table`` (ids = row numbers)."""
    mask = table.shape[0] - 1
    for r in range(n_rows):
        slot = np.int64(hash_words(rows[r]) & np.uint64(mask))
        while table[slot] >= 0:
            slot = (slot + 1) & mask
        table[slot] = r


@numba.njit(cache=True, inline="always")
def lookup_row(table, rows, row):
    """Id of ``row`` in the hash set (:func:`rehash_rows`), or −1."""
    mask = table.shape[0] - 1
    nw = row.shape[0]
    slot = np.int64(hash_words(row) & np.uint64(mask))
    while True:
        cid = table[slot]
        if cid < 0:
            return -1
        same = True
        for w in range(nw):
            if rows[cid, w] != row[w]:
                same = False
                break
        if same:
            return cid
        slot = (slot + 1) & mask


@numba.njit(cache=True)
def dedupe_rows(rows):
    """Distinct rows of a uint64 (N, W) array in order of first appearance, and each row's id
    (hashing: O(N), where np.unique sorts)."""
    n, nw = rows.shape
    table = np.full(_table_slots(n + 1), -1, np.int64)
    uniq = np.empty((n, nw), np.uint64)
    inv = np.empty(n, np.int64)
    nn = 0
    for e in range(n):
        c, new = intern_row(table, uniq, nn, rows[e])
        if new:
            nn += 1
        inv[e] = c
    return uniq[:nn], inv


@numba.njit(cache=True)
def radix_argsort(keys):
    """Stable argsort of uint64 ``keys``: least-significant-digit radix sort, 16 bits a pass,
    passes whose digit is the same for every key skipped (≈ 4× numpy's argsort at 10⁶ keys)."""
    n = keys.shape[0]
    idx = np.arange(n)
    k_cur = keys.copy()
    k_nxt = np.empty_like(k_cur)
    i_nxt = np.empty_like(idx)
    count = np.empty(65537, np.int64)
    dmask = np.uint64(0xFFFF)
    for p in range(4):
        shift = np.uint64(16 * p)
        count[:] = 0
        for j in range(n):
            count[np.int64((k_cur[j] >> shift) & dmask) + 1] += 1
        if n == 0 or count[np.int64((k_cur[0] >> shift) & dmask) + 1] == n:
            continue                                    # one digit value: the pass is the identity
        for d in range(65536):
            count[d + 1] += count[d]
        for j in range(n):
            d = np.int64((k_cur[j] >> shift) & dmask)
            t = count[d]
            count[d] = t + 1
            k_nxt[t] = k_cur[j]
            i_nxt[t] = idx[j]
        k_cur, k_nxt = k_nxt, k_cur
        idx, i_nxt = i_nxt, idx
    return idx


@numba.njit(cache=True)
def _table_slots(n_edges):
    """Hash-table slots for a layer of ``n_edges`` candidate edges: a power of two ≥ 2·n_edges (≥ 16)."""
    tsize = 16
    while tsize < 2 * n_edges:
        tsize *= 2
    return tsize


# ----------------------------------------------------------------------------- pre-pass and sizes


@numba.njit(cache=True)
def _contexts(states, pre_slots, ctx_keys, per_word, m):
    """int32 (N,): the row of ``ctx_keys`` holding each state's Pre context, −1 where E never has it.

    The pre-pass of one cell: it reads every parent state once (binary search over the sorted
    context keys) and allocates nothing but its output.
    """
    n = states.shape[0]
    wc = ctx_keys.shape[1]
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
        ctx_N[s] = find_row(key, ctx_keys)
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


# ----------------------------------------------------------------------------- the step


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
    table = np.full(_table_slots(cap), -1, np.int64)
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
            for w in range(nw):
                child[w] &= keep[w]
            cid, new = intern_row(table, new_states, nn, child)
            if new:
                for l in range(nl_out):
                    new_limbs[cid, l] = np.uint64(0)
                nn += 1
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
