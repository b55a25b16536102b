"""The depth-first walk over a layered graph of frontier states (DESIGN §6.5), compiled once for
both of its users: the listing of every reachable latent (:mod:`fscert.enumeration.listing`)
and the listing of the paths of cost ≤ B of a pruned search (:mod:`fscert.search_paths`).

The graph is stored as one CSR over all layers (:func:`stack_layers`): the edges out of state
s of layer d are ``row_ptr[state_off[d] + s] .. row_ptr[state_off[d] + s + 1]``, sorted by
token, each with its child (a state of layer d + 1), token and conditional. The walk keeps
one edge cursor per depth, enters edges in ascending token order and multiplies the
conditionals in raster order, so paths come out in lexicographic order of their raster
token sequence with their raw probability — the same float64 product, bit for bit, for both
users (which is what lets the search's results equal the full listing's).

Guarantee: every path the pruning test admits is emitted exactly once, in lexicographic
order; the walk stops at ``max_out + 1`` (more exist) and never writes past its outputs.
"""
from __future__ import annotations

import numba
import numpy as np


def stack_layers(row_ptrs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack per-layer CSR row pointers (layer d: int64 (n_states_d + 1,), from 0) into the
    walk's (state_off int64 (L,), row_ptr int64 (Σ n_states_d + 1,))."""
    state_off = np.zeros(len(row_ptrs), np.int64)
    ptrs, n_edges, n_states = [], 0, 0
    for d, rp in enumerate(row_ptrs):
        state_off[d] = n_states
        n_states += len(rp) - 1
        ptrs.append(rp[:-1] + n_edges)
        n_edges += int(rp[-1])
    return state_off, np.append(np.concatenate(ptrs), n_edges).astype(np.int64)


@numba.njit(cache=True)
def walk_paths(state_off, row_ptr, child, tok, cond, cost, h_off, h, limit, max_out, m, w,
               out_tok, out_lat, out_prob, out_sum):
    """Depth-first walk from the root (state 0 of layer 0) to the last layer; returns the
    number of paths written, or ``max_out + 1`` when there are more than ``max_out``.

    Pruning (the search): where ``cost`` is not empty, edge e out of depth d is entered only
    if g + cost[e] + h[h_off[d + 1] + child[e]] ≤ ``limit`` (g: the running cost), and
    ``out_sum`` receives each path's cost Σ cost[e]. Without it (the listing: every edge is
    alive) ``out_sum`` receives Σ log cond[e], summed in raster order.

    Per path k: ``out_prob[k]`` = Π cond[e] in raster order; the path itself goes to
    ``out_lat[k]`` (int8 ±1 (M, H, W), channel 0 = most significant bit, H·W = L) when
    ``out_lat`` has rows, else to ``out_tok[k]`` (uint64 token ids (L,)).
    """
    n_cells = state_off.shape[0]
    prune = cost.shape[0] > 0
    latents = out_lat.shape[0] > 0
    cur = np.zeros(n_cells, np.int64)
    end = np.zeros(n_cells, np.int64)
    pr = np.ones(n_cells + 1, np.float64)
    acc = np.zeros(n_cells + 1, np.float64)
    path = np.zeros(n_cells, np.uint64)
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
        c2 = child[e]
        if prune:
            a = acc[d] + cost[e]
            if a + h[h_off[d + 1] + c2] > limit:
                cur[d] += 1
                continue
        else:
            a = acc[d] + np.log(cond[e])
        path[d] = tok[e]
        pr[d + 1] = pr[d] * cond[e]
        acc[d + 1] = a
        if d == n_cells - 1:
            if k >= max_out:
                return k + 1
            if latents:
                for i in range(n_cells):
                    t = np.int64(path[i])
                    y = i // w
                    x = i - y * w
                    for c in range(m):
                        out_lat[k, c, y, x] = np.int8(2 * ((t >> (m - 1 - c)) & 1) - 1)
            else:
                for i in range(n_cells):
                    out_tok[k, i] = path[i]
            out_prob[k] = pr[n_cells]
            out_sum[k] = a
            k += 1
            cur[d] += 1
        else:
            d += 1
            cur[d] = row_ptr[state_off[d] + c2]
            end[d] = row_ptr[state_off[d] + c2 + 1]
    return k
