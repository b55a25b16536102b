"""The decoder's fidelity floor, and near-copies of its reconstructions (issue 12, item 3).

A certificate is only as sharp as its decoder: if the final (fine-tuned) decoder reproduces a
training image x_t from x_t's *own* ±1 latent z_t only at 18 dB, no output can be expected to
come within 25 dB of x_t, and "no near-copy at γ = 25 dB" says nothing about memorization.
So every certificate records the **reconstruction PSNR** of each training image,

    PSNR_t = PSNR(d(z_t), x_t)          (paper Eq. 9's PSNR, peak 1, in the comparison geometry),

with d the certificate's canonical decode (float64, uint8 pixels, :func:`fscert.blocks.decode_exact`)
and the comparison over the compared region (:mod:`fscert.geometry`). Stored:

* dataset ``recon_psnr`` (float64, one per training image; +inf where d(z_t) = x_t exactly,
  written ``Infinity`` in the JSON attribute)
  and ``train_latents`` (int8, the z_t it was computed from);
* attribute ``fidelity`` (JSON): n, mean, median, min, max and the 5/25/75/95 % quantiles of
  PSNR_t, ``reach`` (per γ: the fraction of training images with PSNR_t ≥ γ), ``decidable``
  (per γ: true iff the median PSNR_t ≥ γ, :data:`RULE`) and ``rule``; ``status`` "unknown" with
  a ``reason`` (every figure null, never 0) where the decoder, the training images or their
  latents were not given.

**Near-copies of the reconstructions.** d(z_t) is what the generator can actually output for
x_t; an output within γ of d(z_t) is a near-copy of the generator's own rendering of a
training image, even where the decoder is too blurry for it to come within γ of x_t itself.
For a listed certificate each listed image gets a flag per γ (dataset ``recon_flags``, bool
K×G: PSNR to the nearest reconstruction ≥ γ), and the attributes ``recon_near_copies`` (per γ:
how many listed images are flagged) and ``recon_memorization_mass`` (per γ: their exact total
probability). For a searched certificate the near-copy search (:mod:`fscert.nearcopy`) runs
again with the reconstructions as targets (one search per distinct training latent), and the
two maps hold its exact union figures, or null where it only proved an interval
(``recon_verdict`` holds the intervals and the reasons). Where no figure covers every
reachable image (count-only, partial listing) the maps hold null.
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from .errors import FscertError
from .geometry import Geometry, Targets, paired_psnr

#: the decidability rule, in words (recorded in ``fidelity["rule"]``)
RULE = ("a threshold γ is decidable when the median reconstruction PSNR of the training images (each image's own "
        "±1 latent decoded by the final model, compared in the certificate's geometry) is at least γ; below it the "
        "decoder cannot reproduce even a typical training image within γ, so finding no near-copy at γ is expected "
        "whether or not the generator memorizes (use a sharper decoder, e.g. more latent channels)")
#: the quantiles recorded beside the median (percent)
QUANTILES = (5, 25, 75, 95)


def gamma_keys(gammas) -> list[str]:
    from .audit import gamma_key

    return [gamma_key(g) for g in gammas]


# ----------------------------------------------------------------------------- reconstruction PSNR


def check_train_latents(model, train: np.ndarray, train_latents: np.ndarray, source: str = "training latents"
                        ) -> np.ndarray:
    """One ±1 latent per training image, of the model's latent shape (one-line errors)."""
    from .autoencoder import check_latent_shape
    from .latents import validate_latents

    z = validate_latents(train_latents, source)
    check_latent_shape(model.config, z.shape)
    if len(z) != len(train):
        raise FscertError(f"{source}: {len(z)} latents for {len(train)} training images (one latent per training "
                          "image, in the same order: the file `fscert encode` wrote for these images)")
    return z


def reconstructions(model, train_latents: np.ndarray, batch: int = 256) -> np.ndarray:
    """d(z_t) for every training latent: the certificate's canonical uint8 images (C×H×W canvas)."""
    from .blocks import decode_canonical

    return decode_canonical(model, np.asarray(train_latents, np.int8), batch=batch)


