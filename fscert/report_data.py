"""The report's data files: ``data.js`` (the page's per-image columns), ``summary.json``,
``images.csv``, ``exposure.csv`` (searched) and ``training.csv`` (listed: per training image).

Guarantees: every file holds the certificate's own values at full precision (``repr`` of the
float64); an unknown value is an empty CSV cell or JSON null, never 0; ``data.js`` is one
JSON object safe inside a script element (:func:`fscert.report_format.safe_json`). The files
are written into the report's temporary folder, which is renamed into place only when the
whole report is written (:func:`fscert.fileio.atomic_dir`).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .certificate import Certificate
from .report_format import column, gname, js_number, jsonable, safe_json
from .report_search import (csv_float, exposure_arrays, exposure_ranks, pairs_by_row, train_namer,
                            write_training_table)


def data_js(cert: Certificate, gen: dict[str, Any] | None, train: dict[str, Any] | None,
             extra: dict[str, Any] | None = None) -> str:
    """``window.FSCERT_REPORT = {...};`` — columns of per-image data for report.js.

    ``extra``: more top-level keys (a searched report's ``exposure`` table, ``also`` — the
    other training images each near-copy is within the smallest γ of —, ``sprites`` for the
    static tiles, ``label``); already plain JSON values."""
    k = len(cert.prob) if gen is not None else 0
    data: dict[str, Any] = {"n": k, "gammas": [js_number(g) for g in cert.gammas], "gen": None, "train": None,
                            "prob": [], "psnr": None, "nearest": None, "trainSlot": None,
                            "flags": None, "muir": None}
    data.update(extra or {})
    if k:
        data["gen"] = jsonable(gen, "js")
        data["prob"] = cert.prob.astype(np.float64).tolist()
        if cert.psnr is not None:
            data["psnr"] = [js_number(v) for v in cert.psnr.astype(np.float64).tolist()]
        if cert.nearest_train is not None:
            data["nearest"] = cert.nearest_train.astype(np.int64).tolist()
        if train is not None:
            data["train"] = jsonable({key: v for key, v in train.items() if key not in ("slot", "index")}, "js")
            data["trainSlot"] = train["slot"].tolist()
        for key, arr in (("flags", cert.flags), ("muir", cert.m_uir)):
            cols = [column(arr, j) for j in range(len(cert.gammas))]
            if all(c is not None for c in cols) and cols:
                data[key] = [c.astype(np.uint8).tolist() for c in cols]
    return "/* fscert report data (generated) */\nwindow.FSCERT_REPORT = " + safe_json(data) + ";\n"


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(jsonable(obj, "js"), indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def write_csv(path: Path, cert: Certificate, searched: Certificate | None = None) -> None:
    """One row per listed image; for a searched certificate (``searched``; ``cert`` is its
    :func:`near_copy_view`), one row per listed near-copy: index, probability, log-probability,
    nearest training image (index and name), PSNR, near-copy flag per γ, and every training
    image it is within the smallest γ of (``within_smallest_gamma_of``, ";"-separated)."""
    gammas = cert.gammas
    k = len(cert.prob)
    if searched is not None:
        header = ["index", "probability", "log_probability", "nearest_train", "training_image", "psnr"]
        header += [f"near_copy_{gname(g)}" for g in gammas] + ["within_smallest_gamma_of"]
        nearest = cert.nearest_train.tolist() if cert.nearest_train is not None else [None] * k
        name = train_namer(searched)
        log_p = cert.log_prob.tolist() if cert.log_prob is not None else [math.log(p) if p > 0 else -math.inf
                                                                          for p in cert.prob.tolist()]
        cols: list[list[str]] = [[str(i) for i in range(k)], [repr(float(p)) for p in cert.prob.tolist()],
                                 [repr(float(v)) for v in log_p],
                                 ["" if t is None else str(int(t)) for t in nearest],
                                 ["" if t is None else name(t) for t in nearest],
                                 [repr(float(v)) for v in cert.psnr.tolist()] if cert.psnr is not None else [""] * k]
        for j in range(len(gammas)):
            col = column(cert.flags, j)
            cols.append([str(int(v)) for v in col.tolist()] if col is not None else [""] * k)
        within = pairs_by_row(searched, k)
        cols.append([";".join(str(t) for t in within.get(i, ())) for i in range(k)])
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(zip(*cols))
        return
    header = ["index", "probability", "nearest_train", "psnr"]
    header += [f"near_copy_{gname(g)}" for g in gammas] + [f"m_uir_{gname(g)}" for g in gammas]
    cols = [[str(i) for i in range(k)], [repr(float(p)) for p in cert.prob.tolist()]]
    cols.append([str(int(v)) for v in cert.nearest_train.tolist()] if cert.nearest_train is not None else [""] * k)
    cols.append([repr(float(v)) for v in cert.psnr.tolist()] if cert.psnr is not None else [""] * k)
    for arr in (cert.flags, cert.m_uir):
        for j in range(len(gammas)):
            col = column(arr, j)
            cols.append([str(int(v)) for v in col.tolist()] if col is not None else [""] * k)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(zip(*cols))


def write_exposure_csv(path: Path, cert: Certificate) -> None:
    """``exposure.csv``: one row per training image, in order, with its rank per γ (1 = most
    exposed); an empty upper end is unknown (it may be as large as 1)."""
    exp = exposure_arrays(cert)
    if exp is None:
        return
    gammas = cert.gammas
    ranks = exposure_ranks(exp["lo"], exp["hi"])
    cell = csv_float

    def count(v: float) -> str:
        return str(int(v)) if math.isfinite(v) and v.is_integer() and abs(v) < 2.0 ** 53 else cell(v)

    def cells(t: int) -> list[str]:
        row: list[str] = []
        for j in range(len(gammas)):
            row += [str(int(ranks[j][t])), cell(exp["lo"][t, j]), cell(exp["hi"][t, j]),
                    count(float(exp["clo"][t, j])), count(float(exp["chi"][t, j]))]
        return row + [cell(exp["best_psnr"][t]), str(int(exp["best_exact"][t])), cell(exp["best_prob"][t])]

    write_training_table(path, cert, gammas, ("rank", "exposure_low", "exposure_high", "near_copies_low",
                                              "near_copies_high"),
                         ("best_psnr", "best_psnr_exact", "best_probability"), len(exp["lo"]), cells)
