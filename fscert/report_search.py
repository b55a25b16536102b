"""The report of a *searched* certificate (``verdict_scope`` "searched", :mod:`fscert.verdict`).

Such a certificate lists none of its reachable images (there may be 10^18) but the near-copy
search examined all of them. Its page shows the search's verdict per γ (which figures are exact
and which are certified intervals), the exposure of every training image (the probability that
one generated image is within γ dB PSNR of it: a sortable table with the training image, its best
reachable output and their thumbnails; ``exposure.png``; ``exposure.csv``), and every listed
near-copy beside its nearest training image (the image grid: the near-copies are this report's
"images", :func:`near_copy_view`).

Guarantee: no figure the certificate does not prove is ever written as a number: unknown ends
say "unknown", intervals are [low, high], a PSNR bound is "< … dB (bound)".
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .certificate import Certificate, attr_json
from .report_format import count_in_words, fig, finite, gamma_map, gname, interval, js_number, psnr_text
from .report_sprites import image_tiles, latent_tiles, write_sprites

EXPOSURE_PNG = "exposure.png"
EXPOSURE_PAGE = 25     # rows per page of the exposure table (the first page is also in the HTML)
CHART_ROWS = 20        # training images per γ in exposure.png
EXPOSURE_WORDS = ("the probability that one image drawn from the generator is within γ dB PSNR of "
                  "this training image")


def is_searched(cert: Certificate) -> bool:
    """Whether the certificate's verdict comes from the near-copy search (scope "searched")."""
    from .verdict import SCOPE_SEARCHED, verdict_scope

    return verdict_scope(cert.attrs) == SCOPE_SEARCHED


def near_copy_view(cert: Certificate) -> Certificate:
    """A searched certificate's listed near-copies as a certificate of their own (its rows are
    the ``near_*`` datasets), so the image grid, its sprites, data.js and images.csv show them."""
    e = cert.extra
    lat, prob = e.get("near_latents"), e.get("near_prob")
    if lat is None or prob is None or len(lat) != len(prob):
        lat, prob = np.zeros((0,) + tuple(cert.latents.shape[1:]), np.int8), np.zeros(0)
    k = len(prob)

    def rows(name: str, fallback: np.ndarray | None = None) -> np.ndarray | None:
        arr = e.get(name)
        return arr if arr is not None and len(arr) == k else fallback

    images = rows("near_images")
    if images is None and k == 0 and e.get("best_images") is not None:
        images = e["best_images"][:0]
    return Certificate(latents=lat, prob=prob, attrs=cert.attrs, log_prob=rows("near_log_prob"), images=images,
                       nearest_train=rows("near_nearest_train", np.zeros(0, np.int64) if k == 0 else None),
                       psnr=rows("near_psnr"), flags=rows("near_flags"), m_uir=None)


def exposure_ranking(low: np.ndarray, high: np.ndarray, j: int) -> np.ndarray:
    """Training indices, most exposed first at column ``j``: by the upper end of the exposure
    (unknown, NaN, first: it may be as large as 1), then the lower end, then the index."""
    lo = np.nan_to_num(np.asarray(low, np.float64)[:, j], nan=0.0)
    hi = np.asarray(high, np.float64)[:, j]
    hi = np.where(np.isnan(hi), np.inf, hi)
    return np.lexsort((np.arange(len(lo)), -lo, -hi))


def exposure_ranks(low: np.ndarray, high: np.ndarray) -> list[np.ndarray]:
    """Per γ column, each training image's rank (1 = most exposed) in :func:`exposure_ranking`."""
    n = len(low)
    ranks = []
    for j in range(np.asarray(low).shape[1]):
        r = np.empty(n, np.int64)
        r[exposure_ranking(low, high, j)] = np.arange(1, n + 1)
        ranks.append(r)
    return ranks


def csv_float(v: float) -> str:
    """A CSV cell: Python's repr of the float, empty for NaN (unknown)."""
    return "" if math.isnan(v) else repr(float(v))


