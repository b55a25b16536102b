"""Static HTML report of a certificate: every listed image, its probability and its flags.

:func:`build_report` writes a self-contained folder that makes no network request (all
CSS, JavaScript and images are local files; a Content-Security-Policy forbids anything else):

==================  ==========================================================================
``index.html``      header (counts, UIR/M-UIR per γ, memorization and dead-end mass, config,
                    hashes), then a paginated, sortable, filterable grid of every listed image
                    next to its nearest training image
``report.css``      styles (copied from ``reports/``)
``report.js``       client-side sorting, filtering and pagination (only the current page's
                    tiles are put in the page, so 100,000 images stay fast)
``data.js``         one compact JSON object (columns: prob, psnr, nearest, flags, …) assigned
                    to ``window.FSCERT_REPORT``; a script tag, because Chromium blocks
                    ``fetch`` of local files on ``file://``
``summary.json``    the header's numbers, machine-readable
``images.csv``      one row per listed image: index, probability, nearest training index,
                    PSNR, near-copy flag per γ, M-UIR membership per γ
``sprites/``        PNG sprite sheets, :data:`TILES_PER_SHEET` tiles each: ``gen-NNNN.png``
                    (generated images, or the latents when the certificate has no images) and
                    ``train-NNNN.png`` (the distinct nearest training images; searched: every
                    training image, in order), ``best-NNNN.png`` and ``top-NNNN.png`` (below)
==================  ==========================================================================

A *searched* certificate (``verdict_scope`` "searched", :mod:`fscert.verdict`) lists none of
its reachable images — there may be 10^18 — but the near-copy search examined all of them.
Its report shows, first, the verdict per γ in words (which figures are exact and which are
certified intervals), then the exposure of every training image (the probability that one
generated image is within γ dB PSNR of it: a sortable table with the training image, its best
reachable output and their thumbnails, and ``exposure.png``, a bar chart of the most exposed
per γ; ``exposure.csv`` has every row), then every listed near-copy beside its nearest
training image (the grid above: the near-copies are this report's "images", ``images.csv``
one row each), then the k most probable outputs when the certificate has them (``top_*``,
``top.csv``), and the configuration and hashes last. No figure the certificate does not
prove is ever written as a number: unknown ends say "unknown", intervals are [low, high].

The certificate stores ``nearest_train`` indices, not the training images, so those are
passed in (``train_images``, float32 N×C×S×S in [0, 1] from :func:`fscert.data.load_images`).
Every user-provided string reaches the page through jinja2 autoescaping or escaped JSON.
The folder is built in a temporary folder and renamed into place
(:func:`fscert.errors.atomic_dir`): no half-written report ever exists.
"""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import fscert

from .certificate import Certificate, attr_json, read_certificate
from .errors import FscertError, atomic_dir

TEMPLATE_DIR = Path(fscert.__file__).resolve().parents[1] / "reports"
TILES_PER_SHEET = 1000
SHEET_COLS = 40
DISPLAY_PX = 96  # target on-screen tile size; tiles are upscaled by an integer factor
PNG_COMPRESS_LEVEL = 1  # zlib level: several times faster than the default 6, files ~1.4× larger
STATIC_FILES = ("report.css", "report.js")
HASH_KEYS = ("content_sha256", "latents_sha256", "model_sha256", "train_sha256")
CONFIG_KEYS = ("mode", "rho", "tau", "kappa", "anchoring")


# ---------------------------------------------------------------------------------------------
# public API


def build_report(cert: Certificate | str | os.PathLike, out_dir: str | os.PathLike,
                 train_images: np.ndarray | None = None, force: bool = False,
                 title: str | None = None, progress: bool = False, *,
                 source: str | None = None) -> Path:
    """Write the static report folder ``out_dir`` and return the path of its ``index.html``.

    ``cert`` is a :class:`Certificate` or the path of a certificate file (read and validated).
    ``train_images`` (N×C×S×S, float in [0, 1] or uint8) are shown next to each image as its
    nearest training image; without them the page says they were not provided.
    ``source`` is the certificate's path shown in the header (defaults to ``cert`` when it is
    a path). An existing ``out_dir`` is refused unless ``force``.

    Raises :class:`FscertError` for a file that is not a certificate, an existing folder, and a
    training set that does not match the certificate (index out of range, other image shape).
    """
    if not isinstance(cert, Certificate):
        source = source if source is not None else str(cert)
        cert = read_certificate(cert)
    if not (TEMPLATE_DIR / "index.html.j2").is_file():
        raise FscertError(f"report templates not found in {TEMPLATE_DIR} (is fscert installed from its source tree?)")
    out = Path(out_dir)
    if out.exists() and not force:  # before any work; atomic_dir checks again
        raise FscertError(f"output folder {out} already exists (use --force to overwrite)")
    notes: list[dict[str, str]] = []
    searched = is_searched(cert)
    shown = near_copy_view(cert) if searched else cert      # the images of this report
    train_u8 = _check_train(shown, train_images, notes, searched=cert if searched else None)
    _say(progress, f"report: {len(shown.prob)} {'listed near-copies' if searched else 'listed images'}")

    with atomic_dir(out, force=force) as tmp:
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; a report is meant to be shared
        (tmp / "sprites").mkdir()
        gen = _write_generated_sprites(shown, tmp, notes, progress, searched=searched)
        train = None
        sprites: dict[str, Any] = {}
        if searched:
            if train_u8 is not None:                            # every training image, tile t = image t
                sprites["train"] = _write_sprites(image_tiles(train_u8)[0], tmp, "train", progress)
                if gen is not None:
                    train = dict(sprites["train"], slot=np.asarray(shown.nearest_train, np.int64))
            sprites.update(_write_search_sprites(cert, tmp, progress))
        elif train_u8 is not None and cert.nearest_train is not None and len(cert.prob) > 0:
            train = _write_train_sprites(cert.nearest_train, train_u8, tmp, progress)
        if _top_count(cert):
            sprites.update(_write_top_sprites(cert, tmp, progress))
        summary = summarize(cert, title=title, source=source, has_train=train_u8 is not None if searched else
                            train is not None, tile_source=gen["source"] if gen else None)
        summary["notes"] = notes
        page = _page(cert, summary, sprites)
        if searched and summary["search"]["training_images"]:
            _write_exposure_chart(cert, tmp / EXPOSURE_PNG)
            summary["search"]["chart"] = EXPOSURE_PNG
            _write_exposure_csv(tmp / "exposure.csv", cert)
        if summary.get("top"):
            _write_top_csv(tmp / "top.csv", cert)
        _write_json(tmp / "summary.json", summary)
        _write_csv(tmp / "images.csv", shown, searched=cert if searched else None)
        (tmp / "data.js").write_text(_data_js(shown, gen, train, extra=page["js"]), encoding="utf-8")
        for name in STATIC_FILES:
            shutil.copyfile(TEMPLATE_DIR / name, tmp / name)
        (tmp / "index.html").write_text(_render_index(summary, page), encoding="utf-8")
    _say(progress, f"report: wrote {out / 'index.html'}")
    return out / "index.html"