def recon_psnr(recon_u8: np.ndarray, train: np.ndarray, geometry: Geometry) -> np.ndarray:
    """PSNR_t of each reconstruction to its own training image, over the compared region."""
    from .blocks import generated_values

    return paired_psnr(generated_values(recon_u8), np.asarray(train, np.float32), geometry)


def quantile(sorted_values: np.ndarray, q: float) -> float:
    """numpy's default ("linear") quantile of sorted values, also where values are +inf (an
    exact reconstruction): between a finite value and +inf it is +inf, never inf − inf = NaN."""
    n = len(sorted_values)
    pos = q * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    a, b, t = float(sorted_values[lo]), float(sorted_values[hi]), pos - lo
    if a == b or t == 0:
        return a
    if math.isinf(b):                              # a finite, b = +inf: any point past a is +inf
        return b
    diff = b - a
    return a + diff * t if t < 0.5 else b - diff * (1 - t)


def fidelity_record(psnr: np.ndarray, gammas, geometry: Geometry | None = None, latents_sha256: str = "") -> dict:
    """The ``fidelity`` attribute from the per-image reconstruction PSNRs (module docstring)."""
    p = np.sort(np.asarray(psnr, np.float64))
    if len(p) == 0 or np.isnan(p).any():
        raise FscertError("reconstruction PSNRs must be a non-empty array of numbers")
    keys = gamma_keys(gammas)
    med = quantile(p, 0.5)
    mean = float(p.mean()) if np.isfinite(p).all() else math.inf
    rec = {"status": "computed", "reason": None, "n": int(len(p)), "psnr_mean": mean, "psnr_median": med,
           "psnr_min": float(p[0]), "psnr_max": float(p[-1]),
           "psnr_quantiles": {str(q): quantile(p, q / 100) for q in QUANTILES},
           "reach": {k: float((p >= g).mean()) for k, g in zip(keys, gammas)},
           "decidable": {k: bool(med >= g) for k, g in zip(keys, gammas)},
           "rule": RULE, "latents_sha256": latents_sha256}
    where = f" ({geometry.words})" if geometry is not None else ""
    undecidable = [k for k, g in zip(keys, gammas) if not med >= g]
    rec["words"] = (f"the final decoder reproduces its {len(p)} training images from their own latents at a median "
                    f"{med:.2f} dB (min {p[0]:.2f}, max {p[-1]:.2f}){where}"
                    + (f"; γ = {', '.join(undecidable)} dB lie above that median, so no near-copy there is "
                       "expected whatever the generator memorizes" if undecidable else
                       "; every γ is at or below that median, so each is decidable"))
    return rec


def unknown_record(gammas, reason: str) -> dict:
    """The ``fidelity`` attribute where it could not be computed: every figure null, and why."""
    keys = gamma_keys(gammas)
    return {"status": "unknown", "reason": reason, "n": None, "psnr_mean": None, "psnr_median": None,
            "psnr_min": None, "psnr_max": None, "psnr_quantiles": {str(q): None for q in QUANTILES},
            "reach": {k: None for k in keys}, "decidable": {k: None for k in keys}, "rule": RULE,
            "latents_sha256": None, "words": f"decoder fidelity unknown: {reason}"}


# ----------------------------------------------------------------------------- into a certificate


