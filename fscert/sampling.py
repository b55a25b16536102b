"""Exact direct sampling of FS-LAR latents (paper §4.2, Eq. 6–8, A.2.2 Eq. 17–21; DESIGN §5).

Eq. 8 writes the conditional of the token ``k`` at cell i given its generated context z° as

    P(k | z°) = Σ_n P(n | z°) · P(k | c_n)                                        (Eq. 6–7)
    P(n | z°) ∝ q^ham(g_n, z°) · (1 − q)^(|z°| − ham(g_n, z°))   (context likelihood, Eq. 7)
    P(k | c_n) = q^ham(k, c_n) · (1 − q)^(M − ham(k, c_n))       (centre bit flips, Eq. 7)

with q = 1 − π the bit flip probability (:func:`fscert.noise.flip_probability`), g_n / c_n the
Pre / Mid of source patch n and |z°| the number of non-padding context bits. The paper (and
its official code) evaluates Eq. 8 for each of the 2^M values of k (Eq. 21). This module never
does: it draws a patch n from the softmax of its context log-likelihood, then flips each bit of
its centre with probability q. That is the same distribution (a mixture sampled by first
drawing its component), at the cost of one Hamming distance per (image, patch).

Patches. The candidates of cell i are the merged source patches of its pool
(:class:`fscert.patch_bank.PatchBank`: position-anchored by default, or per padding class;
``full_context``: the whole grid before i).

Weights. With β = log q − log(1 − q), log P(n | z°) = β·ham_n + const + log mult_n, so the
weight of candidate n is mult_n · exp(β·(ham_n − ham_min)), read from a table over the integer
distance (exact, stable, no exp per candidate). Limits: q = 0 (τ ≤ 1) is the exact q → 0 limit,
uniform (times multiplicity) over the candidates at the **minimum** Hamming distance, whose
centres are copied unchanged — with an exact context match this is copying a matching patch;
without one, the nearest patches are used (the limit of Eq. 8, never an error). q = ½ makes
every candidate equally likely. q > ½ is allowed (the weight then prefers large distances).
Cell 0 has an empty context: every patch is weighted by its multiplicity only.

Randomness: one numpy ``Generator`` (seeded), consumed per cell as ``random(n)`` for the patch
draws then ``random((n, M))`` for the centre flips, so the same seed gives the same samples on
every machine. Hamming distances: bit-packed uint64 XOR + popcount in numba (``llvm.ctpop``),
serial below 2^24 (row, candidate) pairs per call, threaded above (identical results).

Exact probabilities of the same distribution: :func:`conditional_from_words` (Eq. 6–8 in
closed form, per packed context) and :func:`log_prob`; listing every latent with them (the
paper's Fig. 18) is :mod:`fscert.enumeration.full_support`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

from .errors import FscertError
from .latents import validate_latents
from .patch_bank import PatchBank, build_bank
from .patches import index_to_token, pack_bits, token_to_index
from .progress import Progress


# ----------------------------------------------------------------------------- numba kernels
@intrinsic
def _popcount64(typingctx, x):
    """llvm.ctpop on a uint64 (one POPCNT instruction where the CPU has it)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(cache=True)
def _row_weights(a_W, bank_NW, mult_N, table, prefer_low, ham_N, w_N) -> float:
    """Weights mult_n·table[|ham_n − ham_ref|] of every candidate for one packed context (into
    ``w_N``; ``ham_N`` is scratch); returns their sum. ham_ref is the best distance (Eq. 7)."""
    n_cand, n_words = bank_NW.shape
    ref = -1
    for n in range(n_cand):
        h = 0
        for k in range(n_words):
            h += _popcount64(a_W[k] ^ bank_NW[n, k])
        ham_N[n] = h
        if ref < 0 or (prefer_low and h < ref) or ((not prefer_low) and h > ref):
            ref = h
    total = 0.0
    for n in range(n_cand):
        d = ham_N[n] - ref if prefer_low else ref - ham_N[n]
        w = mult_N[n] * table[d]
        w_N[n] = w
        total += w
    return total