def summarize(cert: Certificate, title: str | None = None, source: str | None = None,
              has_train: bool = False, tile_source: str | None = None) -> dict[str, Any]:
    """The header's numbers (also ``summary.json``): counts, per-γ metrics, config, hashes.

    Per-γ UIR, M-UIR and memorization mass come from the certificate's attributes; where an
    attribute is absent they are computed from the datasets (``computed`` lists which).
    Where the certificate did not examine every reachable image (``verdict_scope``
    "not-examined"), every per-γ figure is None and ``verdict`` (per γ) says why, in words.
    A searched certificate (``verdict_scope`` "searched") gives per γ the near-copy count and
    the memorization mass as [low, high] with ``exact`` (``near_copies``, ``memorization_mass``
    and ``uir`` only where exact, else None), and a ``search`` section: every listed near-copy
    (training index, PSNR, probability), the exposure of every training image and its ranking
    per γ (:func:`exposure_ranking`). ``top`` (any scope, when present): the most probable outputs.
    """
    from .certify import has_figures, verdict_scope, verdict_words

    a = cert.attrs
    k = int(len(cert.prob))
    gammas = cert.gammas
    exact = has_figures(a)
    searched = is_searched(cert)
    shown = near_copy_view(cert) if searched else cert       # the images the page shows
    uir = _gamma_map(attr_json(cert, "uir", {}))
    muir = _gamma_map(attr_json(cert, "m_uir", {}))
    mass = _gamma_map(attr_json(cert, "memorization_mass", {}))
    per_gamma = []
    computed: set[str] = set()
    for j, g in enumerate(gammas):
        flags, members = _column(cert.flags, j), _column(cert.m_uir, j)
        row: dict[str, Any] = {"gamma": g, "near_copies": None, "uir": uir.get(g),
                               "m_uir": muir.get(g), "memorization_mass": mass.get(g),
                               "verdict": verdict_words(a, g)}
        if searched:                                  # proven figures only: exact, or [low, high]
            row.update(_search_gamma(cert, g), m_uir=None)
            if not row["exact"]:
                row.update(uir=None)
            per_gamma.append(row)
            continue
        if not exact:                                 # no figure: nothing (or not everything) was examined
            row.update(uir=None, m_uir=None, memorization_mass=None)
            per_gamma.append(row)
            continue
        if flags is not None:
            row["near_copies"] = int(flags.sum())
            if row["uir"] is None and k:
                row["uir"] = float(1.0 - flags.mean())
                computed.add("uir")
            if row["memorization_mass"] is None:
                row["memorization_mass"] = float(cert.prob[flags].sum())
                computed.add("memorization_mass")
        if row["m_uir"] is None and members is not None and k:
            row["m_uir"] = float(members.mean())
            computed.add("m_uir")
        per_gamma.append(row)
    config = attr_json(cert, "config", {})
    extra: dict[str, Any] = {}
    if searched:
        extra["search"] = _search_summary(cert, config if isinstance(config, dict) else {})
    if _top_count(cert):
        extra["top"] = _top_summary(cert)
    return _jsonable({
        "title": title if title is not None else "fscert certificate report",
        "source": source,
        "fscert_version": fscert.__version__,
        "certificate_fscert_version": a.get("fscert_version"),
        "format_version": a.get("format_version"),
        "mode": a.get("mode"),
        "reachable_count": str(a.get("reachable_count", "0")),
        "listed_count": k,
        "count_only": bool(a.get("count_only", False)),
        "verdict_scope": verdict_scope(a),
        "dead_end_mass": a.get("dead_end_mass"),
        "prob_sum": float(cert.prob.sum()) if k else 0.0,
        "gammas": gammas,
        "per_gamma": per_gamma,
        "computed": sorted(computed),
        "config": {key: a.get(key) for key in CONFIG_KEYS},
        "config_json": config if isinstance(config, dict) else {"config": config},
        "hashes": {key: a.get(key) for key in HASH_KEYS},
        "has_images": shown.images is not None,
        "has_psnr": shown.psnr is not None,
        "has_train": has_train,
        "tile_source": tile_source,
        **extra,
    })


# ---------------------------------------------------------------------------------------------
# validation


