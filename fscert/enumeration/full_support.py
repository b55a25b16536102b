"""Full-support enumeration (paper A.3.6, Fig. 18; DESIGN §6, last paragraph).

When the latent is small (M·H·W ≤ ``MAX_FULL_SUPPORT_BITS`` bits, e.g. the paper's 1×3×3 with
2^9 = 512 latents), every latent of {−1, +1}^(M×H×W) is listed with its exact probability
under the direct sampler of :mod:`fscert.sampling` (Eq. 6): the product over cells, in raster
order, of the exact conditionals of Eq. 6–8 (:func:`fscert.sampling.conditional_from_words`).

Guarantee: every latent appears exactly once, in the order of
:func:`full_support_index_to_latents`, and the probabilities are exact float64 products that
sum to 1 (up to rounding).
"""
from __future__ import annotations

import numpy as np

from ..errors import FscertError
from ..latents import validate_latents
from ..patch_bank import build_bank
from ..patches import index_to_token
from ..progress import Progress
from ..sampling import check_q, conditional_from_words

MAX_FULL_SUPPORT_BITS = 24


def full_support_index_to_latents(j: np.ndarray, m: int, h: int, w: int) -> np.ndarray:
    """Latents of the full-support order: the binary digits of j (most significant first) are
    the token indices of cells 0, 1, …, L−1 in raster order (channel 0 = most significant bit)."""
    j = np.asarray(j, dtype=np.int64)
    L = h * w
    out = np.empty((len(j), m, L), np.int8)
    chunk = 1 << 18
    for s in range(0, len(j), chunk):
        js = j[s:s + chunk]
        for i in range(L):
            out[s:s + chunk, :, i] = index_to_token((js >> (m * (L - 1 - i))) & ((1 << m) - 1), m)
    return out.reshape(len(j), m, h, w)


def full_support(source_latents: np.ndarray, rho: int, q: float, counts: np.ndarray | None = None,
                 translation_invariant: bool = False, full_context: bool = False,
                 progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every latent of {−1, +1}^(M×H×W) with its exact direct-sampling probability (Eq. 6, DESIGN §6).

    Returns (latents int8 (2^B, M, H, W), prob float64 (2^B,)) with B = M·H·W ≤ 24, in the order
    of :func:`full_support_index_to_latents` (row j ↔ the raster-order token indices written
    as the base-2^M digits of j). The probabilities are the products of the exact conditionals
    (:func:`conditional_from_words`) and sum to 1. Computed by expanding prefixes cell by cell;
    each conditional is evaluated once per distinct context value.
    """
    z = validate_latents(source_latents, "source latents")
    _, m, h, w = z.shape
    b = m * h * w
    if b > MAX_FULL_SUPPORT_BITS:
        raise FscertError(f"full-support enumeration lists 2^(M·H·W) latents; M·H·W = {m}·{h}·{w} = {b} bits "
                          f"exceeds the limit of {MAX_FULL_SUPPORT_BITS} bits (use the empirical mode instead)")
    q = check_q(q)
    bank = build_bank(z, rho, counts, translation_invariant, full_context)
    L = h * w
    prob = np.ones(1, np.float64)
    for i in Progress(range(L), desc="full support", unit="cell", show=progress, leave=False):
        idx = bank.ctx_index[i]                       # flat positions (channel·L + cell) of the context
        d = len(idx)
        n_pre = len(prob)                             # 2^(M·i) prefixes; prefix p's bits = tokens of cells < i
        p = np.arange(n_pre, dtype=np.int64)
        v = np.zeros(n_pre, np.int64)                 # context value of each prefix (MSB = first context bit)
        for t, pos in enumerate(idx):
            ch, c = divmod(int(pos), L)
            shift = m * (i - 1 - c) + (m - 1 - ch)
            v |= ((p >> shift) & 1) << (d - 1 - t)
        vals = np.arange(1 << d, dtype=np.int64)
        nw = max(1, -(-d // 64))
        words = np.zeros((len(vals), nw), np.uint64)
        for t in range(d):
            words[:, t // 64] |= (((vals >> (d - 1 - t)) & 1).astype(np.uint64) << np.uint64(t % 64))
        cond_VK = conditional_from_words(bank, i, words, q)
        prob = (prob[:, None] * cond_VK[v]).reshape(-1)
    latents = full_support_index_to_latents(np.arange(len(prob), dtype=np.int64), m, h, w)
    return latents, prob