@njit(cache=True)
def _draw_rows(gen_BW, bank_NW, mult_N, table, prefer_low, u_B, out_B, lo, hi):
    """Rows lo..hi of :func:`_draw_patches`: inverse-CDF draw of a candidate ∝ its weight."""
    n_cand = bank_NW.shape[0]
    ham = np.empty(n_cand, np.int64)
    w = np.empty(n_cand, np.float64)
    for b in range(lo, hi):
        total = _row_weights(gen_BW[b], bank_NW, mult_N, table, prefer_low, ham, w)
        target = u_B[b] * total
        acc = 0.0
        pick = -1
        for n in range(n_cand):
            if w[n] > 0.0:
                acc += w[n]
                pick = n
                if acc > target:
                    break
        out_B[b] = pick


@njit(cache=True)
def _draw_patches(gen_BW, bank_NW, mult_N, table, prefer_low, u_B, out_B):
    """For each image b, draw a source pattern with probability ∝ its weight (serial)."""
    _draw_rows(gen_BW, bank_NW, mult_N, table, prefer_low, u_B, out_B, 0, gen_BW.shape[0])


@njit(cache=True, parallel=True)
def _draw_patches_parallel(gen_BW, bank_NW, mult_N, table, prefer_low, u_B, out_B):
    """:func:`_draw_patches` with blocks of images spread over threads (same result)."""
    n = gen_BW.shape[0]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    for k in prange(n_blocks):
        _draw_rows(gen_BW, bank_NW, mult_N, table, prefer_low, u_B, out_B, k * _BLOCK, min(n, (k + 1) * _BLOCK))


@njit(cache=True)
def _centre_rows(ctx_KW, bank_NW, centre_N, mult_N, table, prefer_low, out_KC, lo, hi):
    n_cand = bank_NW.shape[0]
    ham = np.empty(n_cand, np.int64)
    w = np.empty(n_cand, np.float64)
    for r in range(lo, hi):
        inv = 1.0 / _row_weights(ctx_KW[r], bank_NW, mult_N, table, prefer_low, ham, w)
        for n in range(n_cand):
            out_KC[r, centre_N[n]] += w[n] * inv


@njit(cache=True)
def _centre_weights(ctx_KW, bank_NW, centre_N, mult_N, table, prefer_low, out_KC):
    """P(centre = c | context) for each packed context: the patch posterior summed per centre value."""
    _centre_rows(ctx_KW, bank_NW, centre_N, mult_N, table, prefer_low, out_KC, 0, ctx_KW.shape[0])


@njit(cache=True, parallel=True)
def _centre_weights_parallel(ctx_KW, bank_NW, centre_N, mult_N, table, prefer_low, out_KC):
    """:func:`_centre_weights` with blocks of contexts spread over threads (same result)."""
    n = ctx_KW.shape[0]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    for k in prange(n_blocks):
        _centre_rows(ctx_KW, bank_NW, centre_N, mult_N, table, prefer_low, out_KC, k * _BLOCK, min(n, (k + 1) * _BLOCK))


_BLOCK = 256
# The two threaded kernels above repeat the same block loop on purpose: one loop taking the row
# kernel as an argument is never loaded from numba's cache (a function-typed argument), so it
# would be recompiled (~0.7 s) in every process.

# Thread start-up costs milliseconds (far more on a busy machine), so threads are used only for
# calls with at least this many (row, candidate) pairs.
PARALLEL_MIN_PAIRS = 1 << 24


# ----------------------------------------------------------------------------- weights
def check_q(q: float) -> float:
    q = float(q)
    if not (math.isfinite(q) and 0.0 <= q <= 1.0):
        raise FscertError(f"the flip probability q must be in [0, 1], got {q}")
    return q