def _check_train(cert: Certificate, train: np.ndarray | None, notes: list[dict[str, str]],
                 searched: Certificate | None = None) -> np.ndarray | None:
    """Validate the training images against the certificate; return them as uint8 N×C×S×S.

    ``cert`` holds the images the report shows (a searched certificate's near-copies,
    :func:`near_copy_view`); ``searched`` is the searched certificate itself, whose per-training-
    image rows (exposure, best output) must be one per training image."""
    n_rows = _training_rows(searched) if searched is not None else None
    if train is None:
        if searched is not None and n_rows:
            notes.append(_note("warn", "The training images were not provided (run `fscert report` with "
                                       "--train DATA): the exposure table and the near-copies show training "
                                       "image indices only, not the images."))
        elif cert.nearest_train is not None and len(cert.prob):
            notes.append(_note("warn", "The training images were not provided (run `fscert report` with "
                                       "--train DATA): nearest training images are not shown, only their indices."))
        return None
    arr = np.asarray(train)
    if arr.ndim != 4:
        raise FscertError(f"training images must be N×C×S×S, got shape {arr.shape}")
    if searched is not None:
        if n_rows is not None and n_rows != len(arr):
            raise FscertError(f"training set does not match the certificate: the certificate's exposure table has "
                              f"{n_rows} training images but the training set has {len(arr)}")
        pairs = searched.extra.get("pair_train")
        if pairs is not None and len(pairs) and int(np.max(pairs)) >= len(arr):
            raise FscertError(f"training set does not match the certificate: it refers to training image "
                              f"{int(np.max(pairs))} but the training set has {len(arr)} images")
        best = searched.extra.get("best_images")
        if best is not None and tuple(arr.shape[1:]) != tuple(best.shape[1:]):
            raise FscertError(f"training set does not match the certificate: training images are "
                              f"{_shape(arr.shape[1:])} but the certificate's images are {_shape(best.shape[1:])}")
    if cert.nearest_train is None and searched is None:
        notes.append(_note("info", "Training images were given, but the certificate has no nearest-training "
                                   "indices (it was made without a model); they are not shown."))
        return None
    n = len(arr)
    nearest = np.asarray(cert.nearest_train if cert.nearest_train is not None else [], np.int64)
    if len(nearest):
        lo, hi = int(nearest.min()), int(nearest.max())
        if lo < 0 or hi >= n:
            bad = hi if hi >= n else lo
            raise FscertError(f"training set does not match the certificate: it refers to training image {bad} "
                              f"but the training set has {n} images (indices 0..{n - 1})")
    if cert.images is not None and tuple(arr.shape[1:]) != tuple(cert.images.shape[1:]):
        raise FscertError(f"training set does not match the certificate: training images are "
                          f"{_shape(arr.shape[1:])} but the certificate's images are {_shape(cert.images.shape[1:])}")
    expected = str(cert.attrs.get("train_sha256") or "")
    if expected and arr.dtype == np.float32:
        from .data import data_sha256

        if data_sha256(arr) != expected:
            msg = ("the training images' fingerprint differs from the certificate's train_sha256: the nearest "
                   "training images shown may not be the ones the certificate was computed against")
            warnings.warn(msg)
            notes.append(_note("warn", msg[0].upper() + msg[1:] + "."))
    return _to_uint8(arr)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:
        return x
    return np.rint(np.clip(np.nan_to_num(x.astype(np.float32)), 0.0, 1.0) * 255.0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# tiles and sprite sheets


def image_tiles(images: np.ndarray) -> tuple[np.ndarray, str]:
    """uint8 (K,C,S,S) → tiles (K,S,S) grey or (K,S,S,3) RGB, and a note when C is neither 1 nor 3."""
    c = images.shape[1]
    if c == 1:
        return images[:, 0], ""
    if c == 3:
        return np.ascontiguousarray(images.transpose(0, 2, 3, 1)), ""
    return images[:, 0], f"Images have {c} channels; tiles show channel 0."


def latent_tiles(latents: np.ndarray) -> np.ndarray:
    """int (K,M,H,W) latents → grey tiles: the M channels as a mosaic, −1 black, +1 white.

    Channels are laid out row-major in a ⌈√M⌉-wide grid separated by a 1-pixel dark-grey line;
    any value other than ±1 is mid-grey.
    """
    k, m, h, w = latents.shape
    gc = max(1, math.ceil(math.sqrt(m)))
    gr = max(1, math.ceil(m / gc))
    th, tw = gr * (h + 1) - 1, gc * (w + 1) - 1
    tiles = np.full((k, th, tw), 64, np.uint8)
    grey = np.full(latents.shape, 128, np.uint8)
    grey[latents < 0] = 0
    grey[latents > 0] = 255
    for ch in range(m):
        r, c = divmod(ch, gc)
        tiles[:, r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = grey[:, ch]
    return tiles


def _write_generated_sprites(cert: Certificate, folder: Path, notes: list[dict[str, str]],
                             progress: bool, searched: bool = False) -> dict[str, Any] | None:
    if len(cert.prob) == 0:
        if not searched:                            # a searched report says why in its near-copy section
            notes.append(_note("info", "Nothing was listed: this certificate only counts the reachable images "
                                       "(count-only), so there are no images to show."))
        return None
    if cert.images is not None:
        tiles, msg = image_tiles(np.asarray(cert.images, np.uint8) if cert.images.dtype != np.uint8 else cert.images)
        if msg:
            notes.append(_note("info", msg))
        source = "images"
    else:
        tiles = latent_tiles(np.asarray(cert.latents))
        m, h, w = cert.latents.shape[1:]
        notes.append(_note("latents", f"This certificate has no decoded images (it was made without a model). "
                                      f"The tiles show the latents instead: the {m}×{h}×{w} latent, its {m} "
                                      f"channel(s) side by side, −1 black and +1 white. They are not images."))
        source = "latents"
    info = _write_sprites(tiles, folder, "gen", progress)
    info["source"] = source
    return info


def _write_train_sprites(nearest: np.ndarray, train_u8: np.ndarray, folder: Path, progress: bool) -> dict[str, Any]:
    """Sprite sheets of the distinct nearest training images; ``slot`` maps each row to its tile."""
    uniq, slot = np.unique(np.asarray(nearest, np.int64), return_inverse=True)
    tiles, _ = image_tiles(train_u8[uniq])
    info = _write_sprites(tiles, folder, "train", progress)
    info["slot"] = slot.reshape(-1)
    return info


def _write_sprites(tiles: np.ndarray, folder: Path, prefix: str, progress: bool) -> dict[str, Any]:
    """Write ``tiles`` as PNG sheets of :data:`TILES_PER_SHEET`; return their layout for the page."""
    from PIL import Image

    n, th, tw = tiles.shape[:3]
    cols = min(SHEET_COLS, n)
    scale = max(1, DISPLAY_PX // max(th, tw))
    sheets, rows_per_sheet = [], []
    count = math.ceil(n / TILES_PER_SHEET)
    for s in range(count):
        chunk = tiles[s * TILES_PER_SHEET:(s + 1) * TILES_PER_SHEET]
        rows = math.ceil(len(chunk) / cols)
        pad = rows * cols - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], np.uint8)])
        grid = chunk.reshape((rows, cols) + chunk.shape[1:]).swapaxes(1, 2)
        sheet = grid.reshape((rows * th, cols * tw) + chunk.shape[3:])
        name = f"sprites/{prefix}-{s:04d}.png"
        Image.fromarray(np.ascontiguousarray(sheet), "L" if sheet.ndim == 2 else "RGB").save(folder / name, compress_level=PNG_COMPRESS_LEVEL)
        sheets.append(name)
        rows_per_sheet.append(rows)
        if progress and (s + 1) % 10 == 0:
            _say(True, f"report: {prefix} sprite sheets {s + 1}/{count}")
    return {"sheets": sheets, "rows": rows_per_sheet, "cols": cols, "perSheet": TILES_PER_SHEET,
            "tileW": int(tw), "tileH": int(th), "scale": int(scale)}


