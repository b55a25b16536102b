"""The k most probable outputs in the report (any scope, when the certificate stores them:
``top_*`` datasets, :mod:`fscert.probable`): their tiles, ``top.csv`` and the page's section.

Guarantee: the probabilities shown are the certificate's exact ones, in rank order; the mass
they cover and the remainder are computed from them, never assumed.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from .certificate import Certificate
from .report_format import fig, finite, js_number
from .report_sprites import image_tiles, latent_tiles, write_sprites

TOP_SHOWN = 1000       # most probable outputs shown on the page (top.csv lists them all)


def top_count(cert: Certificate) -> int:
    p = cert.extra.get("top_prob")
    return 0 if p is None else int(len(p))


def top_summary(cert: Certificate) -> dict[str, Any]:
    """summary.json's ``top`` section: the most probable outputs, their covered mass, any note."""
    p = cert.extra.get("top_prob")
    p = np.zeros(0) if p is None else np.asarray(p, np.float64)
    lp = cert.extra.get("top_log_prob")
    lp = np.log(np.maximum(p, 1e-320)) if lp is None or len(lp) != len(p) else np.asarray(lp, np.float64)
    mass = finite(cert.attrs.get("top_mass"))
    note = cert.attrs.get("top_note")
    return {"k": int(len(p)), "covered_mass": mass if mass is not None else float(math.fsum(p.tolist())),
            "note": str(note) if note else None,
            "rows": [[i + 1, float(a), js_number(float(b))] for i, (a, b) in enumerate(zip(p.tolist(), lp.tolist()))]}


def write_top_sprites(cert: Certificate, folder: Path, progress: bool) -> dict[str, Any]:
    """``top-NNNN.png``: the most probable outputs, in rank order (latent mosaics without images)."""
    k = top_count(cert)
    imgs, lat = cert.extra.get("top_images"), cert.extra.get("top_latents")
    if imgs is not None and len(imgs) == k:
        tiles, _ = image_tiles(np.asarray(imgs, np.uint8))
        source = "images"
    elif lat is not None and len(lat) == k:
        tiles, source = latent_tiles(np.asarray(lat)), "latents"
    else:
        return {}
    info = write_sprites(tiles, folder, "top", progress)
    info["source"] = source
    return {"top": info}


def write_top_csv(path: Path, cert: Certificate) -> None:
    rows = top_summary(cert)["rows"]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["rank", "probability", "log_probability"])
        w.writerows([[r, repr(p), repr(float(lp))] for r, p, lp in rows])


def top_page(summary: dict[str, Any], sprites: dict[str, Any]) -> dict[str, Any] | None:
    """The template's ``top``: the cards of the first :data:`TOP_SHOWN` outputs and the mass words."""
    t = summary.get("top")
    if not t:
        return None
    shown = t["rows"][:TOP_SHOWN]
    info = sprites.get("top")
    return {"k": t["k"], "mass": fig(t["covered_mass"]) if t["k"] else None, "note": t["note"],
            "rest": fig(max(0.0, 1.0 - t["covered_mass"])) if t["k"] else None,
            "cards": [{"rank": r, "prob": f"{p:.6g}", "slot": r - 1} for r, p, _ in shown],
            "more": t["k"] - len(shown), "tiles": info is not None,
            "latents": bool(info and info.get("source") == "latents")}
