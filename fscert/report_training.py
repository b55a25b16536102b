"""Per training image, in the report of a listed certificate: which training images are copied,
by how many outputs, with what probability; and the per-image badges of the image grid.

A complete listing stores, for every reachable image, its nearest training image and its PSNR
to it. :func:`training_view` attributes each near-copy to that nearest training image (an
output is counted once, even when it is also within γ of another training image), so per
training image and γ it gives the exact number of outputs attributed to it and their total
probability, with the closest output attributed to it.

Guarantees: the view exists only for a complete listing with flags and nearest training
images (a partial listing gives no per-training-image figure); a training image no output is
attributed to reads 0, which is exact there because every reachable image was compared; where
γ is not decidable for that training image (:mod:`fscert.decidability`) the 0 says so;
the decoder's reconstruction PSNR is shown only where the certificate records it.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .certificate import Certificate
from .report_format import fig, gname, js_number, psnr_text
from .report_search import (EXPOSURE_PAGE, csv_float, exposure_ranking, exposure_ranks, train_namer,
                            write_training_table)
from .verdict import SCOPE_COMPLETE, verdict_scope
from .decidability import (BADGE_COPY, BADGE_NO_COPY_FOUND, BADGE_NOT_DECIDABLE, BADGE_NOVEL, badge_codes,
                           decidable_at, fidelity_record, recon_psnr)
from .figure_words import finite

TRAINING_CSV = "training.csv"
TRAINING_WORDS = ("the probability that one image drawn from the generator is a near-copy at γ whose nearest "
                  "training image is this one (each output is counted once, against its nearest training image)")
BADGE_NAMES = {BADGE_COPY: "copy", BADGE_NOVEL: "novel", BADGE_NOT_DECIDABLE: "not decidable",
               BADGE_NO_COPY_FOUND: "no copy found"}


def grid_badges(shown: Certificate, cert: Certificate) -> dict[str, Any] | None:
    """data.js's ``badges``: per γ the badge code of every shown image (:func:`badge_codes`), the
    names of the codes, and per γ the decidability and the per-image reason words."""
    gammas = cert.gammas
    fid = fidelity_record(cert)
    decidable = [decidable_at(fid, g) for g in gammas]
    codes = badge_codes(shown.flags, shown.nearest_train, gammas, decidable, recon_psnr(cert))
    if codes is None:
        return None
    recon = recon_psnr(cert)
    return {"codes": [c.tolist() for c in codes], "names": {str(k): v for k, v in BADGE_NAMES.items()},
            "decidable": decidable, "reconPsnr": None if recon is None else [js_number(float(v)) for v in recon.tolist()],
            "median": finite(fid.get("psnr_median")) if fid else None}


def _n_training(cert: Certificate, n_train: int | None) -> int:
    if n_train is not None:
        return int(n_train)
    recon = recon_psnr(cert)
    nearest = np.asarray(cert.nearest_train, np.int64)
    return max(len(recon) if recon is not None else 0, int(nearest.max()) + 1 if len(nearest) else 0)


def training_arrays(cert: Certificate, n_train: int | None = None) -> dict[str, np.ndarray] | None:
    """Per training image (S rows; G columns where per γ): ``count`` and ``mass`` of the near-copies
    attributed to it, ``best_psnr`` / ``best_row`` / ``best_prob`` of the closest output attributed
    to it (NaN / −1 where none is), ``recon`` (NaN where not recorded). None where no view exists."""
    if verdict_scope(cert.attrs) != SCOPE_COMPLETE or cert.flags is None or cert.nearest_train is None \
            or cert.psnr is None or not len(cert.prob) or cert.flags.ndim != 2:
        return None
    s = _n_training(cert, n_train)
    near = np.asarray(cert.nearest_train, np.int64)
    prob = np.asarray(cert.prob, np.float64)
    g = min(len(cert.gammas), cert.flags.shape[1])
    count, mass = np.zeros((s, g)), np.zeros((s, g))
    for j in range(g):
        f = cert.flags[:, j].astype(bool)
        count[:, j] = np.bincount(near[f], minlength=s)[:s]
        mass[:, j] = np.bincount(near[f], weights=prob[f], minlength=s)[:s]
    psnr = np.asarray(cert.psnr, np.float64)
    order = np.lexsort((prob, np.nan_to_num(psnr, nan=-np.inf), near))  # per training image, last: highest PSNR
    last = np.r_[near[order][1:] != near[order][:-1], True]             # (then highest probability)
    best_row = np.full(s, -1, np.int64)
    best_row[near[order][last]] = order[last]
    has = best_row >= 0
    recon = recon_psnr(cert)
    rec = np.full(s, np.nan)
    if recon is not None:
        rec[:min(s, len(recon))] = recon[:s]
    return {"count": count, "mass": mass, "best_row": best_row,
            "best_psnr": np.where(has, psnr[np.maximum(best_row, 0)], np.nan),
            "best_prob": np.where(has, prob[np.maximum(best_row, 0)], np.nan), "recon": rec}


def add_recon_and_decidability(js: dict[str, Any], table: list[dict[str, Any]], cert: Certificate) -> bool:
    """Mark every per-training-image cell that reads 0 with "(not decidable)" where γ is not
    decidable or the training image's own reconstruction PSNR is below γ, and add the
    reconstruction PSNR column where the certificate records it (``reconText`` in ``js``, ``recon``
    in each table row). Works on a searched certificate's exposure table and on
    :func:`training_view`'s. Returns whether the reconstruction column was added."""
    gammas = [float(g) for g in js["gammaNames"]]
    fid = fidelity_record(cert)
    dec = [decidable_at(fid, g) for g in gammas]
    n = int(js["n"])
    recon = recon_psnr(cert)
    rec = np.full(n, np.nan)
    if recon is not None:
        rec[:min(n, len(recon))] = recon[:n]

    def undecidable(i: int, j: int) -> bool:
        return dec[j] is False or (not math.isnan(rec[i]) and rec[i] < gammas[j])

    for key in ("expText", "cntText"):
        for j in range(len(gammas)):
            col = js[key][j]
            for i in range(n):
                if col[i] == "0" and undecidable(i, j):
                    col[i] = "0 (not decidable)"
    for row in table:
        i = row["t"]
        for j, c in enumerate(row["cells"]):
            c["exp"], c["cnt"] = js["expText"][j][i], js["cntText"][j][i]
    known = bool(np.isfinite(rec).any())
    js["reconText"] = [f"{psnr_text(float(v))} dB" if not math.isnan(v) else "not recorded" for v in rec.tolist()] \
        if known else None
    js["recon"] = [js_number(float(v)) for v in rec.tolist()] if known else None
    for row in table:
        row["recon"] = js["reconText"][row["t"]] if known else None
    return known