def training_rows(cert: Certificate) -> int | None:
    """The number of per-training-image rows of a searched certificate (None: no such rows)."""
    for name in ("exposure_low", "best_psnr"):
        if cert.extra.get(name) is not None:
            return int(len(cert.extra[name]))
    return None


def exposure_arrays(cert: Certificate) -> dict[str, np.ndarray] | None:
    """The per-training-image arrays (S rows; G columns where per γ), or None when absent."""
    e = cert.extra
    s, g = training_rows(cert), len(cert.gammas)
    if not s or e.get("exposure_low") is None or e["exposure_low"].ndim != 2 or e["exposure_low"].shape[1] != g:
        return None
    nan_sg, nan_s = np.full((s, g), np.nan), np.full(s, np.nan)

    def get(name: str, fallback: np.ndarray) -> np.ndarray:
        arr = e.get(name)
        return np.asarray(arr) if arr is not None and arr.shape[:1] == (s,) and arr.shape[1:] == fallback.shape[1:] \
            else fallback

    return {"lo": get("exposure_low", nan_sg).astype(np.float64), "hi": get("exposure_high", nan_sg).astype(np.float64),
            "clo": get("exposure_count_low", nan_sg).astype(np.float64),
            "chi": get("exposure_count_high", nan_sg).astype(np.float64),
            "best_psnr": get("best_psnr", nan_s).astype(np.float64),
            "best_exact": get("best_exact", np.zeros(s, bool)).astype(bool),
            # 0 exact, 1 "at most" (a bound), 2 "at least" (a reachable output), 3 unknown (fscert.verdict.BEST_KINDS)
            "best_kind": get("best_kind", np.where(get("best_exact", np.zeros(s, bool)), 0, 1)).astype(np.int64),
            "best_prob": get("best_prob", nan_s).astype(np.float64)}


def smallest_gamma_column(cert: Certificate) -> int | None:
    """Column of the smallest γ (the near-copies are listed at it)."""
    gammas = cert.gammas
    return int(np.argmin(gammas)) if gammas else None


def search_gamma(cert: Certificate, g: float) -> dict[str, Any]:
    """A searched certificate's figures at γ, proven only: exact, or [low, high] (None: unknown)."""
    def entry(key: str) -> Any:
        return gamma_map(attr_json(cert, key, {})).get(float(g))

    lo, hi = entry("near_copy_count_low"), entry("near_copy_count_high")
    mlo, mhi = entry("memorization_mass_low"), entry("memorization_mass_high")
    lo = str(lo) if lo is not None and str(lo).isdigit() else None
    hi = str(hi) if hi is not None and str(hi).isdigit() else None
    mlo = finite(mlo)
    mhi = finite(mhi)
    exact = bool(entry("near_copy_exact")) and lo is not None and mlo is not None
    reason = entry("near_copy_reason")
    return {"exact": exact, "near_copies": int(lo) if exact and lo is not None else None,
            "near_copies_low": lo, "near_copies_high": hi if not exact else lo,
            "memorization_mass": mlo if exact else None, "memorization_mass_low": mlo,
            "memorization_mass_high": mhi if not exact else mlo,
            "reason": str(reason) if reason is not None else "",
            "near_copies_text": _count_range(lo, hi, exact), "memorization_mass_text": _mass_range(mlo, mhi, exact)}


def _count_range(lo: str | None, hi: str | None, exact: bool) -> str:
    if lo is None:
        return "not shown (search result missing)"
    if exact or lo == hi:
        return count_in_words(lo)
    if hi is None:
        return f"at least {count_in_words(lo)} (upper end unknown)"
    return f"[{count_in_words(lo)}, {count_in_words(hi)}]"


def _mass_range(lo: float | None, hi: float | None, exact: bool) -> str:
    if lo is None:
        return "not shown (search result missing)"
    if exact or lo == hi:
        return fig(lo)
    return f"[{fig(lo)}, 1] (upper end unknown)" if hi is None else interval(lo, hi)


