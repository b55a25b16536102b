"""The held-out baseline of a certificate (issue 12 item 5): how close real images the generator
never saw come to the training images, compared exactly as the certificate compares its outputs.

A near-copy rate means memorization only against what genuinely new images score: on chest
X-rays about 3 % of held-out images are themselves within 25 dB of some training image.
:func:`heldout_baseline` computes, for every γ, how many held-out images are within γ dB of
their nearest training image (PSNR over the certificate's comparison geometry,
:mod:`fscert.geometry`), with the median PSNR, and says it in words. The certificate stores it
as the ``baseline`` attribute (JSON); readers print its ``words``.
"""
from __future__ import annotations

import numpy as np

from .errors import FscertError


def heldout_baseline(train_NCHW: np.ndarray, test_NCHW: np.ndarray, gammas, geometry, source: str) -> dict:
    """The baseline record: ``n``, ``source``, ``psnr_median``, ``per_gamma`` {γ key: {"near_copies",
    "rate"}} and ``words``. Both sets are float32 N×C×H×W on the model's canvas; they are cropped
    to ``geometry`` and compared row by row (PSNR peak 1, the metrics' own nearest search)."""
    from .audit import gamma_key
    from .metrics.nearest import nearest

    if test_NCHW.shape[1:] != train_NCHW.shape[1:]:
        raise FscertError(f"held-out images are {'×'.join(map(str, test_NCHW.shape[1:]))} but training images are "
                          f"{'×'.join(map(str, train_NCHW.shape[1:]))}; the baseline compares them as they are")
    t = geometry.crop(train_NCHW).reshape(len(train_NCHW), -1)
    q = geometry.crop(test_NCHW).reshape(len(test_NCHW), -1)
    psnr_N = nearest(q, t).psnr_N
    n = int(len(psnr_N))
    per = {}
    parts = []
    for g in sorted(float(x) for x in gammas):
        c = int((psnr_N >= g).sum())
        per[gamma_key(g)] = {"near_copies": c, "rate": c / n}
        parts.append(f"{c} of {n} ({100 * c / n:.3g} %) within {gamma_key(g)} dB")
    med = float(np.median(psnr_N))
    words = (f"Held-out baseline: of {n} held-out real images the generator never saw ({source}), "
             + ", ".join(parts) + " of their nearest training image (median nearest-training PSNR "
             + (f"{med:.1f} dB" if np.isfinite(med) else "∞ dB") + "); the generator's near-copy figures "
             "point to memorization where they exceed these.")
    return {"n": n, "source": source, "psnr_median": med if np.isfinite(med) else None,
            "per_gamma": per, "words": words}