# ---------------------------------------------------------------------------------------------
# data files


def _data_js(cert: Certificate, gen: dict[str, Any] | None, train: dict[str, Any] | None,
             extra: dict[str, Any] | None = None) -> str:
    """``window.FSCERT_REPORT = {...};`` — columns of per-image data for report.js.

    ``extra``: more top-level keys (a searched report's ``exposure`` table, ``also`` — the
    other training images each near-copy is within the smallest γ of —, ``sprites`` for the
    static tiles, ``label``); already plain JSON values."""
    k = len(cert.prob) if gen is not None else 0
    data: dict[str, Any] = {"n": k, "gammas": [_num(g) for g in cert.gammas], "gen": None, "train": None,
                            "prob": [], "psnr": None, "nearest": None, "trainSlot": None,
                            "flags": None, "muir": None}
    data.update(extra or {})
    if k:
        data["gen"] = _jsonable(gen)
        data["prob"] = cert.prob.astype(np.float64).tolist()
        if cert.psnr is not None:
            data["psnr"] = [_num(v) for v in cert.psnr.astype(np.float64).tolist()]
        if cert.nearest_train is not None:
            data["nearest"] = cert.nearest_train.astype(np.int64).tolist()
        if train is not None:
            data["train"] = _jsonable({key: v for key, v in train.items() if key != "slot"})
            data["trainSlot"] = train["slot"].tolist()
        for key, arr in (("flags", cert.flags), ("muir", cert.m_uir)):
            cols = [_column(arr, j) for j in range(len(cert.gammas))]
            if all(c is not None for c in cols) and cols:
                data[key] = [c.astype(np.uint8).tolist() for c in cols]
    return "/* fscert report data (generated) */\nwindow.FSCERT_REPORT = " + safe_json(data) + ";\n"


def safe_json(obj: Any) -> str:
    """JSON that is safe inside a script (``<``, ``>``, ``&`` and U+2028/9 escaped; no NaN).

    ``obj`` must hold plain Python values (see :func:`_jsonable`); the per-image columns are
    built with ``tolist()``, which is much faster than converting a million values one by one.
    """
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def _write_csv(path: Path, cert: Certificate, searched: Certificate | None = None) -> None:
    """One row per listed image; for a searched certificate (``searched``; ``cert`` is its
    :func:`near_copy_view`), one row per listed near-copy: index, probability, log-probability,
    nearest training image (index and name), PSNR, near-copy flag per γ, and every training
    image it is within the smallest γ of (``within_smallest_gamma_of``, ";"-separated)."""
    gammas = cert.gammas
    k = len(cert.prob)
    if searched is not None:
        header = ["index", "probability", "log_probability", "nearest_train", "training_image", "psnr"]
        header += [f"near_copy_{_gname(g)}" for g in gammas] + ["within_smallest_gamma_of"]
        nearest = cert.nearest_train.tolist() if cert.nearest_train is not None else [None] * k
        name = _train_namer(searched)
        log_p = cert.log_prob.tolist() if cert.log_prob is not None else [math.log(p) if p > 0 else -math.inf
                                                                          for p in cert.prob.tolist()]
        cols: list[list[str]] = [[str(i) for i in range(k)], [repr(float(p)) for p in cert.prob.tolist()],
                                 [repr(float(v)) for v in log_p],
                                 ["" if t is None else str(int(t)) for t in nearest],
                                 ["" if t is None else name(t) for t in nearest],
                                 [repr(float(v)) for v in cert.psnr.tolist()] if cert.psnr is not None else [""] * k]
        for j in range(len(gammas)):
            col = _column(cert.flags, j)
            cols.append([str(int(v)) for v in col.tolist()] if col is not None else [""] * k)
        within = _pairs_by_row(searched, k)
        cols.append([";".join(str(t) for t in within.get(i, ())) for i in range(k)])
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(zip(*cols))
        return
    header = ["index", "probability", "nearest_train", "psnr"]
    header += [f"near_copy_{_gname(g)}" for g in gammas] + [f"m_uir_{_gname(g)}" for g in gammas]
    cols = [[str(i) for i in range(k)], [repr(float(p)) for p in cert.prob.tolist()]]
    cols.append([str(int(v)) for v in cert.nearest_train.tolist()] if cert.nearest_train is not None else [""] * k)
    cols.append([repr(float(v)) for v in cert.psnr.tolist()] if cert.psnr is not None else [""] * k)
    for arr in (cert.flags, cert.m_uir):
        for j in range(len(gammas)):
            col = _column(arr, j)
            cols.append([str(int(v)) for v in col.tolist()] if col is not None else [""] * k)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(zip(*cols))


