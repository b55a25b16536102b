"""Near-copies over every training image at once: deduplication and the union (paper Eq. 9;
DESIGN §7), for :func:`fscert.nearcopy.near_copy_search`.

Each training image's search (:class:`fscert.nearcopy.NearCopySearch`) either lists its
near-copies or brackets their count and mass. The memorization figures are about the union:
P[an output is within γ of some training image] and the number of such outputs.

* :func:`dedupe` — the listed near-copies of all training images, each latent once, in the
  listing's order, with every (near-copy, training image, PSNR) pair;
* :func:`union_bounds` — exact (deduplicated latents) when every training image's near-copies
  were listed; otherwise bounded: max_t ≤ union ≤ Σ_t, tightened by the listed part, by the
  listed near-copies also near an unlisted image (:func:`psnr_matrix`), and by groups of
  training images that cannot share a near-copy (:func:`disjoint_groups`); the reason is
  recorded.

Guarantee: the exact figures equal those of a full listing; a bounded figure's interval holds
the true union (the triangle inequality behind :func:`disjoint_groups` has a 1e-6 margin).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .metrics import pairwise_psnr
from .metrics.nearest import Rows, approx_sqdist, exact_sqdist, psnr_from_sqdist, sqdist_from_psnr
from .metrics.uir import _U32

if TYPE_CHECKING:                      # only for annotations: nearcopy imports this module
    from .nearcopy import TrainResult


def _renorm(raw: float, dead: float) -> float:
    return raw / (1.0 - dead)


def psnr_matrix(gen: np.ndarray, train: np.ndarray, pairs: int = 1 << 22) -> np.ndarray:
    """Exact PSNR (the metrics' float64 sums) of every generated row to every given training row,
    in blocks of at most ``pairs`` pairs."""
    g = gen.reshape(len(gen), -1)
    t = np.asarray(train, np.float32).reshape(len(train), -1)
    out = np.empty((len(g), len(t)))
    step = max(1, pairs // max(1, len(t)))
    for lo in range(0, len(g), step):
        out[lo:lo + step] = pairwise_psnr(g[lo:lo + step], t)
    return out


def overlap(gen: np.ndarray, train: np.ndarray, prob: np.ndarray, gammas, block: int = 4096) -> list:
    """Per given training row, per γ: (number, mass) of the generated rows within γ dB of it.

    Exact, without forming every pair's exact distance: a float32 matrix product
    (‖a‖² + ‖b‖² − 2a·b, rows centred on the training mean) keeps every pair whose distance could
    be within the smallest γ's budget, with the worst-case float32 rounding of length-D sums as
    margin (the bound :class:`fscert.metrics.uir._PairJudge` uses); the kept pairs' PSNR is then
    the exact float64 sum (:func:`fscert.metrics.nearest.exact_sqdist`), the same value
    :func:`psnr_matrix` gives. Millions of listed near-copies against a thousand training images
    take a matrix product instead of 10^12 float64 differences."""
    g_ND = torch.as_tensor(np.ascontiguousarray(gen.reshape(len(gen), -1)))
    t_ND = torch.as_tensor(np.ascontiguousarray(np.asarray(train, np.float32).reshape(len(train), -1)))
    n_t = len(t_ND)
    gs = [float(g) for g in gammas]
    cnt = np.zeros((n_t, len(gs)), np.int64)
    mass = np.zeros((n_t, len(gs)), np.float64)
    if n_t == 0 or len(g_ND) == 0:
        return [[(0, 0.0) for _ in gs] for _ in range(n_t)]
    center = t_ND.to(torch.float64).mean(0).float()
    rg, rt = Rows(g_ND, center=center), Rows(t_ND, center=center)
    dim = rg.dim
    thr = sqdist_from_psnr(min(gs), dim)
    b_cD = rt.chunk(0, n_t)
    bn_c = (b_cD * b_cD).sum(1)
    rtol = 4.0 * (dim + 2) * _U32
    prob = np.asarray(prob, np.float64)
    for lo in range(0, len(g_ND), block):
        a_bD = rg.chunk(lo, lo + block)
        an_b = (a_bD * a_bD).sum(1)
        d_bc = approx_sqdist(a_bD, b_cD, bn_c, an_b)
        tol = rtol * float(an_b.max() + bn_c.max()) + 1e-12
        r, c = (d_bc <= thr + tol).nonzero(as_tuple=True)
        if r.numel() == 0:
            continue
        psnr = psnr_from_sqdist(exact_sqdist(rg, r + lo, rt, c).numpy(), dim)
        r_np, c_np = r.numpy() + lo, c.numpy()
        for j, g in enumerate(gs):
            hit = psnr >= g
            cnt[:, j] += np.bincount(c_np[hit], minlength=n_t)
            mass[:, j] += np.bincount(c_np[hit], weights=prob[r_np[hit]], minlength=n_t)
    return [[(int(cnt[i, j]), float(mass[i, j])) for j in range(len(gs))] for i in range(n_t)]


def token_keys(lat_NMhw: np.ndarray, packed: bool) -> np.ndarray:
    """Each latent's raster token sequence (cell by cell, channels within a cell) as a byte row
    whose byte-wise (memcmp) order is the sequence's lexicographic order: one bit per value
    when every value is ±1 (``packed``), else one offset-binary byte per value."""
    n = len(lat_NMhw)
    t_NL = np.ascontiguousarray(lat_NMhw.transpose(0, 2, 3, 1)).reshape(n, -1)
    if packed:
        return np.packbits(t_NL > 0, axis=1)
    return t_NL.view(np.uint8) ^ np.uint8(0x80)


def latents_of_keys(keys_NB: np.ndarray, shape, packed: bool, rows: int = 1 << 17) -> np.ndarray:
    """Inverse of :func:`token_keys`: int8 latents (N, M, h, w), built ``rows`` rows at a time."""
    m, h, w = shape
    out = np.empty((len(keys_NB), m, h, w), np.int8)
    for lo in range(0, len(keys_NB), rows):
        k = keys_NB[lo:lo + rows]
        if packed:
            t = np.unpackbits(k, axis=1, count=m * h * w).view(np.int8) * np.int8(2) - np.int8(1)
        else:
            t = (k ^ np.uint8(0x80)).view(np.int8)
        out[lo:lo + rows] = t.reshape(len(k), h, w, m).transpose(0, 3, 1, 2)
    return out


def dedupe(per: list[TrainResult], shape) -> tuple[np.ndarray, ...]:
    """The listed near-copies of every training image, deduplicated, in the listing's order
    (lexicographic in the raster token sequence), with their raw probabilities (from the first
    training image listing each) and every (near-copy row, training image, PSNR) pair sorted by
    row then training index.

    Millions of near-copies fit: each latent is held as a packed byte key (:func:`token_keys`,
    56 bytes for M = 7 on 8×8 instead of 448) while they are sorted and deduplicated, and the
    int8 latents are rebuilt only for the distinct ones."""
    m, h, w = shape
    rs = [r for r in per if r.latents is not None and len(r.latents)]
    if not rs:
        e = np.zeros(0, np.int64)
        return np.zeros((0, m, h, w), np.int8), np.zeros(0), e, e.copy(), np.zeros(0)
    packed = all(bool(np.all((r.latents == 1) | (r.latents == -1))) for r in rs)
    keys_NB = np.concatenate([token_keys(r.latents, packed) for r in rs])
    raw_N = np.concatenate([np.asarray(r.raw_prob, np.float64) for r in rs])
    train_N = np.concatenate([np.full(len(r.latents), r.index, np.int64) for r in rs])
    psnr_N = np.concatenate([np.asarray(r.psnr, np.float64) for r in rs])
    void_N = keys_NB.view(np.dtype((np.void, keys_NB.shape[1]))).ravel()
    uniq, first, row_N = np.unique(void_N, return_index=True, return_inverse=True)
    del void_N, keys_NB
    lat = latents_of_keys(uniq.view(np.uint8).reshape(len(uniq), -1), shape, packed)
    row_N = row_N.reshape(-1).astype(np.int64, copy=False)
    o2 = np.lexsort((train_N, row_N))
    return lat, raw_N[first], row_N[o2], train_N[o2], psnr_N[o2]


def disjoint_groups(train: np.ndarray, budgets: list[float], chunk: int = 1024) -> list[np.ndarray]:
    """Per budget B: a group id per training image such that images in different groups have
    disjoint near-copy sets. An output within B of both x_t and x_t′ puts them within 2√B of
    each other (triangle inequality), so images farther apart than that can share no near-copy;
    groups are the connected components of "within 2√B" (with a 1e-6 relative margin)."""
    x = torch.from_numpy(np.asarray(train, np.float64).reshape(len(train), -1))
    n = len(x)
    out = []
    for b in budgets:
        parent = np.arange(n)

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for lo in range(0, n, chunk):
            d = torch.cdist(x[lo:lo + chunk], x).pow(2).numpy()
            ii, jj = np.nonzero(d <= 4 * b * (1 + 1e-6))
            for i, j in zip((ii + lo).tolist(), jj.tolist()):
                if i < j:
                    ri, rj = find(i), find(j)
                    if ri != rj:
                        parent[max(ri, rj)] = min(ri, rj)
        out.append(np.array([find(i) for i in range(n)]))
    return out


def union_bounds(per: list[TrainResult], gammas, flags: np.ndarray, prob: np.ndarray, dead: float,
           overlap: dict[int, list[tuple[int, float]]] | None = None,
           groups: list[np.ndarray] | None = None) -> dict[str, Any]:
    """Per γ: count and mass of outputs within γ of some training image, exact or [low, high].

    ``overlap[t][j]``: count and mass of the listed near-copies that are also within γ_j of an
    unlisted training image t; they are in the union already, so they are not counted twice.
    ``groups[j]`` (:func:`disjoint_groups`): unlisted images of different groups have disjoint
    sets, so the lower end adds each group's largest set; a group with one unlisted image whose
    figures are exact makes its part of the union exact."""
    out: dict[str, Any] = {}
    unlisted = [r for r in per if not r.listed]
    overlap = overlap or {}
    for j, g in enumerate(gammas):
        listed_count = int(flags[:, j].sum())
        listed_mass = float(prob[flags[:, j]].sum())
        key = str(int(g)) if float(g).is_integer() else repr(float(g))
        if not unlisted:
            out[key] = {"exact": True, "count_low": str(listed_count), "count_high": str(listed_count),
                        "mass_low": listed_mass, "mass_high": listed_mass, "reason": "every near-copy listed"}
            continue
        ov = [overlap.get(r.index, [(0, 0.0)] * len(gammas))[j] for r in unlisted]
        lows = [max(0, r.count_low[j] - o[0]) for r, o in zip(unlisted, ov)]        # outside the listed union
        highs = [r.count_high[j] - o[0] if r.count_high[j] >= 0 else -1 for r, o in zip(unlisted, ov)]
        mlow = [max(0.0, _renorm(r.mass_low[j], dead) - o[1]) for r, o in zip(unlisted, ov)]
        mhigh = [_renorm(r.mass_high[j], dead) - o[1] for r, o in zip(unlisted, ov)]
        unknown = any(v < 0 for v in highs) or any(not math.isfinite(v) for v in mhigh)
        gid = [int(groups[j][r.index]) if groups is not None else 0 for r in unlisted]
        best_c: dict[int, int] = {}
        best_m: dict[int, float] = {}
        for g_id, lo_c, lo_m in zip(gid, lows, mlow):
            best_c[g_id] = max(best_c.get(g_id, 0), lo_c)
            best_m[g_id] = max(best_m.get(g_id, 0.0), lo_m)
        c_lo = listed_count + sum(best_c.values())
        m_lo = listed_mass + math.fsum(best_m.values())
        c_hi = None if unknown else listed_count + sum(highs)
        m_hi = 1.0 if unknown else min(1.0, listed_mass + math.fsum(max(0.0, v) for v in mhigh))
        exact = c_hi is not None and c_lo == c_hi and m_hi - m_lo <= 1e-12 * max(m_hi, 1e-300)
        shared = len(set(gid)) < len(gid)
        out[key] = {"exact": bool(exact), "count_low": str(c_lo), "count_high": None if c_hi is None else str(c_hi),
                    "mass_low": m_lo if not exact else m_hi, "mass_high": m_hi,
                    "reason": (f"{len(unlisted)} training image(s) have too many near-copies to list; counted "
                               "exactly without listing, and no two of them are within 2√B of each other, so "
                               "their sets cannot overlap: the union is their exact sum" if exact else
                               f"{len(unlisted)} training image(s) have too many near-copies to list"
                               + ("; some of them are close enough to share near-copies, so the union is bounded "
                                  "by the largest set and the sum of the sets" if shared else
                                  "; their own counts are intervals (cost bins)")
                               + ("; some searches were too large, so the upper end is unknown" if unknown else ""))}
    return out
