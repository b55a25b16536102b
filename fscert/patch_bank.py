"""The patch bank of the direct sampler: every source patch, merged (DESIGN §4–5; paper Eq. 6–7).

For cell i the candidates of Eq. 7 are the windows at cell i of every source latent
(position-anchored, the default) or of every cell with the same padding pattern
(``translation_invariant``). Identical (context, centre) patterns are merged into
(pattern, multiplicity); source multiplicities (``counts``) add up. Padding offsets are dropped
from the contexts: they are the same for every candidate of a pool, so they never change a
Hamming distance. ``full_context`` sets the window to the whole grid (Pre = every earlier cell,
the memorization baseline of A.1.6); any ρ ≥ max(H, W) − 1 is the same thing and is clipped.

Guarantee: merging never changes the distribution (DESIGN §5): a merged pattern's
multiplicity is the sum of the multiplicities of the patches it stands for, and the pools'
patterns come out sorted, so the same sources give the same bank.

Memory: the bank stores one packed context per (cell, distinct pattern); with ``full_context``
on a 32×32 grid that is ≈ 0.5 MB per source latent at M = 7.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import FscertError
from .latents import validate_latents
from .patches import pack_bits, padding_classes, pre_offsets, raster_cells, token_to_index


@dataclass
class PatchBank:
    """Merged source patches, one pool per cell (position-anchored) or per padding class.

    ``ctx_index[i]`` lists, in (Pre offset, channel) order with padding dropped, the positions in
    a flattened (M·H·W) latent that form the context of cell i; the pool of cell i holds the
    packed contexts ``words[p]`` (N_p, W_p), centre token indices ``centre[p]`` (N_p,) and
    multiplicities ``mult[p]`` (N_p,) of its distinct (context, centre) patterns.
    """

    m: int
    h: int
    w: int
    rho: int                                   # effective ρ (clipped to max(H, W) − 1)
    translation_invariant: bool
    full_context: bool
    pool_of_cell: np.ndarray                   # int64 (L,)
    ctx_index: list[np.ndarray]                # per cell: int64 (D_i,)
    words: list[np.ndarray]                    # per pool: uint64 (N_p, W_p)
    centre: list[np.ndarray]                   # per pool: int64 (N_p,)
    mult: list[np.ndarray]                     # per pool: float64 (N_p,)
    n_sources: int = 0
    total_weight: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        return self.h * self.w

    @property
    def n_bits(self) -> int:
        return self.m * self.h * self.w

    def n_patterns(self) -> int:
        return int(sum(len(c) for c in self.centre))

    def pool(self, cell: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = int(self.pool_of_cell[cell])
        return self.words[p], self.centre[p], self.mult[p]


def _cell_context_index(h: int, w: int, m: int, rho: int) -> list[np.ndarray]:
    """Flat (M·H·W) positions of Pre(i) without padding, in (offset, channel) order, per cell."""
    offs = np.array(pre_offsets(rho), dtype=np.int64).reshape(-1, 2)
    out = []
    for y, x in raster_cells(h, w):
        yy, xx = y + offs[:, 0], x + offs[:, 1]
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        cell = (yy[ok] * w + xx[ok])                                   # (P,)
        idx = (np.arange(m, dtype=np.int64)[None, :] * (h * w) + cell[:, None]).reshape(-1)
        out.append(idx)
    return out


def _merge_patterns(words_RW: np.ndarray, centre_R: np.ndarray, weight_R: np.ndarray):
    """Merge identical (context, centre) rows, summing their weights; rows come out sorted."""
    keys = [centre_R] + [words_RW[:, k] for k in range(words_RW.shape[1] - 1, -1, -1)]
    order = np.lexsort(keys)
    wr, cr, mr = words_RW[order], centre_R[order], weight_R[order]
    new = np.ones(len(order), bool)
    if len(order) > 1:
        new[1:] = (cr[1:] != cr[:-1]) | (wr[1:] != wr[:-1]).any(axis=1)
    starts = np.flatnonzero(new)
    return (np.ascontiguousarray(wr[starts]), cr[starts].astype(np.int64),
            np.add.reduceat(mr, starts).astype(np.float64))


def effective_rho(rho: int, h: int, w: int, full_context: bool = False) -> int:
    """ρ ≥ max(H, W) − 1 already covers every earlier cell; ``full_context`` means exactly that."""
    if rho < 0:
        raise FscertError(f"ρ must be ≥ 0, got {rho}")
    top = max(h, w) - 1
    return top if full_context else min(int(rho), top)


def build_bank(source_latents: np.ndarray, rho: int, counts: np.ndarray | None = None,
               translation_invariant: bool = False, full_context: bool = False) -> PatchBank:
    """Extract and merge every source patch (DESIGN §4–5). ``counts``: multiplicity per source latent."""
    z_NMHW = validate_latents(source_latents, "source latents")
    n, m, h, w = z_NMHW.shape
    if m > 20:
        raise FscertError(f"at most 20 latent channels are supported (2^M token values), got M = {m}")
    if counts is None:
        counts_N = np.ones(n, np.float64)
    else:
        counts_N = np.asarray(counts, dtype=np.float64).reshape(-1)
        if counts_N.shape != (n,) or not np.all(np.isfinite(counts_N)) or (counts_N <= 0).any():
            raise FscertError(f"counts must be {n} positive numbers, one per source latent")
    r = effective_rho(rho, h, w, full_context)
    if translation_invariant and full_context:
        raise FscertError("--translation-invariant and --full-context cannot be combined "
                          "(the full context already pins every cell's position)")
    ctx_index = _cell_context_index(h, w, m, r)
    flat_NB = z_NMHW.reshape(n, -1)
    tok_NL = token_to_index(z_NMHW.transpose(0, 2, 3, 1).reshape(n, h * w, m))
    L = h * w
    pool_of_cell = padding_classes(h, w, r) if translation_invariant else np.arange(L, dtype=np.int64)
    n_pools = int(pool_of_cell.max()) + 1
    words, centres, mults = [], [], []
    for p in range(n_pools):
        cells = np.flatnonzero(pool_of_cell == p)
        w_parts, c_parts, m_parts = [], [], []
        for i in cells:
            w_parts.append(pack_bits(flat_NB[:, ctx_index[i]]))
            c_parts.append(tok_NL[:, i])
            m_parts.append(counts_N)
        wr, cr, mr = _merge_patterns(np.concatenate(w_parts), np.concatenate(c_parts), np.concatenate(m_parts))
        words.append(wr)
        centres.append(cr)
        mults.append(mr)
    return PatchBank(m, h, w, r, bool(translation_invariant), bool(full_context), pool_of_cell,
                     ctx_index, words, centres, mults, n_sources=n, total_weight=float(counts_N.sum()))
