"""Nearest training image and PSNR for every generated image (the inner step of Eq. 9).

Distances use ‖a−b‖² = ‖a‖² + ‖b‖² − 2a·b with one float32 matrix product per
(generated batch, training chunk) pair, so memory stays bounded whatever the set sizes.
Both sets are centred on the training mean first (cheap, and it shrinks the norms that
cause cancellation). The float32 pass only *selects* the ``candidates`` closest training
rows of each generated row; their squared distances are then recomputed exactly, as
sums of squared differences in float64, and re-ranked. The reported distance, PSNR and
second-nearest distance are therefore exact for the chosen rows.

PSNR uses peak 1 (images in [0, 1]): ``PSNR = 10·log10(1 / MSE)`` with
``MSE = ‖a−b‖² / D``. Identical images have MSE 0 and PSNR ``+inf``.

Inputs are numpy arrays or torch tensors of any real dtype with one image (or feature
vector) per row: N×D, or N×C×H×W and the like (flattened to N×D without a copy where
possible). The rows are converted to float32 one chunk at a time; no full float32 copy
of either set is made.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

#: rows of the generated set per matrix product
GEN_BATCH = 2048
#: rows of the training set per matrix product
TRAIN_CHUNK = 4096
#: pairs per exact float64 recomputation
EXACT_PAIRS = 2048
#: float32 candidates per row that are re-ranked exactly
CANDIDATES = 4


class Rows:
    """An N×D view of an array (numpy or torch), served as centred float32 chunks."""

    def __init__(self, x, center: torch.Tensor | None = None):
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu()
        else:
            a = np.asarray(x)
            if any(s < 0 for s in a.strides):
                a = a.copy()
            with warnings.catch_warnings():  # read-only arrays: never written to
                warnings.simplefilter("ignore", UserWarning)
                t = torch.as_tensor(a)
        if t.ndim < 2:
            raise ValueError(f"need one row per image (N×D or N×C×H×W), got shape {tuple(t.shape)}")
        if t.dtype == torch.bool or t.is_complex():
            raise ValueError(f"rows must be real numbers, got dtype {t.dtype}")
        self.t_ND = t.reshape(t.shape[0], -1)
        self.n, self.dim = self.t_ND.shape
        self.center_D = center if center is not None else self.mean64().float()

    def mean64(self) -> torch.Tensor:
        """Row mean in float64, accumulated chunk by chunk."""
        acc = torch.zeros(self.dim, dtype=torch.float64)
        for lo in range(0, self.n, TRAIN_CHUNK):
            acc += self.t_ND[lo:lo + TRAIN_CHUNK].to(torch.float64).sum(0)
        return acc / max(self.n, 1)

    def chunk(self, lo: int, hi: int) -> torch.Tensor:
        """Rows lo:hi as centred float32."""
        return self.t_ND[lo:hi].to(torch.float32) - self.center_D

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` as centred float32."""
        return self.t_ND.index_select(0, idx).to(torch.float32) - self.center_D

    def exact(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` in float64, uncentred (the stored values)."""
        return self.t_ND.index_select(0, idx).to(torch.float64)


def as_rows(x, center: torch.Tensor | None = None) -> Rows:
    return x if isinstance(x, Rows) and center is None else Rows(x.t_ND if isinstance(x, Rows) else x, center)


def exact_sqdist(a: Rows, ia: torch.Tensor, b: Rows, ib: torch.Tensor) -> torch.Tensor:
    """Exact float64 ‖a[ia_k] − b[ib_k]‖² for each pair k (sums of squared differences)."""
    out = torch.empty(ia.numel(), dtype=torch.float64)
    for lo in range(0, ia.numel(), EXACT_PAIRS):
        hi = lo + EXACT_PAIRS
        diff = a.exact(ia[lo:hi]) - b.exact(ib[lo:hi])
        out[lo:hi] = (diff * diff).sum(1)
    return out


def psnr_from_sqdist(sqdist, dim: int) -> np.ndarray:
    """PSNR (peak 1) from a squared distance over ``dim`` values: 10·log10(dim / sqdist); 0 → +inf."""
    s = np.asarray(sqdist, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(dim / s)


def sqdist_from_psnr(psnr: float, dim: int) -> float:
    """The squared distance at which PSNR equals ``psnr`` (inverse of :func:`psnr_from_sqdist`)."""
    return float(dim * 10.0 ** (-psnr / 10.0))


def approx_sqdist(a_bD: torch.Tensor, b_cD: torch.Tensor, bn_c: torch.Tensor | None = None,
                  an_b: torch.Tensor | None = None) -> torch.Tensor:
    """Float32 b×c matrix of squared distances by one fused matrix product."""
    if bn_c is None:
        bn_c = (b_cD * b_cD).sum(1)
    d_bc = torch.addmm(bn_c.unsqueeze(0), a_bD, b_cD.T, beta=1.0, alpha=-2.0)
    if an_b is not None:
        d_bc += an_b.unsqueeze(1)
    return d_bc


@dataclass
class Nearest:
    """Nearest (and second-nearest) reference row of every query row.

    ``sqdist_N`` / ``second_sqdist_N`` are exact float64 squared Euclidean distances;
    ``second_*`` is ``inf`` / -1 where the reference set has a single usable row.
    """

    idx_N: np.ndarray
    sqdist_N: np.ndarray
    second_idx_N: np.ndarray
    second_sqdist_N: np.ndarray
    dim: int

    @property
    def psnr_N(self) -> np.ndarray:
        """PSNR to the nearest row, peak 1 (Eq. 9's PSNR(X⁽ⁿ⁾, X̂⁽ⁿ⁾)); +inf for exact copies."""
        return psnr_from_sqdist(self.sqdist_N, self.dim)

    @property
    def dist_N(self) -> np.ndarray:
        return np.sqrt(self.sqdist_N)

    @property
    def second_dist_N(self) -> np.ndarray:
        return np.sqrt(self.second_sqdist_N)


def _batches(n: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(lo + size, n)


def nearest(query, ref, exclude=None, batch: int = GEN_BATCH,
            chunk: int = TRAIN_CHUNK, candidates: int = CANDIDATES) -> Nearest:
    """Nearest and second-nearest row of ``ref`` for every row of ``query``.

    ``exclude`` (int array, one entry per query row, or None) names a ``ref`` row that
    query row must skip, e.g. its own index when ``query`` is a subset of ``ref``; -1
    skips nothing. Ties in exact distance go to the lower index.
    """
    r = as_rows(ref)
    q = r if query is ref else Rows(query.t_ND if isinstance(query, Rows) else query, center=r.center_D)
    if q.dim != r.dim:
        raise ValueError(f"query rows have {q.dim} values, reference rows {r.dim}")
    if r.n == 0:
        raise ValueError("the reference set is empty")
    excl = None
    if exclude is not None:
        excl = torch.as_tensor(np.asarray(exclude, dtype=np.int64))
        if excl.shape != (q.n,):
            raise ValueError(f"exclude has shape {tuple(excl.shape)}, expected ({q.n},)")
    k = max(2, min(candidates, r.n))
    best_v = torch.full((q.n, k), float("inf"))
    best_i = torch.full((q.n, k), -1, dtype=torch.int64)
    with torch.no_grad():
        for clo, chi in _batches(r.n, chunk):
            r_cD = r.chunk(clo, chi)
            rn_c = (r_cD * r_cD).sum(1)
            kk = min(k, chi - clo)
            for blo, bhi in _batches(q.n, batch):
                d_bc = approx_sqdist(q.chunk(blo, bhi), r_cD, rn_c)
                if excl is not None:
                    e_b = excl[blo:bhi]
                    hit = ((e_b >= clo) & (e_b < chi)).nonzero(as_tuple=True)[0]
                    d_bc[hit, e_b[hit] - clo] = float("inf")
                v, i = torch.topk(d_bc, kk, dim=1, largest=False, sorted=False)
                v = torch.cat([best_v[blo:bhi], v], 1)
                i = torch.cat([best_i[blo:bhi], i + clo], 1)
                v, sel = torch.topk(v, k, dim=1, largest=False, sorted=False)
                best_v[blo:bhi], best_i[blo:bhi] = v, i.gather(1, sel)
        # exact float64 re-ranking of the float32 candidates
        valid = torch.isfinite(best_v) & (best_i >= 0)
        qi = torch.arange(q.n).unsqueeze(1).expand(-1, k)
        ex = torch.full((q.n, k), float("inf"), dtype=torch.float64)
        ex[valid] = exact_sqdist(q, qi[valid], r, best_i[valid])
    return rank_candidates(best_v, best_i, ex, r.n, r.dim)


def rank_candidates(best_v: torch.Tensor, best_i: torch.Tensor, best_x: torch.Tensor, n: int, dim: int) -> Nearest:
    """The final step of :func:`nearest` (and of :func:`fscert.metrics.sharded.nearest_sharded`):
    the k float32 candidates of each row (``best_v``, ``best_i``; −1 / inf where none) ranked by
    (exact distance ``best_x``, index); the first two are the nearest and second nearest."""
    valid = torch.isfinite(best_v) & (best_i >= 0)
    ex = torch.where(valid, best_x, torch.full_like(best_x, float("inf")))
    idx_key = torch.where(valid, best_i, torch.full_like(best_i, n))
    order_t = torch.from_numpy(np.lexsort((idx_key.numpy(), ex.numpy()), axis=1))
    ex = ex.gather(1, order_t)
    bi = torch.where(valid, best_i, torch.full_like(best_i, -1)).gather(1, order_t)
    return Nearest(idx_N=bi[:, 0].numpy().astype(np.int64), sqdist_N=ex[:, 0].numpy(),
                   second_idx_N=bi[:, 1].numpy().astype(np.int64), second_sqdist_N=ex[:, 1].numpy(),
                   dim=dim)


def nearest_train(gen, train, batch: int = GEN_BATCH, chunk: int = TRAIN_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Nearest training row (int64) and its PSNR (float64, peak 1, +inf for copies) per generated row."""
    nn = nearest(gen, train, batch=batch, chunk=chunk)
    return nn.idx_N, nn.psnr_N


def nearest_other(x, batch: int = GEN_BATCH, chunk: int = TRAIN_CHUNK) -> Nearest:
    """Each row's nearest *other* row in the same set (own index excluded; duplicates count)."""
    r = as_rows(x)
    return nearest(r, r, exclude=np.arange(r.n), batch=batch, chunk=chunk)


def pairwise_sqdist(a, b=None) -> np.ndarray:
    """Full N×M matrix of exact float64 squared distances (small sets: memory N·M·8 bytes)."""
    ra = Rows(a.t_ND if isinstance(a, Rows) else a, center=torch.zeros(1))
    rb = ra if b is None else Rows(b.t_ND if isinstance(b, Rows) else b, center=torch.zeros(1))
    if ra.dim != rb.dim:
        raise ValueError(f"rows have {ra.dim} and {rb.dim} values")
    ia = torch.arange(ra.n).repeat_interleave(rb.n)
    ib = torch.arange(rb.n).repeat(ra.n)
    return exact_sqdist(ra, ia, rb, ib).numpy().reshape(ra.n, rb.n)


def pairwise_psnr(a, b=None) -> np.ndarray:
    """N×M PSNR matrix (peak 1) between the rows of ``a`` and ``b`` (``b=None``: ``a`` with itself).

    Generated-vs-generated PSNR as used by M-UIR (Eq. 10); the diagonal of ``a`` with
    itself is +inf. For large sets use :func:`fscert.metrics.uir.m_uir_masks`, which never
    forms the full matrix.
    """
    s = pairwise_sqdist(a, b)
    return psnr_from_sqdist(s, Rows(a).dim if not isinstance(a, Rows) else a.dim)