def distance_table(q: float, n_bits: int) -> tuple[np.ndarray, bool]:
    """``table[d]`` = relative weight of a candidate d bits farther than the best one (Eq. 7).

    Returns (table float64 (n_bits + 1,), prefer_low). For q ≤ ½ the best candidate is the
    nearest one and table[d] = (q / (1 − q))^d; for q > ½ the farthest, table[d] = ((1 − q)/q)^d.
    q = 0 and q = 1 give the exact limits table = (1, 0, 0, …).
    """
    q = check_q(q)
    prefer_low = q <= 0.5
    ratio = q / (1.0 - q) if prefer_low else (1.0 - q) / q   # in [0, 1]
    d = np.arange(n_bits + 1, dtype=np.float64)
    if ratio == 0.0:
        table = (d == 0).astype(np.float64)
    else:
        table = np.exp(d * math.log(ratio))
    return table, prefer_low


def flip_channel(p_KC: np.ndarray, q: float, m: int) -> np.ndarray:
    """Apply independent bit flips with probability q to a distribution over 2^M token values.

    ``out[k] = Σ_c p[c] · q^ham(k, c) · (1 − q)^(M − ham(k, c))`` (Eq. 7, first line), computed as
    M two-point convolutions (the flip kernel factorises over bits), exact and O(2^M · M).
    """
    p = np.asarray(p_KC, dtype=np.float64)
    k = p.shape[0]
    x = p.reshape((k,) + (2,) * m)
    for ax in range(1, m + 1):
        x = (1.0 - q) * x + q * np.flip(x, axis=ax)
    return np.ascontiguousarray(x.reshape(k, 1 << m))


# ----------------------------------------------------------------------------- sampling
def _as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def sample_direct(bank: PatchBank, n: int, q: float, seed: int | np.random.Generator | None = 0,
                  progress: bool = False) -> np.ndarray:
    """Draw ``n`` latents int8 (n, M, H, W) from Eq. 6–8 exactly, cell by cell in raster order.

    For every cell: pack the generated contexts, draw a source pattern per image from the softmax
    of its context log-likelihood (:func:`_draw_patches`), then flip each centre bit with prob q.
    """
    q = check_q(q)
    if n < 0:
        raise FscertError(f"the number of samples must be ≥ 0, got {n}")
    rng = _as_rng(seed)
    m, L = bank.m, bank.n_cells
    out_NB = np.zeros((n, bank.n_bits), np.int8)              # flattened (M, H, W)
    if n == 0:
        return out_NB.reshape(0, m, bank.h, bank.w)
    ch = np.arange(m, dtype=np.int64) * L
    tables: dict[int, tuple[np.ndarray, bool]] = {}
    pick_B = np.empty(n, np.int64)
    for i in Progress(range(L), desc="sample", unit="cell", show=progress, leave=False):
        words_NW, centre_N, mult_N = bank.pool(i)
        idx = bank.ctx_index[i]
        gen_BW = pack_bits(out_NB[:, idx]) if len(idx) else np.zeros((n, 1), np.uint64)
        nb = 64 * gen_BW.shape[1]
        if nb not in tables:
            tables[nb] = distance_table(q, nb)
        table, low = tables[nb]
        u_B = rng.random(n)
        draw = _draw_patches_parallel if n * len(words_NW) >= PARALLEL_MIN_PAIRS else _draw_patches
        draw(gen_BW, words_NW, mult_N, table, low, u_B, pick_B)
        tok_BM = index_to_token(centre_N[pick_B], m)
        flips = rng.random((n, m)) < q
        out_NB[:, ch + i] = np.where(flips, -tok_BM, tok_BM)
    return out_NB.reshape(n, m, bank.h, bank.w)


def sample(source_latents: np.ndarray, n: int, rho: int, q: float, seed: int | np.random.Generator | None = 0,
           counts: np.ndarray | None = None, translation_invariant: bool = False, full_context: bool = False,
           progress: bool = False) -> np.ndarray:
    """Convenience: :func:`build_bank` then :func:`sample_direct`."""
    bank = build_bank(source_latents, rho, counts, translation_invariant, full_context)
    return sample_direct(bank, n, q, seed, progress)