def _exposure_text(lo: float, hi: float) -> str:
    """One number when exact; [low, high]; "≥ low (upper end unknown)" where high is NaN."""
    if not math.isfinite(lo):
        return "unknown"
    if math.isnan(hi):
        return f"≥ {fig(lo)} (upper end unknown)"
    return fig(lo) if lo == hi else interval(lo, hi)


def _big(v: float) -> str:
    """A count stored as float64: exact below 2^53, else approximate in words."""
    return str(int(v)) if v < 2.0 ** 53 else "≈ " + count_in_words(int(v))


def _count_text(lo: float, hi: float) -> str:
    if not math.isfinite(lo):
        return "unknown"
    if math.isnan(hi):
        return f"≥ {_big(lo)} (upper end unknown)"
    return _big(lo) if lo == hi else f"[{_big(lo)}, {_big(hi)}]"


def _best_text(psnr: float, kind: int) -> str:
    """Best reachable PSNR in words by ``best_kind`` (0 exact, 1 a bound, 2 a reachable output, 3 unknown)."""
    if math.isnan(psnr) or kind == 3:
        return "unknown"
    if kind == 0:
        return f"{psnr_text(psnr)} dB (exact)"
    if kind == 2:
        return f"≥ {psnr_text(psnr)} dB (reached; a better output may exist)"
    return f"< {psnr_text(psnr)} dB (bound)"


def train_namer(cert: Certificate):
    """Training index → its name in the training data the certificate records ("mnist[3]"), or ""."""
    cfg = attr_json(cert, "config", {})
    data = cfg.get("train") if isinstance(cfg, dict) else None
    return (lambda t: f"{data}[{int(t)}]") if isinstance(data, str) and data else (lambda t: "")


def write_training_table(path: Path, cert: Certificate, gammas: Sequence[float], per_gamma: Sequence[str],
                         tail: Sequence[str], rows: int, cells: Callable[[int], list[str]]) -> None:
    """A CSV with one row per training image ``t`` in order (``exposure.csv``, ``training.csv``):
    ``training_index``, ``training_image`` (:func:`train_namer`), then ``{column}_{γ}`` for every γ
    and every ``per_gamma`` column, then the ``tail`` columns; row ``t`` is ``[t, name] + cells(t)``."""
    name = train_namer(cert)
    header = ["training_index", "training_image"]
    header += [f"{c}_{gname(g)}" for g in gammas for c in per_gamma] + list(tail)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for t in range(rows):
            w.writerow([str(t), name(t)] + cells(t))


def pairs_by_row(cert: Certificate, k: int) -> dict[int, list[int]]:
    """Near-copy row → every training image it is within the smallest γ of (ascending)."""
    rows, trains = cert.extra.get("pair_row"), cert.extra.get("pair_train")
    out: dict[int, list[int]] = {}
    if rows is None or trains is None or len(rows) != len(trains):
        return out
    for r, t in sorted(zip(np.asarray(rows).tolist(), np.asarray(trains).tolist())):
        if 0 <= r < k:
            out.setdefault(int(r), []).append(int(t))
    return out