# ---------------------------------------------------------------------------------------------
# searched certificates: verdict, exposure per training image, near-copies, most probable outputs

EXPOSURE_PNG = "exposure.png"
EXPOSURE_PAGE = 25     # rows per page of the exposure table (the first page is also in the HTML)
CHART_ROWS = 20        # training images per γ in exposure.png
TOP_SHOWN = 1000       # most probable outputs shown on the page (top.csv lists them all)
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


def count_in_words(count: Any) -> str:
    """An exact decimal count, readable: "27210", or "7.5·10^18" above nine digits."""
    text = str(count).strip()
    if not text.isdigit() or len(text) <= 9:
        return text
    from decimal import Decimal

    mant, exp = f"{Decimal(text):.2e}".split("e")
    return f"{mant.rstrip('0').rstrip('.')}·10^{int(exp)}"


def exposure_ranking(low: np.ndarray, high: np.ndarray, j: int) -> np.ndarray:
    """Training indices, most exposed first at column ``j``: by the upper end of the exposure
    (unknown, NaN, first: it may be as large as 1), then the lower end, then the index."""
    lo = np.nan_to_num(np.asarray(low, np.float64)[:, j], nan=0.0)
    hi = np.asarray(high, np.float64)[:, j]
    hi = np.where(np.isnan(hi), np.inf, hi)
    return np.lexsort((np.arange(len(lo)), -lo, -hi))


def _training_rows(cert: Certificate) -> int | None:
    """The number of per-training-image rows of a searched certificate (None: no such rows)."""
    for name in ("exposure_low", "best_psnr"):
        if cert.extra.get(name) is not None:
            return int(len(cert.extra[name]))
    return None


def _exposure(cert: Certificate) -> dict[str, np.ndarray] | None:
    """The per-training-image arrays (S rows; G columns where per γ), or None when absent."""
    e = cert.extra
    s, g = _training_rows(cert), len(cert.gammas)
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


def _gmin(cert: Certificate) -> int | None:
    """Column of the smallest γ (the near-copies are listed at it)."""
    gammas = cert.gammas
    return int(np.argmin(gammas)) if gammas else None


def _search_gamma(cert: Certificate, g: float) -> dict[str, Any]:
    """A searched certificate's figures at γ, proven only: exact, or [low, high] (None: unknown)."""
    def entry(key: str) -> Any:
        return _gamma_map(attr_json(cert, key, {})).get(float(g))

    lo, hi = entry("near_copy_count_low"), entry("near_copy_count_high")
    mlo, mhi = entry("memorization_mass_low"), entry("memorization_mass_high")
    lo = str(lo) if lo is not None and str(lo).isdigit() else None
    hi = str(hi) if hi is not None and str(hi).isdigit() else None
    mlo = _finite(mlo)
    mhi = _finite(mhi)
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
        return _fig(lo)
    return f"[{_fig(lo)}, 1] (upper end unknown)" if hi is None else _range(lo, hi)


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fig(v: float) -> str:
    """A probability or mass, 4 significant digits ("0.518", "1.2e-07")."""
    return f"{v:.4g}"


def _range(lo: float, hi: float) -> str:
    """"[low, high]" with as many digits as it takes to tell the two ends apart."""
    d = 4
    while d < 17 and f"{lo:.{d}g}" == f"{hi:.{d}g}":
        d += 1
    return f"[{lo:.{d}g}, {hi:.{d}g}]"


def _exposure_text(lo: float, hi: float) -> str:
    """One number when exact; [low, high]; "≥ low (upper end unknown)" where high is NaN."""
    if not math.isfinite(lo):
        return "unknown"
    if math.isnan(hi):
        return f"≥ {_fig(lo)} (upper end unknown)"
    return _fig(lo) if lo == hi else _range(lo, hi)


def _big(v: float) -> str:
    """A count stored as float64: exact below 2^53, else approximate in words."""
    return str(int(v)) if v < 2.0 ** 53 else "≈ " + count_in_words(int(v))


def _count_text(lo: float, hi: float) -> str:
    if not math.isfinite(lo):
        return "unknown"
    if math.isnan(hi):
        return f"≥ {_big(lo)} (upper end unknown)"
    return _big(lo) if lo == hi else f"[{_big(lo)}, {_big(hi)}]"


def _psnr_text(v: float) -> str:
    return "∞" if v == math.inf else ("unknown" if not math.isfinite(v) else f"{v:.2f}")


def _best_text(psnr: float, kind: int) -> str:
    """Best reachable PSNR in words by ``best_kind`` (0 exact, 1 a bound, 2 a reachable output, 3 unknown)."""
    if math.isnan(psnr) or kind == 3:
        return "unknown"
    if kind == 0:
        return f"{_psnr_text(psnr)} dB (exact)"
    if kind == 2:
        return f"≥ {_psnr_text(psnr)} dB (reached; a better output may exist)"
    return f"< {_psnr_text(psnr)} dB (bound)"


def _train_namer(cert: Certificate):
    """Training index → its name in the training data the certificate records ("mnist[3]"), or ""."""
    cfg = attr_json(cert, "config", {})
    data = cfg.get("train") if isinstance(cfg, dict) else None
    return (lambda t: f"{data}[{int(t)}]") if isinstance(data, str) and data else (lambda t: "")