def training_view(cert: Certificate, n_train: int | None, has_train: bool) -> dict[str, Any] | None:
    """The template's per-training-image section and data.js's ``exposure`` table (the same
    sortable, paged table as a searched certificate's exposure), or None where no view exists."""
    t = training_arrays(cert, n_train)
    if t is None:
        return None
    gammas = cert.gammas[:t["count"].shape[1]]
    s, g_n = len(t["count"]), len(gammas)
    name = train_namer(cert)
    names = [name(i) for i in range(s)]
    cnt_text = [[str(int(v)) for v in t["count"][:, j].tolist()] for j in range(g_n)]
    exp_text = [[fig(float(v)) for v in t["mass"][:, j].tolist()] for j in range(g_n)]
    best_text = [f"{psnr_text(float(v))} dB (output #{int(r)})" if r >= 0 else "no output attributed"
                 for v, r in zip(t["best_psnr"].tolist(), t["best_row"].tolist())]
    prob_text = [fig(float(v)) if math.isfinite(v) else "—" for v in t["best_prob"].tolist()]
    j0 = int(np.argmin(gammas)) if gammas else 0
    js = {"n": s, "gammaNames": [gname(g) for g in gammas], "defaultGamma": j0, "pageSize": EXPOSURE_PAGE,
          "lo": [[js_number(v) for v in t["mass"][:, j].tolist()] for j in range(g_n)],
          "hi": [[js_number(v) for v in t["mass"][:, j].tolist()] for j in range(g_n)],
          "cntLo": [t["count"][:, j].tolist() for j in range(g_n)], "cntHi": [t["count"][:, j].tolist() for j in range(g_n)],
          "bestPsnr": [js_number(v) for v in t["best_psnr"].tolist()], "bestExact": (t["best_row"] >= 0).astype(int).tolist(),
          "bestProb": [js_number(v) for v in t["best_prob"].tolist()], "bestSlot": t["best_row"].tolist(), "bestSet": "gen",
          "expText": exp_text, "cntText": cnt_text, "bestText": best_text, "probText": prob_text, "names": names}
    order = exposure_ranking(t["mass"], t["mass"], j0)[:EXPOSURE_PAGE].tolist()
    table = [{"rank": r + 1, "t": i, "name": names[i], "best": best_text[i], "best_exact": bool(t["best_row"][i] >= 0),
              "best_slot": int(t["best_row"][i]), "prob": prob_text[i],
              "cells": [{"exp": exp_text[j][i], "cnt": cnt_text[j][i]} for j in range(g_n)]} for r, i in enumerate(order)]
    copied = [{"gamma": gname(g), "copied": int((t["count"][:, j] > 0).sum()), "of": s,
               "top": int(order[0]) if j == j0 and order and t["mass"][order[0], j] > 0 else None}
              for j, g in enumerate(gammas)]
    recon = add_recon_and_decidability(js, table, cert)
    return {"js": js, "table": table, "training_images": s, "page_size": EXPOSURE_PAGE, "default_gamma": j0,
            "train_tiles": has_train, "best_set": "gen", "recon": recon, "copied": copied,
            "words": TRAINING_WORDS, "arrays": t}


def write_training_csv(path: Path, cert: Certificate, view: dict[str, Any]) -> None:
    """``training.csv``: one row per training image, in order: per γ its rank (1 = most copied),
    the number of near-copies attributed to it and their probability; the closest output attributed
    to it (listing index, PSNR, probability; empty where none); its reconstruction PSNR (empty where
    not recorded)."""
    t = view["arrays"]
    gammas = cert.gammas[:t["count"].shape[1]]
    ranks = exposure_ranks(t["mass"][:, :len(gammas)], t["mass"][:, :len(gammas)])
    cell = csv_float

    def cells(i: int) -> list[str]:
        row: list[str] = []
        for j in range(len(gammas)):
            row += [str(int(ranks[j][i])), str(int(t["count"][i, j])), repr(float(t["mass"][i, j]))]
        b = int(t["best_row"][i])
        return row + ["" if b < 0 else str(b), cell(t["best_psnr"][i]), cell(t["best_prob"][i]), cell(t["recon"][i])]

    write_training_table(path, cert, gammas, ("rank", "near_copies", "mass"),
                         ("closest_output", "closest_psnr", "closest_probability", "reconstruction_psnr"),
                         len(t["count"]), cells)