def search_summary(cert: Certificate, config: dict[str, Any]) -> dict[str, Any]:
    """summary.json's ``search`` section (see :func:`summarize`)."""
    view = near_copy_view(cert)
    gammas, k, j0 = cert.gammas, len(view.prob), smallest_gamma_column(cert)
    name = train_namer(cert)
    smallest = search_gamma(cert, gammas[j0]) if j0 is not None else None
    exp = exposure_arrays(cert)
    s = training_rows(cert) or 0
    ex_cols = ["training_index", "training_image"]
    for g in gammas:
        ex_cols += [f"exposure_low_{gname(g)}", f"exposure_high_{gname(g)}"]
    for g in gammas:
        ex_cols += [f"near_copies_low_{gname(g)}", f"near_copies_high_{gname(g)}"]
    ex_cols += ["best_psnr", "best_psnr_exact", "best_probability"]
    ex_rows: list[list[Any]] = []
    ranking: dict[str, list[int]] = {}
    if exp is not None:
        for t in range(s):
            row: list[Any] = [t, name(t)]
            for j in range(len(gammas)):
                row += [finite(exp["lo"][t, j]), finite(exp["hi"][t, j])]
            for j in range(len(gammas)):
                row += [finite(exp["clo"][t, j]), finite(exp["chi"][t, j])]
            bp = float(exp["best_psnr"][t])
            row += [None if math.isnan(bp) else js_number(bp), bool(exp["best_exact"][t]), finite(exp["best_prob"][t])]
            ex_rows.append(row)
        ranking = {gname(g): exposure_ranking(exp["lo"], exp["hi"], j).tolist() for j, g in enumerate(gammas)}
    listed_all = bool(smallest and smallest["exact"] and smallest["near_copies"] == k)
    return {
        "reachable_in_words": count_in_words(cert.attrs.get("reachable_count", "?")),
        "exposure_means": EXPOSURE_WORDS,
        "training_images": s,
        "training_data": config.get("train"),
        "smallest_gamma": gammas[j0] if j0 is not None else None,
        "near_copies_listed": k,
        "near_copies_all_listed": listed_all,
        # one row per listed near-copy is in images.csv (2 million rows at ρ = 1 on 256 images would
        # make this file hundreds of MB); summary.json keeps the figures only
        "near_copies": {"rows": k, "csv": "images.csv"},
        "exposure": {"columns": ex_cols, "rows": ex_rows},
        "exposure_ranking": ranking,
        "search": attr_json(cert, "search", {}),
    }


def _near_words(x: dict[str, Any], row: dict[str, Any] | None) -> str:
    """One sentence: how many near-copies there are and which of them the page shows."""
    if row is None:
        return "no thresholds γ: the certificate has no near-copy figures."
    listed, g = x["listed"], x["gmin"]
    lo, hi = row["near_copies_low"], row["near_copies_high"]
    if lo is None:
        total = "an unknown number of"
    elif row["exact"] or lo == hi:
        total = f"exactly {count_in_words(lo)}"
    elif hi is None:
        total = f"at least {count_in_words(lo)} (the upper end is unknown)"
    else:
        total = f"between {count_in_words(lo)} and {count_in_words(hi)}"
    why = f" ({row['reason']})" if row["reason"] and not row["exact"] else ""
    if listed == 0:
        if row["exact"] and row["near_copies"] == 0:
            return (f"none — the search proved that no reachable image is within {g} dB PSNR of any training "
                    f"image, so there is nothing to show side by side.")
        return (f"none listed — the certificate proves there are {total} reachable images within {g} dB PSNR of "
                f"a training image, but the search did not list them{why}.")
    if x["all_listed"] and listed == 1:
        return (f"the only reachable image within {g} dB PSNR of a training image is shown below, beside its "
                f"nearest training image; the search proved there is no other.")
    if x["all_listed"]:
        return (f"all {listed} reachable images within {g} dB PSNR of a training image are shown below, each beside "
                f"its nearest training image; the search proved there are no others.")
    return (f"{listed} listed reachable images within {g} dB PSNR of a training image are shown below, each beside its "
            f"nearest training image; the certificate proves there are {total} in all, so only the listed ones are "
            f"shown{why}.")


def write_search_sprites(cert: Certificate, folder: Path, progress: bool) -> dict[str, Any]:
    """``best-NNNN.png``: each training image's best reachable output (tile t = training image t)."""
    s = training_rows(cert)
    best = cert.extra.get("best_images")
    if not s:
        return {}
    if best is not None and len(best) == s:
        tiles, _ = image_tiles(np.asarray(best, np.uint8))
    elif cert.extra.get("best_latents") is not None and len(cert.extra["best_latents"]) == s:
        tiles = latent_tiles(np.asarray(cert.extra["best_latents"]))
    else:
        return {}
    return {"best": write_sprites(tiles, folder, "best", progress)}