def _pairs_by_row(cert: Certificate, k: int) -> dict[int, list[int]]:
    """Near-copy row → every training image it is within the smallest γ of (ascending)."""
    rows, trains = cert.extra.get("pair_row"), cert.extra.get("pair_train")
    out: dict[int, list[int]] = {}
    if rows is None or trains is None or len(rows) != len(trains):
        return out
    for r, t in sorted(zip(np.asarray(rows).tolist(), np.asarray(trains).tolist())):
        if 0 <= r < k:
            out.setdefault(int(r), []).append(int(t))
    return out


def _search_summary(cert: Certificate, config: dict[str, Any]) -> dict[str, Any]:
    """summary.json's ``search`` section (see :func:`summarize`)."""
    view = near_copy_view(cert)
    gammas, k, j0 = cert.gammas, len(view.prob), _gmin(cert)
    name = _train_namer(cert)
    nearest = view.nearest_train.tolist() if view.nearest_train is not None else [None] * k
    psnr = view.psnr.tolist() if view.psnr is not None else [None] * k
    log_p = view.log_prob.tolist() if view.log_prob is not None else [None] * k
    near_rows = [[i, t, name(t) if t is not None else "", _num(v) if v is not None else None, p, lp]
                 for i, (t, v, p, lp) in enumerate(zip(nearest, psnr, view.prob.tolist(), log_p))]
    smallest = _search_gamma(cert, gammas[j0]) if j0 is not None else None
    exp = _exposure(cert)
    s = _training_rows(cert) or 0
    ex_cols = ["training_index", "training_image"]
    for g in gammas:
        ex_cols += [f"exposure_low_{_gname(g)}", f"exposure_high_{_gname(g)}"]
    for g in gammas:
        ex_cols += [f"near_copies_low_{_gname(g)}", f"near_copies_high_{_gname(g)}"]
    ex_cols += ["best_psnr", "best_psnr_exact", "best_probability"]
    ex_rows: list[list[Any]] = []
    ranking: dict[str, list[int]] = {}
    if exp is not None:
        for t in range(s):
            row: list[Any] = [t, name(t)]
            for j in range(len(gammas)):
                row += [_finite(exp["lo"][t, j]), _finite(exp["hi"][t, j])]
            for j in range(len(gammas)):
                row += [_finite(exp["clo"][t, j]), _finite(exp["chi"][t, j])]
            bp = float(exp["best_psnr"][t])
            row += [None if math.isnan(bp) else _num(bp), bool(exp["best_exact"][t]), _finite(exp["best_prob"][t])]
            ex_rows.append(row)
        ranking = {_gname(g): exposure_ranking(exp["lo"], exp["hi"], j).tolist() for j, g in enumerate(gammas)}
    listed_all = bool(smallest and smallest["exact"] and smallest["near_copies"] == k)
    return {
        "reachable_in_words": count_in_words(cert.attrs.get("reachable_count", "?")),
        "exposure_means": EXPOSURE_WORDS,
        "training_images": s,
        "training_data": config.get("train"),
        "smallest_gamma": gammas[j0] if j0 is not None else None,
        "near_copies_listed": k,
        "near_copies_all_listed": listed_all,
        "near_copies": {"columns": ["index", "training_index", "training_image", "psnr", "probability",
                                    "log_probability"], "rows": near_rows},
        "exposure": {"columns": ex_cols, "rows": ex_rows},
        "exposure_ranking": ranking,
        "search": attr_json(cert, "search", {}),
    }


def _top_count(cert: Certificate) -> int:
    p = cert.extra.get("top_prob")
    return 0 if p is None else int(len(p))


def _top_summary(cert: Certificate) -> dict[str, Any]:
    """summary.json's ``top`` section: the most probable outputs, their covered mass, any note."""
    p = cert.extra.get("top_prob")
    p = np.zeros(0) if p is None else np.asarray(p, np.float64)
    lp = cert.extra.get("top_log_prob")
    lp = np.log(np.maximum(p, 1e-320)) if lp is None or len(lp) != len(p) else np.asarray(lp, np.float64)
    mass = _finite(cert.attrs.get("top_mass"))
    note = cert.attrs.get("top_note")
    return {"k": int(len(p)), "covered_mass": mass if mass is not None else float(math.fsum(p.tolist())),
            "note": str(note) if note else None,
            "rows": [[i + 1, float(a), _num(float(b))] for i, (a, b) in enumerate(zip(p.tolist(), lp.tolist()))]}


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


def _write_search_sprites(cert: Certificate, folder: Path, progress: bool) -> dict[str, Any]:
    """``best-NNNN.png``: each training image's best reachable output (tile t = training image t)."""
    s = _training_rows(cert)
    best = cert.extra.get("best_images")
    if not s:
        return {}
    if best is not None and len(best) == s:
        tiles, _ = image_tiles(np.asarray(best, np.uint8))
    elif cert.extra.get("best_latents") is not None and len(cert.extra["best_latents"]) == s:
        tiles = latent_tiles(np.asarray(cert.extra["best_latents"]))
    else:
        return {}
    return {"best": _write_sprites(tiles, folder, "best", progress)}


def _write_top_sprites(cert: Certificate, folder: Path, progress: bool) -> dict[str, Any]:
    """``top-NNNN.png``: the most probable outputs, in rank order (latent mosaics without images)."""
    k = _top_count(cert)
    imgs, lat = cert.extra.get("top_images"), cert.extra.get("top_latents")
    if imgs is not None and len(imgs) == k:
        tiles, _ = image_tiles(np.asarray(imgs, np.uint8))
        source = "images"
    elif lat is not None and len(lat) == k:
        tiles, source = latent_tiles(np.asarray(lat)), "latents"
    else:
        return {}
    info = _write_sprites(tiles, folder, "top", progress)
    info["source"] = source
    return {"top": info}


