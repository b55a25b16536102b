"""Brute-force reference for the near-copy search: list every reachable latent, decode every
one of them (the certificate's canonical float64 decode of the whole latent), and compare it
with every training image (the metrics' exact float64 PSNR). Obviously correct, exponential.

``region`` = (top, left, height, width): compare only that rectangle of the canvas — each
decoded image and each training image is cropped first, then compared as whole images (the
comparison geometry of fscert.geometry, written here without it)."""
from __future__ import annotations

import numpy as np

from fscert.blocks import decode_exact, generated_values
from fscert.enumeration import enumerate_reachable
from fscert.metrics import pairwise_psnr


def crop(x: np.ndarray, region: tuple[int, int, int, int] | None) -> np.ndarray:
    """N×C×H×W → the rectangle ``region`` (all of it when None), one row per image."""
    x = np.asarray(x)
    if region is not None:
        top, left, h, w = region
        x = x[:, :, top:top + h, left:left + w]
    return np.ascontiguousarray(x).reshape(len(x), -1)


def brute_force(latents, counts, rho, model, train, gammas, region=None):
    """Per γ: {t: {latent bytes: prob}}, best PSNR per t, union mass and count, and the listing."""
    lst = enumerate_reachable(latents, rho, counts, max_images=None)
    imgs = generated_values(decode_exact(model, lst.latents))
    psnr_KS = pairwise_psnr(crop(imgs, region), crop(np.asarray(train, np.float32), region))
    out = {"listing": lst, "psnr": psnr_KS, "best": psnr_KS.max(0) if len(imgs) else None, "per_gamma": {}}
    for g in gammas:
        near = psnr_KS >= g
        per_t = {t: {lst.latents[k].tobytes(): float(lst.prob[k]) for k in np.flatnonzero(near[:, t])}
                 for t in range(len(train))}
        union = near.any(1)
        out["per_gamma"][g] = {"per_t": per_t, "union_count": int(union.sum()),
                               "union_mass": float(lst.prob[union].sum()), "union_rows": np.flatnonzero(union)}
    return out