def add_fidelity(cert, inputs, cfg, geometry: Geometry | None, progress: bool = False, recon: bool = True,
                 client=None, checkpoint=None) -> None:
    """Fidelity and reconstruction near-copies of ``cert`` (module docstring), from ``inputs``
    (:class:`fscert.enumerate.Inputs`: model, training images, training latents) and ``cfg``.

    Always sets ``fidelity`` and, with ``recon``, the two ``recon_*`` maps (null where not
    computed, with the reason in ``fidelity["reason"]`` / ``recon_verdict``). ``checkpoint``: a
    :class:`fscert.nearcopy_checkpoint.SearchCheckpoint` for the search over the reconstructions."""
    from .certificate import latents_sha256
    from .verdict import SCOPE_COMPLETE, SCOPE_SEARCHED, verdict_scope

    gammas = tuple(float(g) for g in (cert.gammas or cfg.gammas))
    keys = gamma_keys(gammas)
    model, train, z = inputs.model, inputs.train, inputs.train_latents
    reason = ("no decoder was given (the certificate lists latents only)" if model is None else
              "no training images were given" if train is None else
              "the training images' own latents were not given (fscert enumerate --train-latents: the file "
              "`fscert encode` wrote, that E was drawn from)" if z is None else "")
    if reason:
        cert.attrs["fidelity"] = json.dumps(unknown_record(gammas, reason))
        if recon:
            _recon_maps(cert, keys, None, None, {"scope": "unknown", "words": f"not computed: {reason}"})
        return
    assert geometry is not None
    z = check_train_latents(model, train, z)
    rendered = reconstructions(model, z, batch=cfg.batch)
    psnr = recon_psnr(rendered, train, geometry)
    h = latents_sha256(z)
    cert.extra["train_latents"] = z
    cert.extra["recon_psnr"] = np.asarray(psnr, np.float64)
    cert.attrs["train_latents_sha256"] = h
    cert.attrs["fidelity"] = json.dumps(fidelity_record(psnr, gammas, geometry, h))
    if not recon:
        return
    from .blocks import generated_values

    targets = Targets(generated_values(rendered), geometry)
    scope = verdict_scope(cert.attrs)
    if scope == SCOPE_SEARCHED:
        _recon_search(cert, inputs, cfg, targets, z, gammas, progress, client, checkpoint)
    elif cert.images is not None and len(cert.images):
        _recon_flags(cert, targets, gammas, complete=scope == SCOPE_COMPLETE)
    else:
        why = "nothing was listed (the certificate only counts the reachable images)"
        _recon_maps(cert, keys, None, None, {"scope": "not-examined", "words": f"not examined: {why}"})


def _recon_maps(cert, keys: list[str], count: dict | None, mass: dict | None, verdict: dict) -> None:
    cert.attrs["recon_near_copies"] = json.dumps(count if count is not None else {k: None for k in keys})
    cert.attrs["recon_memorization_mass"] = json.dumps(mass if mass is not None else {k: None for k in keys})
    cert.attrs["recon_verdict"] = json.dumps(verdict)


def _recon_flags(cert, targets: Targets, gammas: tuple[float, ...], complete: bool) -> None:
    """Listed images: the flag per γ (PSNR to the nearest reconstruction ≥ γ) and, for a
    complete listing, the count and exact mass of the flagged images."""
    from .blocks import generated_values
    from .metrics import nearest_train, passing_mask

    g = targets.geometry
    _, psnr = nearest_train(g.rows(generated_values(cert.images)), g.rows(targets.canvas))
    flags = np.stack([~passing_mask(psnr, gm) for gm in gammas], 1) if len(gammas) else \
        np.zeros((len(psnr), 0), bool)
    cert.extra["recon_flags"] = np.ascontiguousarray(flags, bool)
    keys = gamma_keys(gammas)
    if not complete:
        _recon_maps(cert, keys, None, None, {"scope": "not-examined", "words": "not examined: only part of the "
                                             "reachable images was listed, so no figure covers them all"})
        return
    count = {k: int(flags[:, j].sum()) for j, k in enumerate(keys)}
    mass = {k: float(cert.prob[flags[:, j]].sum()) for j, k in enumerate(keys)}
    _recon_maps(cert, keys, count, mass, {"scope": "complete", "words": "every reachable image was compared with "
                                          "every training image's reconstruction"})


