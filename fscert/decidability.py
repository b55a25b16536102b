"""Whether a threshold γ is decidable with a certificate's decoder (its fidelity floor), and the
per-image badge rule that follows from it (issue 12 items 3 and 7).

A decoder that reproduces the training images from their own latents at a median 17.6 dB
cannot produce an output within 25 dB of a typical training image, so "no near-copy at
25 dB" says nothing about memorization. The certificate records the reconstruction PSNR of
every training image (dataset ``recon_psnr``) and the ``fidelity`` attribute
(:mod:`fscert.fidelity`); this module reads them. Guarantees: a γ is decidable only where the
record says so (``decidable``, else median ≥ γ); an absent or uncomputed record makes every γ
unknown (None), never decidable; :func:`badge_codes` never gives "novel" at a γ recorded as
not decidable, nor for an image whose nearest training image's own reconstruction is below γ.
"""
from __future__ import annotations

import numpy as np

from .certificate import Certificate, attr_json
from .figure_words import db, exact_int, finite, gamma_lookup, gname, psnr_value, sentence_case

#: per-image badge codes (:func:`badge_codes`)
BADGE_COPY, BADGE_NOVEL, BADGE_NOT_DECIDABLE, BADGE_NO_COPY_FOUND = 0, 1, 2, 3


def fidelity_record(cert: Certificate) -> dict | None:
    """The certificate's ``fidelity`` attribute (a dict, :mod:`fscert.fidelity`), or None when it
    was not recorded (written before fscert recorded it). A record with ``status`` "unknown" is
    returned as is: its figures are null, so nothing is decidable from it."""
    f = attr_json(cert, "fidelity")
    return f if isinstance(f, dict) else None


def fidelity_unknown(fid: dict | None) -> str | None:
    """Why the fidelity floor is unknown ("not recorded", or the record's reason), or None when known."""
    if fid is None:
        return "it is not recorded in this certificate"
    if fid.get("status") == "unknown" or psnr_value(fid.get("psnr_median")) is None:
        reason = fid.get("reason")
        return f"it was not computed ({reason})" if isinstance(reason, str) and reason else "it was not computed"
    return None


def decidable_at(fid: dict | None, g: float) -> bool | None:
    """Whether the decoder can reach γ: the record's ``decidable`` entry, else median PSNR ≥ γ;
    None when the fidelity floor is not recorded."""
    if fid is None:
        return None
    d = gamma_lookup(fid.get("decidable"), g)
    if isinstance(d, (bool, np.bool_)):
        return bool(d)
    med = psnr_value(fid.get("psnr_median"))
    return None if med is None else med >= float(g)


def recon_psnr(cert: Certificate) -> np.ndarray | None:
    """Per training image, the PSNR of the decoder's reconstruction of it (``extra["recon_psnr"]``)."""
    r = cert.extra.get("recon_psnr")
    return None if r is None else np.asarray(r, np.float64).reshape(-1)


def badge_codes(flags: np.ndarray | None, nearest: np.ndarray | None, gammas: list[float],
                decidable: list[bool | None], recon: np.ndarray | None) -> np.ndarray | None:
    """(G, K) uint8 per-image badge per γ: :data:`BADGE_COPY` where flagged (PSNR ≥ γ); else
    :data:`BADGE_NOT_DECIDABLE` where γ is not decidable or the image's nearest training image's
    own reconstruction PSNR is below γ; :data:`BADGE_NOVEL` where γ is decidable (or that
    reconstruction reaches γ); :data:`BADGE_NO_COPY_FOUND` where neither is known.
    Guarantee: never :data:`BADGE_NOVEL` at a γ recorded as not decidable. None without flags."""
    if flags is None or flags.ndim != 2 or flags.shape[1] < len(gammas):
        return None
    k = len(flags)
    per_image = None
    if recon is not None and nearest is not None and len(nearest) == k:
        idx = np.asarray(nearest, np.int64)
        ok = (idx >= 0) & (idx < len(recon))
        per_image = np.full(k, np.nan)
        per_image[ok] = recon[idx[ok]]
    out = np.empty((len(gammas), k), np.uint8)
    for j, g in enumerate(gammas):
        d = decidable[j] if j < len(decidable) else None
        base = np.full(k, {True: BADGE_NOVEL, False: BADGE_NOT_DECIDABLE, None: BADGE_NO_COPY_FOUND}[d], np.uint8)
        if per_image is not None and d is not False:
            known = ~np.isnan(per_image)
            base[known & (per_image >= g)] = BADGE_NOVEL
            base[known & (per_image < g)] = BADGE_NOT_DECIDABLE
        out[j] = np.where(flags[:, j].astype(bool), BADGE_COPY, base)
    return out


def fidelity_words(fid: dict | None, gammas: list[float]) -> str:
    """The fidelity floor in one paragraph: the median reconstruction PSNR, its spread, and per γ
    whether a verdict is possible; "not recorded" when the certificate has no record."""
    why = fidelity_unknown(fid)
    if why is not None or fid is None:
        return ("The decoder's fidelity floor (how well it reproduces the training images from their own latents) "
                f"is unknown: {why}. An absence of near-copies therefore cannot be read as novelty.")
    med = psnr_value(fid.get("psnr_median"))
    n = exact_int(fid.get("n"))
    who = f"the {n} training images" if n is not None else "the training images"
    if med is None:                                    # (unreachable: fidelity_unknown says so)
        head = f"The decoder's reconstructions of {who}: median PSNR unknown."
    else:
        q = fid.get("psnr_quantiles") if isinstance(fid.get("psnr_quantiles"), dict) else {}
        q5, q95 = psnr_value(q.get("5")), psnr_value(q.get("95"))
        lo, hi = psnr_value(fid.get("psnr_min")), psnr_value(fid.get("psnr_max"))
        spread = []
        if q5 is not None and q95 is not None:
            spread.append(f"5–95 %: {db(q5)} to {db(q95)}")
        if lo is not None and hi is not None:
            spread.append(f"lowest {db(lo)}, highest {db(hi)}")
        head = (f"The decoder reproduces {who} at a median {db(med)} PSNR"
                + (f" ({'; '.join(spread)})" if spread else "") + ".")
    parts = [head]
    for g in gammas:
        d = decidable_at(fid, g)
        reach = finite(gamma_lookup(fid.get("reach"), g))
        share = f" ({100 * reach:.1f} % of the training images' own reconstructions reach it)" if reach is not None else ""
        if d is True:
            parts.append(f"At γ = {gname(g)} dB a verdict is possible{share}.")
        elif d is False:
            parts.append(f"At γ = {gname(g)} dB no verdict is possible with this decoder{share}: NOT DECIDABLE.")
        else:
            parts.append(f"At γ = {gname(g)} dB decidability is unknown{share}.")
    rule = fid.get("rule")
    if isinstance(rule, str) and rule.strip():
        parts.append(sentence_case(f"Rule: {rule.strip()}"))
    return " ".join(parts)