def _write_exposure_chart(cert: Certificate, path: Path) -> None:
    """``exposure.png``: per γ, the most exposed training images as horizontal bars — dark to the
    proven lower end, light to the upper end, hatched to 1 where the upper end is unknown."""
    from matplotlib.figure import Figure            # no pyplot: no global state, no GUI backend

    exp = _exposure(cert)
    if exp is None:
        return
    gammas = cert.gammas
    s, g = exp["lo"].shape
    n = min(CHART_ROWS, s)
    fig = Figure(figsize=(3.6 * g + 0.8, 0.26 * n + 1.6), dpi=100, layout="constrained")
    axes = fig.subplots(1, g, squeeze=False)[0]
    for j, ax in enumerate(axes):
        order = exposure_ranking(exp["lo"], exp["hi"], j)[:n]
        lo = np.nan_to_num(exp["lo"][order, j])
        hi = exp["hi"][order, j]
        unknown = np.isnan(hi)
        y = np.arange(n)
        known = np.concatenate([lo, hi[~unknown]])
        top = float(known.max()) if known.size else 0.0
        right = min(1.0, top * 1.15) if top > 0 else 1.0   # unknown upper ends run off the right edge
        ax.barh(y, lo, color="#b3261e", height=0.7, label="proven (lower end)")
        ax.barh(y, np.where(unknown, 0.0, hi - lo), left=lo, color="#f2b8b5", height=0.7,
                label="certified interval (to the upper end)")
        if unknown.any():
            ax.barh(y[unknown], (1.0 - lo)[unknown], left=lo[unknown], color="none", edgecolor="#888888",
                    hatch="//", height=0.7, label="upper end unknown (up to 1)")
        ax.set_yticks(y, [f"#{int(t)}" for t in order], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0.0, right)
        ax.set_title(f"γ = {_gname(gammas[j])} dB", fontsize=10)
        ax.set_xlabel("exposure: P[one generated image is within γ dB]", fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        if j == 0:
            ax.set_ylabel("training image", fontsize=8)
    handles: dict[str, Any] = {}
    for ax in axes:                                   # one legend for all panels, below them
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=len(handles), fontsize=8,
               frameon=False)
    fig.suptitle(f"The {n} most exposed of {s} training images, per γ", fontsize=10)
    fig.savefig(path, format="png")


def _write_exposure_csv(path: Path, cert: Certificate) -> None:
    """``exposure.csv``: one row per training image, in order, with its rank per γ (1 = most
    exposed); an empty upper end is unknown (it may be as large as 1)."""
    exp = _exposure(cert)
    if exp is None:
        return
    gammas = cert.gammas
    s = len(exp["lo"])
    name = _train_namer(cert)
    ranks = []
    for j in range(len(gammas)):
        r = np.empty(s, np.int64)
        r[exposure_ranking(exp["lo"], exp["hi"], j)] = np.arange(1, s + 1)
        ranks.append(r)
    header = ["training_index", "training_image"]
    header += [f"{what}_{_gname(g)}" for g in gammas for what in ("rank", "exposure_low", "exposure_high",
                                                                   "near_copies_low", "near_copies_high")]
    header += ["best_psnr", "best_psnr_exact", "best_probability"]

    def num(v: float) -> str:
        return "" if math.isnan(v) else repr(float(v))

    def count(v: float) -> str:
        return str(int(v)) if math.isfinite(v) and v.is_integer() and abs(v) < 2.0 ** 53 else num(v)

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for t in range(s):
            row = [str(t), name(t)]
            for j in range(len(gammas)):
                row += [str(int(ranks[j][t])), num(exp["lo"][t, j]), num(exp["hi"][t, j]),
                        count(float(exp["clo"][t, j])), count(float(exp["chi"][t, j]))]
            row += [num(exp["best_psnr"][t]), str(int(exp["best_exact"][t])), num(exp["best_prob"][t])]
            w.writerow(row)


def _write_top_csv(path: Path, cert: Certificate) -> None:
    rows = _top_summary(cert)["rows"]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["rank", "probability", "log_probability"])
        w.writerows([[r, repr(p), repr(float(lp))] for r, p, lp in rows])


def _page(cert: Certificate, summary: dict[str, Any], sprites: dict[str, Any]) -> dict[str, Any]:
    """What the page needs beyond summary.json: the template's ``x`` (searched) and ``top``, and
    data.js's extra keys (the exposure table's columns, sprite layouts, other pairs)."""
    js: dict[str, Any] = {"sprites": _jsonable(sprites)}
    page: dict[str, Any] = {"js": js, "search": None, "top": None}
    if "search" in summary:
        page["search"] = _search_page(cert, summary, sprites, js)
    if summary.get("top"):
        t = summary["top"]
        shown = t["rows"][:TOP_SHOWN]
        info = sprites.get("top")
        page["top"] = {"k": t["k"], "mass": _fig(t["covered_mass"]) if t["k"] else None, "note": t["note"],
                       "rest": _fig(max(0.0, 1.0 - t["covered_mass"])) if t["k"] else None,
                       "cards": [{"rank": r, "prob": f"{p:.6g}", "slot": r - 1} for r, p, _ in shown],
                       "more": t["k"] - len(shown), "tiles": info is not None,
                       "latents": bool(info and info.get("source") == "latents")}
    return page


