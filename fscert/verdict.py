"""The memorization verdict of a certificate: what its figures cover, and the near-copy search.

Scopes (attribute ``verdict_scope``):

* ``complete`` — every reachable image was listed, decoded and compared (fscert.enumerate);
* ``searched`` — the reachable set was too large to list (or ``--near-copies-only``): the
  near-copy search (:mod:`fscert.nearcopy`) examined every reachable image without listing
  it; the figures are exact, or certified intervals [low, high], and say which;
* ``not-examined`` — counted only: no figure covers the set, and none is stored (null).

Every reader (the CLI, summary.json, the HTML report) words the figures' scope with
:func:`verdict_words`, so that wording lives here; the auditor's verdict built on it (per γ a
sentence with the counts, the decoder's fidelity floor, guarantees, assumptions, baseline) is
:func:`fscert.verdict_statement.statement`.
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable

import numpy as np

# ----------------------------------------------------------------------------- scope and words
#
# What a certificate's memorization figures (UIR, M-UIR, near-copies, memorization mass)
# cover. Every reader (the CLI, summary.json, the HTML report) words them with
# :func:`verdict_words`, so that the wording lives here. To add a scope (e.g. a near-copy
# search that bounds the figures without listing): a constant, a words function in
# ``_VERDICT_WORDS`` (it may read per-γ [lower, upper] attributes), and the writer that sets it.

SCOPE_COMPLETE = "complete"            # every reachable image listed (and, with a model and training images, checked)
SCOPE_NOT_EXAMINED = "not-examined"    # counted only, or listed in part: no image's verdict covers the whole set
SCOPE_SEARCHED = "searched"            # every reachable image covered by the near-copy search, without listing
#: per-γ JSON maps that hold figures (null where the scope gives no number)
VERDICT_MAPS = ("uir", "uir_weighted", "m_uir", "m_uir_weighted", "memorization_mass")
#: per-γ JSON attributes of the searched scope
SEARCH_MAPS = ("memorization_mass_low", "memorization_mass_high", "near_copy_count_low", "near_copy_count_high",
               "near_copy_exact", "near_copy_reason")


def listing_scope(attrs: dict, listed: int | None = None) -> str:
    """"complete" when the listing holds every reachable image, else "not-examined".

    From ``count_only``, ``listed_count`` (default ``listed``) and ``reachable_count``; a
    listing may exceed the reachable count (full support lists latents of probability 0)."""
    if attrs.get("count_only"):
        return SCOPE_NOT_EXAMINED
    n, reach = attrs.get("listed_count", listed), attrs.get("reachable_count")
    if reach is None:                                 # nothing claims more than what is listed
        return SCOPE_COMPLETE
    try:
        return SCOPE_COMPLETE if n is not None and int(n) >= int(str(reach)) else SCOPE_NOT_EXAMINED
    except ValueError:
        return SCOPE_NOT_EXAMINED


def verdict_scope(attrs: dict) -> str:
    """The certificate's ``verdict_scope`` (derived from the listing for files written before it
    existed); a file that claims "complete" without listing every reachable image is "not-examined"."""
    listed = listing_scope(attrs)
    stored = attrs.get("verdict_scope")
    if stored is None or (stored == SCOPE_COMPLETE and listed != SCOPE_COMPLETE):
        return listed
    return str(stored)


def has_figures(attrs: dict) -> bool:
    """Whether the per-γ figures are exact numbers about every reachable image."""
    return verdict_scope(attrs) == SCOPE_COMPLETE


def verdict_words(attrs: dict, gamma: float) -> str:
    """What the certificate says about memorization at threshold γ, in words (one line, no "γ = …" prefix)."""
    scope = verdict_scope(attrs)
    words = _VERDICT_WORDS.get(scope)
    if words is None:
        from . import __version__

        return (f"UIR, M-UIR, near-copies and memorization mass NOT SHOWN — the certificate's verdict scope "
                f"'{scope}' is unknown to fscert {__version__} (written by a newer fscert?)")
    return words(attrs, float(gamma))


def _count_words(count: Any) -> str:
    s = str(count)
    return f"{int(s):.3g}" if s.isdigit() and len(s) > 9 else s


def _complete_words(attrs: dict, gamma: float) -> str:
    return (f"complete — every one of the {_count_words(attrs.get('reachable_count'))} reachable images was "
            f"decoded and compared with the training images")


def _not_examined_words(attrs: dict, gamma: float) -> str:
    reach = str(attrs.get("reachable_count", "?"))
    try:
        listed = int(attrs.get("listed_count", 0) or 0)
    except (TypeError, ValueError):
        listed = 0
    if listed == 0:
        what = f"{_count_words(reach)} reachable images were counted, none was decoded or compared"
    else:
        what = f"only {listed} of the {_count_words(reach)} reachable images were listed, so no figure covers them all"
    try:
        raw = attrs.get("config") or "{}"
        from .enumerate import EnumerateConfig

        cfg = EnumerateConfig.from_json(raw if isinstance(raw, (str, dict)) else "{}")
        limited = cfg.max_images is not None and reach.isdigit() and int(reach) > cfg.max_images
        hint = f"use a larger --max-images than {cfg.max_images}" if limited else "run without --count-only"
    except (TypeError, ValueError, RecursionError):
        hint = "use a larger --max-images"
    return f"UIR, M-UIR, near-copies and memorization mass NOT EXAMINED — {what} ({hint} to list and check them)"


def _gamma_entry(attrs: dict, key: str, gamma: float) -> Any:
    from .audit import gamma_key

    v = attrs.get(key)
    try:
        m = json.loads(v) if isinstance(v, str) else (v or {})
    except ValueError:
        return None
    return m.get(gamma_key(gamma)) if isinstance(m, dict) else None


def _searched_words(attrs: dict, gamma: float) -> str:
    reach = _count_words(attrs.get("reachable_count", "?"))
    lo, hi = _gamma_entry(attrs, "near_copy_count_low", gamma), _gamma_entry(attrs, "near_copy_count_high", gamma)
    mlo, mhi = _gamma_entry(attrs, "memorization_mass_low", gamma), _gamma_entry(attrs, "memorization_mass_high", gamma)
    exact = bool(_gamma_entry(attrs, "near_copy_exact", gamma))
    if lo is None or mlo is None:
        return "near-copy search result missing from the certificate (NOT SHOWN)"
    if exact:
        return (f"searched every one of the {reach} reachable images without listing them: {_count_words(lo)} are "
                f"within {gamma:g} dB of a training image; memorization mass {float(mlo):.4g} (exact)")
    high = "unknown" if hi is None else _count_words(hi)
    mhigh = "1 (unknown)" if mhi is None else f"{float(mhi):.4g}"
    reason = _gamma_entry(attrs, "near_copy_reason", gamma) or ""
    return (f"searched every one of the {reach} reachable images without listing them: between {_count_words(lo)} "
            f"and {high} are within {gamma:g} dB of a training image; memorization mass in "
            f"[{float(mlo):.4g}, {mhigh}] (a certified interval, not an estimate: {reason})")


_VERDICT_WORDS: dict[str, Callable[[dict, float], str]] = {
    SCOPE_COMPLETE: _complete_words,
    SCOPE_NOT_EXAMINED: _not_examined_words,
    SCOPE_SEARCHED: _searched_words,
}




# ----------------------------------------------------------------------------- the searched verdict


#: ``best_kind`` codes: exact best PSNR; "at most" (no reachable output is better than the bound);
#: "at least" (a reachable output this good exists, a better one may: the state cap dropped states);
#: unknown
BEST_KINDS = ("exact", "at most", "at least", "unknown")


def add_search_verdict(cert, latents: np.ndarray, counts: np.ndarray | None, model, train: np.ndarray, cfg,
                       dead_end_mass: float, progress: bool = False, client=None, checkpoint=None) -> None:
    """Run the near-copy search for every training image and store it in ``cert`` (format 2).

    Datasets (:data:`fscert.certificate.SEARCH_SPEC`): every listed near-copy (``near_*``, at
    the smallest γ, with canonical images, nearest training image, PSNR and per-γ flags), every
    (near-copy, training image) pair, per training image the exposure P[output within γ of
    it] as [low, high] (equal when exact; NaN high: unknown) with the near-copy counts, and the
    best reachable output. Attributes: per γ the union's count and mass as [low, high] with
    ``near_copy_exact`` and ``near_copy_reason``; ``memorization_mass`` and ``uir`` hold the
    exact figure or null (never a number the search did not prove). ``client``: a Dask client
    the training images' searches run on (the same results, :mod:`fscert.nearcopy_sharded`).
    ``checkpoint``: a :class:`fscert.nearcopy_checkpoint.SearchCheckpoint` the finished searches
    are kept in, and resumed from."""
    from .audit import gamma_key
    from .nearcopy import NearCopyConfig, near_copy_search

    gammas = tuple(float(g) for g in cfg.gammas)
    ncfg = NearCopyConfig(gammas=gammas, max_listed=int(cfg.max_images or 100_000))
    res = near_copy_search(latents, counts, cfg.rho, model, train, ncfg, dead_end_mass, progress=progress,
                           client=client, checkpoint=checkpoint)
    col = [res.gammas.index(g) for g in gammas]                 # the search sorts γ; the certificate keeps cfg's order
    per = res.per_train
    norm = 1.0 - dead_end_mass
    s, g_n = len(per), len(gammas)
    exp_lo, exp_hi = np.zeros((s, g_n)), np.zeros((s, g_n))
    cnt_lo, cnt_hi = np.zeros((s, g_n)), np.zeros((s, g_n))
    for t, r in enumerate(per):
        for j, c in enumerate(col):
            exp_lo[t, j] = r.mass_low[c] / norm
            exp_hi[t, j] = r.mass_high[c] / norm if math.isfinite(r.mass_high[c]) else math.nan
            cnt_lo[t, j] = float(r.count_low[c])
            cnt_hi[t, j] = float(r.count_high[c]) if r.count_high[c] >= 0 else math.nan
    m, h, w = latents.shape[1:]
    best = np.zeros((s, m, h, w), np.int8)
    best_exact = np.array([r.best_exact for r in per], bool)
    best_kind = np.array([BEST_KINDS.index(r.best_kind) for r in per], np.int8)
    has_best = np.array([r.best_latent is not None for r in per], bool)
    for t, r in enumerate(per):
        if r.best_latent is not None:
            best[t] = r.best_latent
    c_cfg = model.config
    best_img = np.zeros((s, *c_cfg.image_shape), np.uint8)
    if has_best.any():
        best_img[has_best] = res.images_of(best[has_best])
    cert.extra.update(
        near_latents=res.latents, near_prob=res.prob, near_log_prob=res.log_prob, near_images=res.images,
        near_nearest_train=res.nearest_train, near_psnr=res.psnr, near_flags=np.ascontiguousarray(res.flags[:, col]),
        pair_row=res.pair_row, pair_train=res.pair_train, pair_psnr=res.pair_psnr,
        exposure_low=exp_lo, exposure_high=exp_hi, exposure_count_low=cnt_lo, exposure_count_high=cnt_hi,
        best_latents=best, best_images=best_img, best_psnr=np.array([r.best_psnr for r in per], np.float64),
        best_exact=best_exact, best_kind=best_kind, best_prob=np.array([r.best_raw_prob / norm for r in per], np.float64))
    reach = int(str(cert.attrs.get("reachable_count", "0")))
    maps: dict[str, dict[str, Any]] = {k: {} for k in ("count_low", "count_high", "exact", "reason", "mass_low",
                                                        "mass_high", "mass", "uir", "uir_w")}
    for g in gammas:
        u = res.union[gamma_key(g)]
        k = gamma_key(g)
        maps["count_low"][k], maps["count_high"][k] = u["count_low"], u["count_high"]
        maps["exact"][k], maps["reason"][k] = bool(u["exact"]), u["reason"]
        maps["mass_low"][k], maps["mass_high"][k] = float(u["mass_low"]), float(u["mass_high"])
        maps["mass"][k] = float(u["mass_low"]) if u["exact"] else None
        maps["uir"][k] = (1.0 - int(u["count_low"]) / reach) if u["exact"] and reach else None
        maps["uir_w"][k] = (1.0 - float(u["mass_low"])) if u["exact"] else None
    top_attrs = _add_top(cert, res, cfg, dead_end_mass)
    unresolved = [r.index for r in per if r.reason.startswith("search too large")]
    cert.attrs.update(
        gammas=np.asarray(gammas, np.float64), verdict_scope=SCOPE_SEARCHED,
        memorization_mass=json.dumps(maps["mass"]), memorization_mass_low=json.dumps(maps["mass_low"]),
        memorization_mass_high=json.dumps(maps["mass_high"]), uir=json.dumps(maps["uir"]),
        uir_weighted=json.dumps(maps["uir_w"]), m_uir=json.dumps({gamma_key(g): None for g in gammas}),
        m_uir_weighted=json.dumps({gamma_key(g): None for g in gammas}),
        near_copy_count_low=json.dumps(maps["count_low"]), near_copy_count_high=json.dumps(maps["count_high"]),
        near_copy_exact=json.dumps(maps["exact"]), near_copy_reason=json.dumps(maps["reason"]),
        search=json.dumps({"max_listed_per_training_image": ncfg.max_listed, "bins": ncfg.bins,
                           "windows_decoded": int(res.windows_decoded), "rounding_ties": int(res.ties),
                           "unresolved_training_images": unresolved,
                           "max_states_per_cell": ncfg.max_states,
                           "capped_training_images": [r.index for r in per if r.dropped_mass > 0],
                           "windows_from_E": bool(cfg.rho >= model.config.receptive_field - 1)}), **top_attrs)


def _add_top(cert, res, cfg, dead_end_mass: float) -> dict:
    """The ``top_k`` most probable outputs (fscert.probable), exact, with their canonical images."""
    from .probable import most_probable
    from .search import SearchTooLarge

    k = int(getattr(cfg, "top_k", 100) or 0)
    if k <= 0:
        return {}
    try:
        top = most_probable(res.searcher.tables, k, dead_end_mass)          # the search's tables of E
    except SearchTooLarge as e:
        return {"top_note": f"most probable outputs not computed: {e}"}
    n = top.n_exact if not top.exact else len(top.latents)       # only the proven prefix is stored
    lat = np.ascontiguousarray(top.latents[:n], np.int8)
    cert.extra.update(top_latents=lat, top_prob=np.asarray(top.prob[:n], np.float64),
                      top_log_prob=np.asarray(top.log_prob[:n], np.float64), top_images=res.images_of(lat))
    return {"top_k": int(n), "top_mass": float(math.fsum(top.prob[:n])),
            **({"top_note": top.note} if not top.exact else {})}