def search_page(cert: Certificate, summary: dict[str, Any], sprites: dict[str, Any],
                 js: dict[str, Any]) -> dict[str, Any]:
    gammas = cert.gammas
    search = summary["search"]
    j0 = smallest_gamma_column(cert)
    rows = summary["per_gamma"]
    smallest = rows[j0] if j0 is not None else None
    exp = exposure_arrays(cert)
    s = search["training_images"]
    name = train_namer(cert)
    x: dict[str, Any] = {"reachable_words": search["reachable_in_words"], "training_images": s,
                         "gmin": gname(gammas[j0]) if j0 is not None else None,
                         "listed": search["near_copies_listed"], "all_listed": search["near_copies_all_listed"],
                         "smallest": smallest, "exposure_words": EXPOSURE_WORDS, "table": [], "glance": [],
                         "default_gamma": j0 or 0, "train_tiles": "train" in sprites, "best_tiles": "best" in sprites,
                         "chart": exp is not None and s > 0, "page_size": EXPOSURE_PAGE,
                         "info": search["search"] if isinstance(search["search"], dict) else {}}
    k = search["near_copies_listed"]
    nearest = near_copy_view(cert).nearest_train
    also = {str(r): [t for t in ts if nearest is None or t != int(nearest[r])]
            for r, ts in pairs_by_row(cert, k).items() if len(ts) > 1} if k else {}
    js.update(label="near-copy", also=also or None)
    x["near_words"] = _near_words(x, smallest)
    if exp is None:
        return x
    g_n = len(gammas)
    exp_text = [[_exposure_text(float(exp["lo"][t, j]), float(exp["hi"][t, j])) for t in range(s)] for j in range(g_n)]
    cnt_text = [[_count_text(float(exp["clo"][t, j]), float(exp["chi"][t, j])) for t in range(s)] for j in range(g_n)]
    best_text = [_best_text(float(exp["best_psnr"][t]), int(exp["best_kind"][t])) for t in range(s)]
    prob_text = [fig(float(v)) if math.isfinite(v) else "—" for v in exp["best_prob"].tolist()]
    names = [name(t) for t in range(s)]
    js["exposure"] = {
        "n": s, "gammaNames": [gname(g) for g in gammas], "defaultGamma": j0 or 0, "pageSize": EXPOSURE_PAGE,
        "lo": [[js_number(v) for v in exp["lo"][:, j].tolist()] for j in range(g_n)],
        "hi": [[js_number(v) for v in exp["hi"][:, j].tolist()] for j in range(g_n)],
        "cntLo": [[js_number(v) for v in exp["clo"][:, j].tolist()] for j in range(g_n)],
        "cntHi": [[js_number(v) for v in exp["chi"][:, j].tolist()] for j in range(g_n)],
        "bestPsnr": [js_number(v) for v in exp["best_psnr"].tolist()], "bestExact": np.isin(exp["best_kind"], (0, 2)).astype(int).tolist(),
        "bestProb": [js_number(v) for v in exp["best_prob"].tolist()],
        "expText": exp_text, "cntText": cnt_text, "bestText": best_text, "probText": prob_text, "names": names}
    order = exposure_ranking(exp["lo"], exp["hi"], j0 or 0)[:EXPOSURE_PAGE].tolist()
    x["table"] = [{"rank": r + 1, "t": t, "name": names[t], "best": best_text[t], "best_exact": bool(exp["best_exact"][t]),
                   "prob": prob_text[t], "cells": [{"exp": exp_text[j][t], "cnt": cnt_text[j][t]} for j in range(g_n)]}
                  for r, t in enumerate(order)]
    for j, g in enumerate(gammas):
        t = int(exposure_ranking(exp["lo"], exp["hi"], j)[0])
        x["glance"].append({"gamma": gname(g), "t": t, "name": names[t], "exp": exp_text[j][t],
                            "exact": float(exp["lo"][t, j]) == float(exp["hi"][t, j])})
    return x
