"""Obviously-correct merge steps. Deduplication of listed near-copies (a dict keyed by each latent's bytes,
then ``np.lexsort`` on the raster token sequence): the reference for
:func:`fscert.nearcopy_union.dedupe`."""
from __future__ import annotations

import numpy as np


def dedupe_reference(per, shape):
    m, h, w = shape
    rows: dict[bytes, int] = {}
    lat_list, raw_list, pr, pt, pp = [], [], [], [], []
    for r in per:
        if r.latents is None:
            continue
        for k in range(len(r.latents)):
            key = r.latents[k].tobytes()
            j = rows.get(key)
            if j is None:
                j = rows[key] = len(lat_list)
                lat_list.append(r.latents[k])
                raw_list.append(r.raw_prob[k])
            pr.append(j), pt.append(r.index), pp.append(float(r.psnr[k]))
    n = len(lat_list)
    lat = np.stack(lat_list) if n else np.zeros((0, m, h, w), np.int8)
    raw = np.asarray(raw_list, np.float64)
    pair_row, pair_train, pair_psnr = np.asarray(pr, np.int64), np.asarray(pt, np.int64), np.asarray(pp, np.float64)
    order = np.lexsort(lat.transpose(0, 2, 3, 1).reshape(n, -1).T[::-1]) if n else np.zeros(0, np.int64)
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    pair_row = rank[pair_row] if n else pair_row
    o2 = np.lexsort((pair_train, pair_row))
    return lat[order], raw[order], pair_row[o2], pair_train[o2], pair_psnr[o2]


def overlap_reference(gen, train, prob, gammas):
    """Every (generated, training) pair's exact PSNR (the full matrix), then per training row and
    γ the number and mass of generated rows within γ: the reference for
    :func:`fscert.nearcopy_union.overlap`."""
    from fscert.nearcopy_union import psnr_matrix

    psnr = psnr_matrix(gen, train)
    return [[(int((psnr[:, i] >= g).sum()), float(prob[psnr[:, i] >= g].sum())) for g in gammas]
            for i in range(psnr.shape[1])]