def _search_page(cert: Certificate, summary: dict[str, Any], sprites: dict[str, Any],
                 js: dict[str, Any]) -> dict[str, Any]:
    gammas = cert.gammas
    search = summary["search"]
    j0 = _gmin(cert)
    rows = summary["per_gamma"]
    smallest = rows[j0] if j0 is not None else None
    exp = _exposure(cert)
    s = search["training_images"]
    name = _train_namer(cert)
    x: dict[str, Any] = {"reachable_words": search["reachable_in_words"], "training_images": s,
                         "gmin": _gname(gammas[j0]) if j0 is not None else None,
                         "listed": search["near_copies_listed"], "all_listed": search["near_copies_all_listed"],
                         "smallest": smallest, "exposure_words": EXPOSURE_WORDS, "table": [], "glance": [],
                         "default_gamma": j0 or 0, "train_tiles": "train" in sprites, "best_tiles": "best" in sprites,
                         "chart": exp is not None and s > 0, "page_size": EXPOSURE_PAGE,
                         "info": search["search"] if isinstance(search["search"], dict) else {}}
    k = search["near_copies_listed"]
    nearest = near_copy_view(cert).nearest_train
    also = {str(r): [t for t in ts if nearest is None or t != int(nearest[r])]
            for r, ts in _pairs_by_row(cert, k).items() if len(ts) > 1} if k else {}
    js.update(label="near-copy", also=also or None)
    x["near_words"] = _near_words(x, smallest)
    if exp is None:
        return x
    g_n = len(gammas)
    exp_text = [[_exposure_text(float(exp["lo"][t, j]), float(exp["hi"][t, j])) for t in range(s)] for j in range(g_n)]
    cnt_text = [[_count_text(float(exp["clo"][t, j]), float(exp["chi"][t, j])) for t in range(s)] for j in range(g_n)]
    best_text = [_best_text(float(exp["best_psnr"][t]), int(exp["best_kind"][t])) for t in range(s)]
    prob_text = [_fig(float(v)) if math.isfinite(v) else "—" for v in exp["best_prob"].tolist()]
    names = [name(t) for t in range(s)]
    js["exposure"] = {
        "n": s, "gammaNames": [_gname(g) for g in gammas], "defaultGamma": j0 or 0, "pageSize": EXPOSURE_PAGE,
        "lo": [[_num(v) for v in exp["lo"][:, j].tolist()] for j in range(g_n)],
        "hi": [[_num(v) for v in exp["hi"][:, j].tolist()] for j in range(g_n)],
        "cntLo": [[_num(v) for v in exp["clo"][:, j].tolist()] for j in range(g_n)],
        "cntHi": [[_num(v) for v in exp["chi"][:, j].tolist()] for j in range(g_n)],
        "bestPsnr": [_num(v) for v in exp["best_psnr"].tolist()], "bestExact": np.isin(exp["best_kind"], (0, 2)).astype(int).tolist(),
        "bestProb": [_num(v) for v in exp["best_prob"].tolist()],
        "expText": exp_text, "cntText": cnt_text, "bestText": best_text, "probText": prob_text, "names": names}
    order = exposure_ranking(exp["lo"], exp["hi"], j0 or 0)[:EXPOSURE_PAGE].tolist()
    x["table"] = [{"rank": r + 1, "t": t, "name": names[t], "best": best_text[t], "best_exact": bool(exp["best_exact"][t]),
                   "prob": prob_text[t], "cells": [{"exp": exp_text[j][t], "cnt": cnt_text[j][t]} for j in range(g_n)]}
                  for r, t in enumerate(order)]
    for j, g in enumerate(gammas):
        t = int(exposure_ranking(exp["lo"], exp["hi"], j)[0])
        x["glance"].append({"gamma": _gname(g), "t": t, "name": names[t], "exp": exp_text[j][t],
                            "exact": float(exp["lo"][t, j]) == float(exp["hi"][t, j])})
    return x


# ---------------------------------------------------------------------------------------------
# HTML


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _fmt_num
    env.filters["approx"] = _approx
    return env


def _render_index(summary: dict[str, Any], page: dict[str, Any] | None = None) -> str:
    template = _environment().get_template("index.html.j2")
    page = page or {}
    n = summary["search"]["near_copies_listed"] if "search" in summary else summary["listed_count"]
    return template.render(s=summary, n=n, gamma_names=[_gname(g) for g in summary["gammas"]],
                           x=page.get("search"), top=page.get("top"))


def _approx(count: str) -> str:
    """"≈ 1.23e+30" for an exact decimal count too long to read at a glance, else ""."""
    try:
        return f"≈ {int(count):.3e}" if len(count) > 9 else ""
    except ValueError:
        return ""


def _fmt_num(v: Any) -> str:
    """Numbers for the header: floats to 6 significant digits, everything else as text."""
    if v is None or v == "":
        return "n/a"
    if v == "NaN" or (isinstance(v, float) and math.isnan(v)):      # τ, κ: NaN when not recorded
        return "unknown"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


# ---------------------------------------------------------------------------------------------
# helpers


def _column(arr: np.ndarray | None, j: int) -> np.ndarray | None:
    """Column ``j`` of a (K, G) per-γ dataset as bool, or None where it does not exist."""
    if arr is None or arr.ndim != 2 or arr.shape[1] <= j:
        return None
    return arr[:, j].astype(bool)


def _note(kind: str, text: str) -> dict[str, str]:
    return {"kind": kind, "text": text}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _say(on: bool, msg: str) -> None:
    if on:
        print(msg, file=sys.stderr, flush=True)


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(int(s)) for s in shape)


def _gname(g: float) -> str:
    return f"{g:g}"


def _num(v: float) -> float | str:
    """A float for JSON; ±inf and NaN become the strings JavaScript's Number() understands."""
    if math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def _gamma_map(m: Any) -> dict[float, Any]:
    """A JSON map keyed by γ (keys like "30" or "30.0") → {30.0: value}."""
    out: dict[float, Any] = {}
    if isinstance(m, dict):
        for key, v in m.items():
            try:
                out[float(key)] = v
            except (TypeError, ValueError):
                continue
    return out


def _jsonable(v: Any) -> Any:
    """numpy scalars/arrays and non-finite floats → plain JSON values."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return _num(float(v))
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v
