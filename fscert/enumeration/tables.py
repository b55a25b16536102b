"""The empirical conditionals of E, cell by cell (DESIGN §4, §6.3; paper A.3.6).

The empirical set E (drawn latents with multiplicities ``counts``) defines, at every cell i
(raster order, DESIGN §4), the conditional

    P_E(z_i = k | Pre_i = z°) = count(i, z°, k) / count(i, z°)                    (DESIGN §6.3)

:func:`build_tables` collects, per cell, every distinct pair (Pre, token) of E with its weight
and conditional (:class:`CellTable`), position-anchored, and fixes the **frontier** layout the
forward pass stores its states in: after cells 0..i−1 are placed only the last F = ρ·W + ρ
cells can still be read by a future Pre, so a frontier state is a ring buffer of F slots
(cell j in slot j mod F, M bits per slot, packed into uint64 words); ``keep_masks[i]`` zeroes
the slots no Pre after cell i reads, so that equivalent states merge.

Guarantee: the tables hold exactly the pairs of E (no pair is dropped or invented), contexts
sorted lexicographically (the binary search of :func:`fscert.enumeration.kernels._contexts`
relies on it), tokens ascending within a context, and ``cond`` sums to 1 over each context.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import FscertError
from ..latents import validate_latents
from ..patches import pre_offsets, token_to_index, tokens

MAX_CHANNELS = 32
LIMB_BITS = 32


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


def keep_masks(last_use_L: np.ndarray, slots: int, per_word: int, n_words: int, m: int) -> np.ndarray:
    """uint64 (L, n_words): after cell i, the ring slots (cell j in slot j mod ``slots``, M bits
    each) of the cells some later cell still reads (``last_use_L[j] > i``); every other slot is
    zeroed so that states which agree on what is still read merge."""
    n = len(last_use_L)
    keep = np.zeros((n, n_words), np.uint64)
    tokmask = np.uint64((1 << m) - 1)
    for i in range(n):
        for j in range(max(0, i - slots + 1), i + 1):
            if last_use_L[j] > i:
                s = j % slots
                keep[i, s // per_word] |= tokmask << np.uint64((s % per_word) * m)
    return keep


def check_empirical(latents: np.ndarray, counts: np.ndarray | None, rho: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate E (±1 int8 (K, M, H, W), counts ≥ 1, ρ ≥ 0); return (latents, counts int64)."""
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
    keep = keep_masks(last_use, frontier, per_word, n_words, m)
    return Tables((m, h, wd), int(rho), frontier, per_word, n_words, keep, cells)
