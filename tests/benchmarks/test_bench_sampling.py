"""Benchmark: exact direct sampler (fscert.sampling) vs the per-value algorithm of Eq. 21.

The reference is a straightforward torch port of how Eq. 8 / Eq. 21 (and the paper's official
code) sample a cell: for every one of the 2^M token values k and every source patch n compute
ψ(k, n) = η·log(1−π) + (λ−η)·log π, log-sum-exp over n, normalise over k, draw k. Vectorised
over the generated images; context Hamming distances by one matmul; float32 as a GPU port would.
Both sides run on one thread.
Both samplers run on the same source latents, M = 7, for ρ ∈ {1, 5} and 8×8 / 32×32 grids.
The "same distribution" check compares, on the direct sampler's own samples, the reference's
float64 conditionals with :func:`fscert.sampling.conditional_table` at several cells.

Run with `make bench` (pytest tests/benchmarks -s); never part of `make test`.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from fscert import sampling as S
from fscert.empirical import DrawConfig
from fscert.noise import flip_probability
from fscert.patches import contexts, index_to_token, pre_offsets, tokens


M = 7
Q = flip_probability(DrawConfig.tau, DrawConfig.kappa)       # the sampling defaults (q ≈ 0.004)
Q_HIGH = flip_probability(1.2, 2.0)                            # a noisier setting, q ≈ 0.204
CASES = [  # (grid, rho, number of source latents, number of generated images, q)
    (8, 1, 1000, 64, Q), (8, 5, 1000, 64, Q), (32, 1, 200, 64, Q), (32, 5, 200, 64, Q), (8, 1, 1000, 64, Q_HIGH),
]


class PerValueReference:
    """Eq. 21 for every token value k × every source patch n, then normalise (torch)."""

    def __init__(self, src_NMHW: np.ndarray, rho: int, q: float, dtype=torch.float32):
        n, m, h, w = src_NMHW.shape
        self.m, self.h, self.w, self.rho, self.dtype = m, h, w, rho, dtype
        self.log_q, self.log_1q = math.log(q), math.log1p(-q)          # log(1−π), log π
        self.g_NLD = torch.from_numpy(contexts(src_NMHW, rho)).to(dtype)   # Pre of every patch
        tok_NLM = torch.from_numpy(tokens(src_NMHW)).to(dtype)           # Mid of every patch
        self.k_KM = torch.from_numpy(index_to_token(np.arange(1 << m), m)).to(dtype)
        # ‖k ⊕ c_n‖ for every value k, cell and patch: (L, 2^M, N)
        self.hamk_LKN = (m - torch.einsum("km,nlm->lkn", self.k_KM, tok_NLM)) / 2
        offs = np.array(pre_offsets(rho), dtype=np.int64).reshape(-1, 2)
        self.idx_LP = []
        for i in range(h * w):
            y, x = divmod(i, w)
            yy, xx = y + offs[:, 0], x + offs[:, 1]
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            cell = np.where(ok, yy * w + xx, h * w)                      # h·w = the padding slot
            self.idx_LP.append(torch.from_numpy(cell))

    def log_probs(self, z_BLM: torch.Tensor, i: int) -> torch.Tensor:
        """log P(k | z°) for each generated image: (B, 2^M), Eq. 21."""
        b = z_BLM.shape[0]
        zc_BD = z_BLM[:, self.idx_LP[i]].reshape(b, -1)                  # padding = 0
        size_B = (zc_BD != 0).sum(1).to(self.dtype)                      # ‖z°‖₀
        hamg_BN = (size_B[:, None] - zc_BD @ self.g_NLD[:, i].T) / 2     # ‖g_n ⊕ z°‖
        eta_BKN = self.hamk_LKN[i][None] + hamg_BN[:, None, :]
        lam_B = self.m + size_B
        psi_BKN = eta_BKN * self.log_q + (lam_B[:, None, None] - eta_BKN) * self.log_1q
        big_BK = psi_BKN.max(-1).values                                  # Ψ(k)
        lse_BK = big_BK + torch.log(torch.exp(psi_BKN - big_BK[..., None]).sum(-1))
        return lse_BK - torch.logsumexp(lse_BK, -1, keepdim=True)

    @torch.no_grad()
    def sample(self, n: int, seed: int) -> np.ndarray:
        g = torch.Generator().manual_seed(seed)
        L = self.h * self.w
        z_BLM = torch.zeros(n, L + 1, self.m, dtype=self.dtype)         # last slot = padding
        for i in range(L):
            k = torch.multinomial(torch.exp(self.log_probs(z_BLM, i)), 1, generator=g)[:, 0]
            z_BLM[:, i] = self.k_KM[k]
        return z_BLM[:, :L].numpy().astype(np.int8).reshape(n, self.h, self.w, self.m).transpose(0, 3, 1, 2)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Single-threaded on both sides: the direct sampler's kernels are serial at these sizes, and
    torch's thread pool is erratic on a shared 2-core machine (it can make the reference 10× slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


@pytest.mark.parametrize("grid,rho,n_src,n_img,q", CASES)
def test_direct_vs_per_value(grid, rho, n_src, n_img, q):
    rng = np.random.default_rng(0)
    src = rng.choice(np.array([-1, 1], np.int8), (n_src, M, grid, grid))
    S.sample(src[:2, :, :3, :3], 2, rho, q, seed=0)                    # compile (numba cache)

    bank, t_bank = timed(lambda: S.build_bank(src, rho))
    ours, t_ours = timed(lambda: S.sample_direct(bank, n_img, q, seed=1))
    ref = PerValueReference(src, rho, q)
    theirs, t_ref = timed(lambda: ref.sample(n_img, seed=1))
    assert theirs.shape == ours.shape and set(np.unique(theirs)) <= {-1, 1}

    # same distribution: exact conditionals agree on our own samples (float64 reference)
    ref64 = PerValueReference(src, rho, q, dtype=torch.float64)
    z_BLM = torch.zeros(n_img, grid * grid + 1, M, dtype=torch.float64)
    z_BLM[:, :-1] = torch.from_numpy(tokens(ours).astype(np.float64))
    worst = 0.0
    for i in np.linspace(0, grid * grid - 1, 6).astype(int):
        want = torch.exp(ref64.log_probs(z_BLM, int(i))).numpy()
        got = S.conditional_table(bank, int(i), ours, q)
        worst = max(worst, float(np.abs(got - want).max()))
    assert worst < 1e-9

    ratio = t_ref / t_ours
    print(f"\n[bench] {grid}x{grid} M={M} rho={rho} sources={n_src} images={n_img} q={q:.4f}: "
          f"direct {t_ours:.3f}s (+ bank {t_bank:.3f}s, {bank.n_patterns()} patterns), "
          f"per-value reference {t_ref:.3f}s, ratio {ratio:.1f}x (with bank {t_ref / (t_ours + t_bank):.1f}x), "
          f"max |Δp| {worst:.2e}")
    assert ratio >= 20
