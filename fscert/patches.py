"""Patches, windows and raster order (DESIGN §4; paper §4.2, Eq. 6–7).

Cells of an H×W latent grid are visited in raster order (row by row, left to right); cell
``i = y·W + x``. For cell i the window is the (2ρ+1)×(2ρ+1) block centred on i. ``Pre(i)`` is
the part of the window that precedes i in raster order (the ρ rows above, full window width,
then the ρ cells to the left on i's row); ``Mid(i)`` is the token at i itself (all M channels).

Cells outside the grid are padding, stored as 0 in int8 contexts (latent bits are ±1), so
padding matches only padding. Patches are **position-anchored** by default: the candidates
for cell i are the windows at cell i of every source latent. The translation-invariant
option pools the windows of every cell that has the same padding pattern.

Contexts are flattened in the order (offset, channel) — ``ctx_NLD[n, i, p·M + m]`` is channel
m of the p-th Pre offset of cell i — and can be bit-packed into uint64 words for fast
Hamming distances (:func:`pack_bits`).
"""
from __future__ import annotations

import numpy as np

PAD = 0


def pre_offsets(rho: int) -> list[tuple[int, int]]:
    """(dy, dx) offsets of Pre(i) in raster order: ρ full rows above, then ρ cells to the left."""
    if rho < 0:
        raise ValueError(f"rho must be ≥ 0, got {rho}")
    above = [(dy, dx) for dy in range(-rho, 0) for dx in range(-rho, rho + 1)]
    left = [(0, dx) for dx in range(-rho, 0)]
    return above + left


def raster_cells(h: int, w: int) -> np.ndarray:
    """(L, 2) array of (y, x) for the L = h·w cells, in raster order."""
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1)


def gather_offsets(z_NMHW: np.ndarray, offsets: list[tuple[int, int]]) -> np.ndarray:
    """For every cell, the values at ``offsets`` around it: int8 (N, L, len(offsets)·M), 0 outside."""
    z = np.asarray(z_NMHW, dtype=np.int8)
    n, m, h, w = z.shape
    r = max([max(abs(dy), abs(dx)) for dy, dx in offsets], default=0)
    zp_NMHW = np.pad(z, ((0, 0), (0, 0), (r, r), (r, r)), constant_values=PAD)
    parts = [zp_NMHW[:, :, r + dy:r + dy + h, r + dx:r + dx + w] for dy, dx in offsets]   # each N,M,H,W
    if not parts:
        return np.zeros((n, h * w, 0), np.int8)
    g_NPMHW = np.stack(parts, axis=1)
    return np.ascontiguousarray(g_NPMHW.transpose(0, 3, 4, 1, 2).reshape(n, h * w, len(offsets) * m))


def contexts(z_NMHW: np.ndarray, rho: int) -> np.ndarray:
    """Pre(i) for every cell of every latent: int8 (N, L, D) with D = |Pre|·M, padding = 0."""
    return gather_offsets(z_NMHW, pre_offsets(rho))


def tokens(z_NMHW: np.ndarray) -> np.ndarray:
    """Mid(i) for every cell: int8 (N, L, M)."""
    z = np.asarray(z_NMHW, dtype=np.int8)
    n, m, h, w = z.shape
    return np.ascontiguousarray(z.transpose(0, 2, 3, 1).reshape(n, h * w, m))


def token_to_index(t_LM: np.ndarray) -> np.ndarray:
    """Token (±1 over M channels, channel 0 = most significant bit) → integer in [0, 2^M)."""
    t = np.asarray(t_LM)
    m = t.shape[-1]
    weights = (1 << np.arange(m - 1, -1, -1)).astype(np.int64)
    return ((t > 0).astype(np.int64) * weights).sum(-1)


def index_to_token(k: np.ndarray, m: int) -> np.ndarray:
    """Inverse of :func:`token_to_index`: int8 (..., M) in {−1, +1}."""
    k = np.asarray(k, dtype=np.int64)[..., None]
    bits = (k >> np.arange(m - 1, -1, -1)) & 1
    return (2 * bits - 1).astype(np.int8)


def padding_mask(h: int, w: int, rho: int) -> np.ndarray:
    """bool (L, |Pre|): True where the Pre offset of cell i falls inside the grid."""
    cells = raster_cells(h, w)
    offs = np.array(pre_offsets(rho), dtype=np.int64).reshape(-1, 2)
    yy = cells[:, :1] + offs[None, :, 0]
    xx = cells[:, 1:] + offs[None, :, 1]
    return (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)


def padding_classes(h: int, w: int, rho: int) -> np.ndarray:
    """int64 (L,): cells with the same padding pattern share a class (translation-invariant pools)."""
    mask = padding_mask(h, w, rho)
    _, cls = np.unique(mask, axis=0, return_inverse=True)
    return cls.reshape(-1).astype(np.int64)


def pack_bits(ctx_ND: np.ndarray) -> np.ndarray:
    """Pack the sign bits of ±1/0 contexts into uint64 words: (..., D) → (..., ceil(D/64)).

    Padding (0) packs as 0; compare only contexts with the same padding pattern, which is
    always the case for position-anchored or padding-class candidates.
    """
    c = np.asarray(ctx_ND)
    d = c.shape[-1]
    nw = max(1, -(-d // 64))
    bits = np.zeros(c.shape[:-1] + (nw * 64,), dtype=np.uint8)
    bits[..., :d] = c > 0
    packed = np.packbits(bits.reshape(c.shape[:-1] + (nw, 64)), axis=-1, bitorder="little")   # (..., nw, 8)
    return np.ascontiguousarray(packed).view(np.uint64).reshape(c.shape[:-1] + (nw,))
