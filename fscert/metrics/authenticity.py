"""Authenticity (AuthPct) of Alaa et al. 2022, as computed by dgm-eval's ``authpct``.

A generated sample g is *unauthentic* when it is closer to its nearest training sample t
than t is to its own nearest other training sample:
``d(g, t) ≤ min_{t' ≠ t} d(t, t')``. AuthPct is the percentage (0–100) of authentic
generated samples. Distances are Euclidean (rows of pixels or of user features), with the
nearest neighbours selected in float32 and their distances recomputed exactly
(:mod:`fscert.metrics.nearest`). Like dgm-eval, a generated sample is authentic only if
its distance is *strictly* larger than the training sample's own nearest-neighbour distance;
an exact copy is therefore always unauthentic.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .nearest import GEN_BATCH, Nearest, as_rows, nearest


@dataclass
class Authenticity:
    authpct: float               #: percentage of authentic generated samples, 0–100
    authentic_N: np.ndarray      #: bool per generated sample
    train_nn_sqdist_N: np.ndarray  #: per generated sample: its nearest training sample's squared
    #: distance to that sample's own nearest other training sample


def authenticity(train, gen, gen_nearest: Nearest | None = None, batch: int = GEN_BATCH,
                 search=None) -> Authenticity:
    """AuthPct of ``gen`` with respect to ``train`` (needs at least two training rows).

    ``gen_nearest`` may pass an already computed :func:`nearest` (gen → train) result.
    Only the training samples that are some generated sample's nearest neighbour need
    their own nearest-other distance, so the cost is at most that of the gen → train search.
    ``search(query, ref, exclude)``: the train → train search to use (default :func:`nearest`;
    :func:`fscert.metrics.sharded.nearest_sharded` on a cluster gives the same result).
    """
    tr = as_rows(train)
    if tr.n < 2:
        raise ValueError("authenticity needs at least two training samples")
    nn = gen_nearest if gen_nearest is not None else nearest(gen, tr, batch=batch)
    used, inv = np.unique(nn.idx_N, return_inverse=True)
    query = tr.t_ND[torch.from_numpy(used)]
    own = nearest(query, tr, exclude=used, batch=batch) if search is None else search(query, tr.t_ND, used)
    r_N = own.sqdist_N[inv]
    authentic = r_N < nn.sqdist_N
    pct = 100.0 * float(authentic.mean()) if authentic.size else float("nan")
    return Authenticity(authpct=pct, authentic_N=authentic, train_nn_sqdist_N=r_N)


def authpct(train, gen) -> float:
    """Percentage (0–100) of authentic generated samples (dgm-eval ``authpct``)."""
    return authenticity(train, gen).authpct
