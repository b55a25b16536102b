"""Static HTML report of an audit of any generator's images (``fscert audit --html DIR``).

:func:`build_audit_report` writes a self-contained folder that makes no network request (all
CSS, JavaScript and images are local files; a Content-Security-Policy forbids anything else):

==================  ==========================================================================
``index.html``      first the verdict per γ in words with counts and the held-out baseline
                    beside them, the peers with their meaning and the glossary of every term
                    used; then the sets and their order, the figures per γ, the PSNR histogram,
                    the closest generated images beside the closest held-out real images (each
                    with its nearest training image), the training images that are copied (how
                    often, by which generated files), and a grid of every generated image beside
                    its nearest training image, sortable by PSNR and filterable (near-copy at γ
                    or not; by training image); configuration and hashes last, collapsed
``psnr.png``        histogram of the nearest-training PSNR, generated vs held-out (matplotlib)
``report.css``      shared styles (copied from ``reports/``), ``audit.css`` this page's own
``audit.js``        (``reports/tiles.js`` in front, the tile shared with the certificate report) sorting, filtering and pagination of the grid; fills the image tiles
``data.js``         the grid's columns as one JSON object, ``window.FSCERT_AUDIT``
``summary.json``    the audit's JSON (:func:`fscert.audit.report_json` with per-image rows)
``images.csv``      one row per generated image (name, nearest training image and its name, …)
``heldout.csv``     the same for the held-out real images (only with a held-out set)
``groups.csv``      one row per copied training image (:mod:`fscert.audit_tables`)
``sprites/``        PNG sprite sheets: ``gen-*`` (generated), ``train-*`` (the distinct nearest
                    training images), ``test-*`` (held-out)
==================  ==========================================================================

A figure the audit did not compute is written "unknown" with the reason, never 0. Every
user-provided string (file names, title) reaches the page through jinja2 autoescaping or
escaped JSON. The folder is built in a temporary folder and renamed into place
(:func:`fscert.fileio.atomic_dir`): no half-written report ever exists.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .audit import gamma_key, report_json
from .audit_tables import copied_training_images, write_csv, write_groups_csv
from .audit_verdict import HELD_OUT, db, of
from .errors import FscertError
from .fileio import atomic_dir
from .shipped import TEMPLATE_DIR, copy_static
from .report_charts import write_psnr_histogram
from .report_format import safe_json, to_uint8
from .report_sprites import image_tiles, write_sprites

logger = logging.getLogger(__name__)

STATIC = ("report.css", "audit.css", "audit.js")
TEMPLATE = "audit.html.j2"
CHART = "psnr.png"
SIDE_ROWS = 12        #: rows of the side-by-side comparison
GROUPS_SHOWN = 200    #: copied training images listed on the page (groups.csv lists all)
NAMES_SHOWN = 12      #: generated names listed per copied training image on the page


def build_audit_report(result: dict, out_dir: str | Path, train_images: np.ndarray, gen_images: np.ndarray,
                       test_images: np.ndarray | None = None, force: bool = False,
                       title: str | None = None) -> Path:
    """Write the report folder ``out_dir`` for an :func:`fscert.audit.audit` ``result`` (with its
    per-image arrays) and return the path of its ``index.html``.

    The images (N×C×H×W, float in [0, 1] or uint8) are the ones audited, shown as tiles; in feature
    space they are still the images, while every figure comes from the features. An existing
    ``out_dir`` is refused unless ``force``."""
    if not (TEMPLATE_DIR / TEMPLATE).is_file():
        raise FscertError(f"report templates not found in {TEMPLATE_DIR} (the fscert installation is incomplete)")
    out = Path(out_dir)
    if out.exists() and not force:
        raise FscertError(f"output folder {out} already exists (use --force to overwrite)")
    per, base = result["per_image"], result.get("held_out_per_image")
    if (test_images is None) != (base is None):
        raise FscertError("the held-out images and the audit's held-out results must be given together")
    with atomic_dir(out, force=force) as tmp:
        (tmp / "sprites").mkdir()
        near = np.asarray(per["nearest_train"], np.int64)
        bnear = np.asarray(base["nearest_train"], np.int64) if base is not None else np.zeros(0, np.int64)
        used = np.unique(np.concatenate([near, bnear]))
        sprites = {"gen": _sprites(gen_images, tmp, "gen"), "train": _sprites(np.asarray(train_images)[used], tmp, "train"),
                   "test": _sprites(test_images, tmp, "test") if test_images is not None else None}
        slot = {"gen": np.searchsorted(used, near), "test": np.searchsorted(used, bnear)}
        charted = _chart(result, tmp / CHART)
        groups = copied_training_images(result)
        page = _page(result, groups, slot, {int(t): k for k, t in enumerate(used)}, title)
        page["chart"] = CHART if charted else None
        (tmp / "data.js").write_text(_data_js(result, sprites, slot, used), encoding="utf-8")
        (tmp / "summary.json").write_text(json.dumps(report_json(result, per_image=True), indent=1,
                                                     ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
        write_csv(tmp / "images.csv", result, "generated")
        if base is not None:
            write_csv(tmp / "heldout.csv", result, "held_out")
        write_groups_csv(tmp / "groups.csv", result)
        copy_static(STATIC, tmp)
        (tmp / "index.html").write_text(_render(page), encoding="utf-8")
    logger.debug(f"report: wrote {out / 'index.html'}")
    return out / "index.html"


def _sprites(images: np.ndarray, folder: Path, prefix: str) -> dict[str, Any]:
    tiles, _ = image_tiles(to_uint8(np.asarray(images)))
    return write_sprites(tiles, folder, prefix, progress=False)


def _data_js(result: dict, sprites: dict, slot: dict, used: np.ndarray) -> str:
    """``window.FSCERT_AUDIT = {...};``: per generated image its name, PSNR, nearest training image
    (index, name, tile slot), near-copy flag and M-UIR membership per γ."""
    per = result["per_image"]
    keys = [gamma_key(g) for g in result["params"]["gammas"]]
    names = result["names"]["train"]
    psnr = [v if np.isfinite(v) else "Infinity" for v in np.asarray(per["psnr"], np.float64).tolist()]
    data = {"n": len(per["name"]), "gammaNames": [f"{g:g}" for g in result["params"]["gammas"]],
            "sprites": sprites, "name": list(per["name"]), "psnr": psnr,
            "nearest": np.asarray(per["nearest_train"]).tolist(), "trainSlot": slot["gen"].tolist(),
            "slotTrain": used.tolist(), "slotName": [names[int(t)] for t in used],
            "copy": [(~np.asarray(per[f"pass_{k}"], bool)).astype(np.uint8).tolist() for k in keys],
            "muir": [np.asarray(per[f"m_uir_{k}"], bool).astype(np.uint8).tolist() for k in keys]}
    return "/* fscert audit report data (generated) */\nwindow.FSCERT_AUDIT = " + safe_json(data) + ";\n"


def _ranked(psnr: np.ndarray) -> np.ndarray:
    """Indices by PSNR, highest (closest to the training set) first; ties by index."""
    p = np.asarray(psnr, np.float64)
    return np.lexsort((np.arange(p.size), -p))


def _side(result: dict, slot: dict) -> list[dict]:
    """Rows of the side-by-side comparison: the generated image ranked r-th closest to the training
    set and the held-out image at the same rank fraction (r · n_held_out / n_generated)."""
    per, base = result["per_image"], result.get("held_out_per_image")
    g_order = _ranked(per["psnr"])
    b_order = _ranked(base["psnr"]) if base is not None else None
    rows = []
    for r in range(min(SIDE_ROWS, g_order.size)):
        i = int(g_order[r])
        row = {"rank": r + 1, "gen": _pair(per, i, int(slot["gen"][i])), "held": None}
        if b_order is not None:
            j = int(b_order[min(b_order.size - 1, r * b_order.size // g_order.size)])
            row["held"] = _pair(base, j, int(slot["test"][j]))
            row["held"]["rank"] = int(np.flatnonzero(b_order == j)[0]) + 1
        rows.append(row)
    return rows


def _pair(per: dict, i: int, train_slot: int) -> dict:
    return {"i": i, "name": per["name"][i], "train": int(per["nearest_train"][i]),
            "train_name": per["nearest_train_name"][i], "psnr": db(float(per["psnr"][i])), "train_slot": train_slot}


def _page(result: dict, groups: list[dict], slot: dict, used: dict[int, int], title: str | None) -> dict:
    """Everything the template shows, as plain values and finished sentences (``used``: training
    index → its tile in the training sprites)."""
    p = result["params"]
    keys = [gamma_key(g) for g in p["gammas"]]
    base = result["baseline"]
    known = base.get("status") == "computed"
    metrics = []
    for g, k in zip(p["gammas"], keys):
        c = result["counts"][k]
        b = base["counts"][k] if known else None
        metrics.append({"gamma": f"{g:g}", "copies": of(c["near_copies"], c["n"]),
                        "held_copies": of(b["near_copies"], b["n"]) if b else "unknown",
                        "uir": f"{result['uir'][k]:.4f} ({c['unique']:,} of {c['n']:,})",
                        "held_uir": f"{base['uir'][k]:.4f} ({b['unique']:,} of {b['n']:,})" if b else "unknown",
                        "m_uir": f"{result['m_uir'][k]:.4f} ({c['m_uir']:,}); strict {result['m_uir_strict'][k]:.4f} "
                                 f"({c['m_uir_strict']:,})",
                        "held_m_uir": f"{base['m_uir'][k]:.4f} ({b['m_uir']:,}); strict {base['m_uir_strict'][k]:.4f} "
                                      f"({b['m_uir_strict']:,})" if b else "unknown"})
    shown = []
    for r in groups[:GROUPS_SHOWN]:
        held = r["held_out_near_copies"]
        shown.append({"t": r["train"], "name": r["train_name"], "slot": used[r["train"]],
                      "counts": [r["near_copies"][k] for k in keys],
                      "held": [held[k] if held is not None else "unknown" for k in keys],
                      "best": db(r["best_psnr"] if not r["identical"] else float("inf")),
                      "generated": r["generated"][:NAMES_SHOWN], "more": max(0, len(r["generated"]) - NAMES_SHOWN),
                      "total": len(r["generated"])})
    peers = result["peers"]
    sets = result["sets"]
    config = {"space": p["space"], "values per row": p["dim"], "image shape": "×".join(map(str, p["image_shape"])),
              "training image shape": "×".join(map(str, p["train_image_shape"])), "PSNR": p["psnr"],
              **{f"config.{k}": v for k, v in p["config"].items()},
              **{f"data.{k}": v for k, v in (p.get("data") or {}).items()},
              **{k: p[k] for k in ("limit", "generated_limit", "test_limit") if k in p},
              "fscert version": p["fscert_version"]}
    ct = result["ct_test"]
    return {
        "title": title or f"fscert audit of {sets['generated']['source']}",
        "verdict": result["verdict"], "peers": [{"name": name, "value": _peer_value(name, v), "words": v["words"]}
                                                for name, v in peers.items()],
        "ct_cells": f"{ct['cells_used']} of {ct['cells']} cells, held-out set: {ct['test_source']}" if ct.get("z") is not None else "",
        "glossary": result["glossary"], "sets": [(w, sets[k]) for k, w in (("generated", "generated images"),
                                                                            ("train", "training images"),
                                                                            ("test", HELD_OUT + " (--test)"))],
        "known": known, "baseline_reason": "" if known else base["reason"], "metrics": metrics,
        "median": db(result["psnr"]["median"]), "held_median": db(base["psnr"]["median"]) if known else "unknown",
        "identical": result["psnr"]["n_identical"], "n": result["n_generated"], "n_train": result["n_train"],
        "n_held": base["n"] if known else None, "side": _side(result, slot), "side_rows": SIDE_ROWS,
        "groups": shown, "n_groups": len(groups), "gmin": f"{p['gammas'][0]:g}", "gamma_names": [f"{g:g}" for g in p["gammas"]],
        "features": p["space"] == "features", "config": {k: _text(v) for k, v in config.items()},
        "hashes": p["sha256"], "chart": CHART,
    }


def _peer_value(name: str, v: dict) -> str:
    if v.get("value") is None:
        return "unknown"
    if name == "AuthPct":
        return f"{v['value']:.1f} %"
    if name == "C_T":
        return f"z = {v['value']:.2f}".replace("-", "−")
    return f"{100 * v['value']:.1f} % below the threshold"


def _text(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _render(page: dict) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE).render(s=page)


def _chart(result: dict, path: Path) -> bool:
    """``psnr.png``: the nearest-training PSNR of the generated and the held-out images, each as a
    share of its own set, a dashed line at each γ (:func:`fscert.report_charts.write_psnr_histogram`).
    False, writing nothing, when no image has a finite PSNR (all identical to training images)."""
    per, base = result["per_image"], result.get("held_out_per_image")
    series = [(f"generated images (n = {result['n_generated']:,})", per["psnr"], None)]
    if base is not None:
        series.append((f"{HELD_OUT} (n = {len(base['psnr']):,})", base["psnr"], None))
    title = ("PSNR to the nearest training image: generated vs held-out real images" if base is not None else
             f"PSNR to the nearest training image ({HELD_OUT}: unknown, no --test set given)")
    return write_psnr_histogram(path, series, list(result["params"]["gammas"]), title) is not None
