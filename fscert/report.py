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
                    ``train-NNNN.png`` (the distinct nearest training images)
==================  ==========================================================================

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
    train_u8 = _check_train(cert, train_images, notes)
    _say(progress, f"report: {len(cert.prob)} listed images")

    with atomic_dir(out, force=force) as tmp:
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; a report is meant to be shared
        (tmp / "sprites").mkdir()
        gen = _write_generated_sprites(cert, tmp, notes, progress)
        train = None
        if train_u8 is not None and cert.nearest_train is not None and len(cert.prob) > 0:
            train = _write_train_sprites(cert.nearest_train, train_u8, tmp, progress)
        summary = summarize(cert, title=title, source=source, has_train=train is not None,
                            tile_source=gen["source"] if gen else None)
        summary["notes"] = notes
        _write_json(tmp / "summary.json", summary)
        _write_csv(tmp / "images.csv", cert)
        (tmp / "data.js").write_text(_data_js(cert, gen, train), encoding="utf-8")
        for name in STATIC_FILES:
            shutil.copyfile(TEMPLATE_DIR / name, tmp / name)
        (tmp / "index.html").write_text(_render_index(summary), encoding="utf-8")
    _say(progress, f"report: wrote {out / 'index.html'}")
    return out / "index.html"


def summarize(cert: Certificate, title: str | None = None, source: str | None = None,
              has_train: bool = False, tile_source: str | None = None) -> dict[str, Any]:
    """The header's numbers (also ``summary.json``): counts, per-γ metrics, config, hashes.

    Per-γ UIR, M-UIR and memorization mass come from the certificate's attributes; where an
    attribute is absent they are computed from the datasets (``computed`` lists which).
    Where the certificate did not examine every reachable image (``verdict_scope`` other than
    "complete"), every per-γ figure is None and ``verdict`` (per γ) says why, in words.
    """
    from .certify import has_figures, verdict_scope, verdict_words

    a = cert.attrs
    k = int(len(cert.prob))
    gammas = cert.gammas
    exact = has_figures(a)
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
        "has_images": cert.images is not None,
        "has_psnr": cert.psnr is not None,
        "has_train": has_train,
        "tile_source": tile_source,
    })


# ---------------------------------------------------------------------------------------------
# validation


def _check_train(cert: Certificate, train: np.ndarray | None, notes: list[dict[str, str]]) -> np.ndarray | None:
    """Validate the training images against the certificate; return them as uint8 N×C×S×S."""
    if train is None:
        if cert.nearest_train is not None and len(cert.prob):
            notes.append(_note("warn", "The training images were not provided (run `fscert report` with "
                                       "--train DATA): nearest training images are not shown, only their indices."))
        return None
    arr = np.asarray(train)
    if arr.ndim != 4:
        raise FscertError(f"training images must be N×C×S×S, got shape {arr.shape}")
    if cert.nearest_train is None:
        notes.append(_note("info", "Training images were given, but the certificate has no nearest-training "
                                   "indices (it was made without a model); they are not shown."))
        return None
    n = len(arr)
    nearest = np.asarray(cert.nearest_train)
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
                             progress: bool) -> dict[str, Any] | None:
    if len(cert.prob) == 0:
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


def _data_js(cert: Certificate, gen: dict[str, Any] | None, train: dict[str, Any] | None) -> str:
    """``window.FSCERT_REPORT = {...};`` — columns of per-image data for report.js."""
    k = len(cert.prob) if gen is not None else 0
    data: dict[str, Any] = {"n": k, "gammas": [_num(g) for g in cert.gammas], "gen": None, "train": None,
                            "prob": [], "psnr": None, "nearest": None, "trainSlot": None,
                            "flags": None, "muir": None}
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


def _write_csv(path: Path, cert: Certificate) -> None:
    gammas = cert.gammas
    k = len(cert.prob)
    header = ["index", "probability", "nearest_train", "psnr"]
    header += [f"near_copy_{_gname(g)}" for g in gammas] + [f"m_uir_{_gname(g)}" for g in gammas]
    cols: list[list[str]] = [[str(i) for i in range(k)], [repr(float(p)) for p in cert.prob.tolist()]]
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
# HTML


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _fmt_num
    env.filters["approx"] = _approx
    return env


def _render_index(summary: dict[str, Any]) -> str:
    template = _environment().get_template("index.html.j2")
    return template.render(s=summary, n=summary["listed_count"], gamma_names=[_gname(g) for g in summary["gammas"]])


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