# ----------------------------------------------------------------------------- exact probabilities
def conditional_from_words(bank: PatchBank, cell: int, ctx_KW: np.ndarray, q: float) -> np.ndarray:
    """Exact P(z_cell = k | context) for packed contexts: float64 (K, 2^M) (Eq. 6–8 in closed form).

    The patch posterior (Eq. 7, second line) summed per centre value, then pushed through the
    centre flip channel (Eq. 7, first line) by :func:`flip_channel`.
    """
    q = check_q(q)
    words_NW, centre_N, mult_N = bank.pool(cell)
    ctx = np.ascontiguousarray(ctx_KW, dtype=np.uint64)
    if ctx.shape[1] != words_NW.shape[1]:
        raise ValueError(f"context has {ctx.shape[1]} words, the pool of cell {cell} {words_NW.shape[1]}")
    table, low = distance_table(q, 64 * ctx.shape[1])
    cw_KC = np.zeros((len(ctx), 1 << bank.m), np.float64)
    kernel = _centre_weights_parallel if len(ctx) * len(words_NW) >= PARALLEL_MIN_PAIRS else _centre_weights
    kernel(ctx, words_NW, centre_N, mult_N, table, low, cw_KC)
    return flip_channel(cw_KC, q, bank.m)


def _pack_cell_context(bank: PatchBank, cell: int, z_KB: np.ndarray) -> np.ndarray:
    idx = bank.ctx_index[cell]
    return pack_bits(z_KB[:, idx]) if len(idx) else np.zeros((len(z_KB), 1), np.uint64)


def conditional_table(bank: PatchBank, cell: int, z_KMHW: np.ndarray, q: float) -> np.ndarray:
    """P(z_cell = k | Pre_cell(z)) for each latent (only cells before ``cell`` are read): (K, 2^M)."""
    z = np.asarray(z_KMHW, dtype=np.int8).reshape(-1, bank.n_bits)
    return conditional_from_words(bank, cell, _pack_cell_context(bank, cell, z), q)


def conditional_probs(source_latents: np.ndarray, rho: int, q: float, cell: int, z_prefix: np.ndarray,
                      counts: np.ndarray | None = None, translation_invariant: bool = False,
                      full_context: bool = False) -> np.ndarray:
    """Exact P(z_cell = k | z°) over the 2^M token values k (index order of
    :func:`fscert.patches.token_to_index`), float64 (2^M,).

    ``z_prefix`` is an (M, H, W) latent whose cells before ``cell`` (raster order) form the
    context; later cells are ignored (they may hold anything, e.g. 0).
    """
    bank = build_bank(source_latents, rho, counts, translation_invariant, full_context)
    if not 0 <= cell < bank.n_cells:
        raise FscertError(f"cell must be in [0, {bank.n_cells}), got {cell}")
    z = np.asarray(z_prefix, dtype=np.int8)
    if z.shape != (bank.m, bank.h, bank.w):
        raise FscertError(f"z_prefix must have shape {(bank.m, bank.h, bank.w)}, got {z.shape}")
    return conditional_table(bank, cell, z[None], q)[0]


def log_prob(bank: PatchBank, z_KMHW: np.ndarray, q: float) -> np.ndarray:
    """Exact log-probability of each latent under the direct sampler (Eq. 6): float64 (K,)."""
    z = validate_latents(z_KMHW, "latents").reshape(-1, bank.n_bits)
    if z.shape[1] != bank.n_bits:
        raise FscertError("latents do not have the bank's shape")
    tok_KL = token_to_index(z.reshape(-1, bank.m, bank.n_cells).transpose(0, 2, 1))
    out = np.zeros(len(z), np.float64)
    with np.errstate(divide="ignore"):
        for i in range(bank.n_cells):
            p_KC = conditional_from_words(bank, i, _pack_cell_context(bank, i, z), q)
            out += np.log(p_KC[np.arange(len(z)), tok_KL[:, i]])
    return out