def _recon_search(cert, inputs, cfg, targets: Targets, z: np.ndarray, gammas: tuple[float, ...],
                  progress: bool, client=None, checkpoint=None) -> None:
    """Searched certificate: the near-copy search with the reconstructions as targets."""
    from .nearcopy import NearCopyConfig, near_copy_search

    keys = gamma_keys(gammas)
    if not getattr(cfg, "recon_search", True):
        _recon_maps(cert, keys, None, None, {"scope": "unknown", "words": "not computed: the search over the "
                                             "reconstructions was turned off (--no-recon-search)"})
        return
    _, first = np.unique(z.reshape(len(z), -1), axis=0, return_index=True)
    first = np.sort(first)                                   # one search per distinct training latent
    tg = Targets(targets.canvas[first], targets.geometry)
    E = inputs.empirical
    ncfg = NearCopyConfig(gammas=gammas, max_listed=int(cfg.max_images or 100_000))
    res = near_copy_search(E.latents, E.counts, cfg.rho, inputs.model, tg, ncfg,
                           float(cert.attrs["dead_end_mass"]), progress=progress, client=client, checkpoint=checkpoint)
    count, mass, per = {}, {}, {}
    for k in keys:
        u = res.union[k]
        count[k] = int(u["count_low"]) if u["exact"] else None
        mass[k] = float(u["mass_low"]) if u["exact"] else None
        per[k] = {"exact": bool(u["exact"]), "count_low": u["count_low"], "count_high": u["count_high"],
                  "mass_low": float(u["mass_low"]), "mass_high": float(u["mass_high"]), "reason": u["reason"]}
    _recon_maps(cert, keys, count, mass, {"scope": "searched", "targets": int(len(first)),
                                          "words": f"every reachable image was searched for near-copies of the "
                                                   f"{len(first)} distinct reconstructions without listing",
                                          "per_gamma": per})


# ----------------------------------------------------------------------------- checks


#: attributes of the comparison geometry and of the decoder's fidelity, recomputed by verify
FIDELITY_ATTRS = ("geometry", "fidelity", "train_latents_sha256", "recon_near_copies", "recon_memorization_mass",
                  "recon_verdict")


def check_source(E, train_latents: np.ndarray | None) -> None:
    """The training latents must be the set E was drawn from, where E records its fingerprint
    (``source_latents_sha256``, written by `fscert draw`); one-line error otherwise."""
    from .certificate import latents_sha256

    want = E.attrs.get("source_latents_sha256") if E.attrs else None
    if train_latents is None or not want:
        return
    got = latents_sha256(np.asarray(train_latents, np.int8))
    if got != str(want):
        raise FscertError(f"the training latents (sha256 {got[:12]}…) are not the latents E was drawn from "
                          f"(E records {str(want)[:12]}…): give the file `fscert encode` wrote for these images")


def verify_sources(cert, latents, geometry: Geometry | None, recorded: Geometry | None,
                   train_latents: np.ndarray | None) -> tuple[np.ndarray | None, list[str]]:
    """For :func:`fscert.enumerate.verify`: the training latents to recompute the fidelity from (the
    given ones, else those stored in the certificate) and the differences between them, E's
    record of its source (``latents``: E, or None), and the recorded geometry against the one
    the training images call for (``geometry``; files without the attribute are not judged)."""
    from .certificate import latents_sha256
    from .verify import _describe, _same_array

    diffs = []
    tz = cert.extra.get("train_latents")
    if train_latents is not None:
        given = np.asarray(train_latents, np.int8)
        if tz is not None and not _same_array(given, tz):
            diffs.append(f"dataset train_latents: {_describe(tz, given)} from the training latents given")
        tz = given
    want = latents.attrs.get("source_latents_sha256") if latents is not None else None
    if tz is not None and want and latents_sha256(tz) != str(want):
        diffs.append(f"train_latents: sha256 {latents_sha256(tz)}, E was drawn from latents {want}")
    if geometry is not None and recorded is not None and "geometry" in cert.attrs:
        if (geometry.compared_hw, geometry.offset, geometry.how) != (recorded.compared_hw, recorded.offset,
                                                                    recorded.how):
            diffs.append(f"geometry: the certificate says {recorded.words!r}; the training images are stored "
                         f"so that {geometry.words!r}")
    return tz, diffs


def fidelity_of(cert) -> dict[str, Any] | None:
    """The certificate's ``fidelity`` attribute (None: written before fscert recorded it)."""
    from .certificate import attr_json

    v = attr_json(cert, "fidelity")
    return v if isinstance(v, dict) else None
