"""Static HTML report of a certificate: the verdict first, then every listed image with its
probability and its flags.

:func:`build_report` writes a self-contained folder that makes no network request (all CSS,
JavaScript and images are local files; a Content-Security-Policy forbids anything else) and
needs nothing outside it (no pointer to design notes or papers that are not shipped):

==================  ==========================================================================
``index.html``      the verdict per γ in words, with the counts of near-copies, the decoder's
                    fidelity floor (a γ it cannot reach is "not decidable", never "novel"), what
                    the certificate guarantees and assumes, the baseline
                    (:mod:`fscert.verdict_statement`); a glossary of the terms on the page;
                    the figures per γ (near-copies of the training images beside near-copies
                    of their reconstructions); per training image, which are copied, by how
                    many outputs, with what probability; a PSNR histogram; the image grid
                    (paginated, sortable, filterable); configuration and hashes, collapsed
``report.css``      styles (copied from ``reports/``)
``report.js``       client-side sorting, filtering and pagination (``reports/tiles.js``, the image
                    tile shared with the audit report, written in front of it) (only the current page's
                    tiles are put in the page, so 100,000 images stay fast)
``data.js``         one compact JSON object (columns: prob, psnr, nearest, flags, badges, …)
                    assigned to ``window.FSCERT_REPORT``; a script tag, because Chromium blocks
                    ``fetch`` of local files on ``file://``
``summary.json``    the page's numbers and words, machine-readable (``verdict``, ``glossary``)
``images.csv``      one row per listed image (:mod:`fscert.report_data`)
``training.csv``    listed certificates: one row per training image (:mod:`fscert.report_training`)
``psnr.png``        the PSNR histogram (:mod:`fscert.report_charts`)
``sprites/``        PNG sprite sheets (:mod:`fscert.report_sprites`): ``gen-NNNN.png`` (listed
                    images, or latents), ``train-NNNN.png`` (every training image, in order),
                    ``best-NNNN.png`` and ``top-NNNN.png``
==================  ==========================================================================

A *searched* certificate's page (:mod:`fscert.report_search`) adds the exposure of every
training image (``exposure.png``, ``exposure.csv``) and shows its listed near-copies in the grid;
the most probable outputs, when stored, have their own section (:mod:`fscert.report_top`).

The certificate stores ``nearest_train`` indices, not the training images, so those are
passed in (``train_images``, float32 N×C×S×S in [0, 1] from :func:`fscert.data.load_images`).
Every user-provided string reaches the page through jinja2 autoescaping or escaped JSON.
The folder is built in a temporary folder and renamed into place
(:func:`fscert.fileio.atomic_dir`): no half-written report ever exists.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import fscert

from .certificate import Certificate, attr_json, read_certificate
from .decidability import fidelity_record, recon_psnr
from .errors import FscertError
from .fileio import atomic_dir
from .figure_words import finite
from .report_charts import PSNR_PNG, write_exposure_chart, write_psnr_histogram
from .report_data import data_js, write_csv, write_exposure_csv, write_json
from .report_format import (approx, column, count_in_words, fmt_num, gamma_map, gname, jsonable, note,  # noqa: F401
                            shape_text, to_uint8, umask)
from .report_search import (EXPOSURE_PNG, exposure_ranking, is_searched, near_copy_view, search_gamma,  # noqa: F401
                            search_page, search_summary, training_rows, write_search_sprites)
from .report_sprites import image_tiles, latent_tiles, write_generated_sprites, write_sprites  # noqa: F401
from .report_top import top_count, top_page, top_summary, write_top_csv, write_top_sprites
from .report_training import (TRAINING_CSV, add_recon_and_decidability, grid_badges, training_view,
                              write_training_csv)
from .report_verdict import glossary_terms, verdict_page
from .verdict import SCOPE_COMPLETE, has_figures, verdict_scope, verdict_words
from .verdict_statement import statement

logger = logging.getLogger(__name__)

__all__ = ["build_report", "summarize", "check_train", "count_in_words", "exposure_ranking", "image_tiles",
           "latent_tiles", "TEMPLATE_DIR"]

from .shipped import TEMPLATE_DIR, copy_static  # noqa: E402  (reports/, or the installed fscert_reports)
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
    a path). An existing ``out_dir`` is refused unless ``force``. ``progress``: the sprite
    sheets' progress (:mod:`fscert.progress`); the number of images and the path written are
    DEBUG records.

    Raises :class:`FscertError` for a file that is not a certificate, an existing folder, and a
    training set that does not match the certificate (index out of range, other image shape).
    """
    if not isinstance(cert, Certificate):
        source = source if source is not None else str(cert)
        cert = read_certificate(cert)
    if not (TEMPLATE_DIR / "index.html.j2").is_file():
        raise FscertError(f"report templates not found in {TEMPLATE_DIR} (the fscert installation is incomplete)")
    out = Path(out_dir)
    if out.exists() and not force:  # before any work; atomic_dir checks again
        raise FscertError(f"output folder {out} already exists (use --force to overwrite)")
    notes: list[dict[str, str]] = []
    searched = is_searched(cert)
    shown = near_copy_view(cert) if searched else cert      # the images of this report
    train_u8 = check_train(shown, train_images, notes, searched=cert if searched else None)
    logger.debug(f"report: {len(shown.prob)} {'listed near-copies' if searched else 'listed images'}")

    with atomic_dir(out, force=force) as tmp:
        tmp.chmod(0o777 & ~umask())  # mkdtemp makes it private; a report is meant to be shared
        (tmp / "sprites").mkdir()
        gen = write_generated_sprites(shown, tmp, notes, progress, searched=searched)
        train = None
        sprites: dict[str, Any] = {}
        if train_u8 is not None and (searched or len(shown.prob)):  # every training image, tile t = image t
            sprites["train"] = write_sprites(image_tiles(train_u8)[0], tmp, "train", progress)
            if gen is not None and shown.nearest_train is not None:
                train = dict(sprites["train"], slot=np.asarray(shown.nearest_train, np.int64))
        if searched:
            sprites.update(write_search_sprites(cert, tmp, progress))
        if top_count(cert):
            sprites.update(write_top_sprites(cert, tmp, progress))
        summary = summarize(cert, title=title, source=source, has_train=train_u8 is not None if searched else
                            train is not None, tile_source=gen["source"] if gen else None)
        summary["notes"] = notes
        if searched and summary["search"]["training_images"]:
            write_exposure_chart(cert, tmp / EXPOSURE_PNG)
            summary["search"]["chart"] = EXPOSURE_PNG
            write_exposure_csv(tmp / "exposure.csv", cert)
        hist = psnr_histogram(cert, shown, tmp / PSNR_PNG)
        summary["psnr_histogram"] = hist
        view = None if searched else training_view(cert, len(train_u8) if train_u8 is not None else None,
                                                   train_u8 is not None)
        if view is not None:
            write_training_csv(tmp / TRAINING_CSV, cert, view)
        summary["training"] = ({"file": TRAINING_CSV, "means": view["words"], "copied": view["copied"]}
                               if view is not None else None)
        summary["glossary"] = glossary_terms(summary, view is not None, hist is not None)
        page = page_parts(cert, shown, summary, sprites, view)
        if summary.get("top"):
            write_top_csv(tmp / "top.csv", cert)
        write_json(tmp / "summary.json", summary)
        write_csv(tmp / "images.csv", shown, searched=cert if searched else None)
        (tmp / "data.js").write_text(data_js(shown, gen, train, extra=page["js"]), encoding="utf-8")
        copy_static(STATIC_FILES, tmp)
        (tmp / "index.html").write_text(render_index(summary, page), encoding="utf-8")
    logger.debug(f"report: wrote {out / 'index.html'}")
    return out / "index.html"


def summarize(cert: Certificate, title: str | None = None, source: str | None = None,
              has_train: bool = False, tile_source: str | None = None) -> dict[str, Any]:
    """The header's numbers (also ``summary.json``): counts, per-γ metrics, config, hashes.

    Per-γ UIR, M-UIR and memorization mass come from the certificate's attributes; where an
    attribute is absent they are computed from the datasets (``computed`` lists which).
    ``verdict`` is the auditor's statement (:func:`fscert.verdict_statement.statement`, the same
    block as ``fscert certify``'s summary.json). Where the certificate did not examine every
    reachable image (``verdict_scope`` "not-examined"), every per-γ figure is None (never 0)
    and ``scope_words`` (per γ) says why, in words.
    A searched certificate (``verdict_scope`` "searched") gives per γ the near-copy count and
    the memorization mass as [low, high] with ``exact`` (``near_copies``, ``memorization_mass``
    and ``uir`` only where exact, else None), and a ``search`` section: every listed near-copy
    (training index, PSNR, probability), the exposure of every training image and its ranking
    per γ (:func:`exposure_ranking`). ``top`` (any scope, when present): the most probable outputs.
    """
    a = cert.attrs
    k = int(len(cert.prob))
    gammas = cert.gammas
    exact = has_figures(a)
    searched = is_searched(cert)
    shown = near_copy_view(cert) if searched else cert       # the images the page shows
    uir = gamma_map(attr_json(cert, "uir", {}))
    muir = gamma_map(attr_json(cert, "m_uir", {}))
    mass = gamma_map(attr_json(cert, "memorization_mass", {}))
    per_gamma = []
    computed: set[str] = set()
    for j, g in enumerate(gammas):
        flags, members = column(cert.flags, j), column(cert.m_uir, j)
        row: dict[str, Any] = {"gamma": g, "near_copies": None, "uir": uir.get(g),
                               "m_uir": muir.get(g), "memorization_mass": mass.get(g),
                               "scope_words": verdict_words(a, g)}
        if searched:                                  # proven figures only: exact, or [low, high]
            row.update(search_gamma(cert, g), m_uir=None)
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
    st = statement(cert)
    for row, said in zip(per_gamma, st["per_gamma"].values()):   # near-copies of the reconstructions
        row.update(recon_near_copies=said["recon"]["near_copies"],
                   recon_memorization_mass=said["recon"]["memorization_mass"],
                   status=said["status"], label=said["label"])
    config = attr_json(cert, "config", {})
    extra: dict[str, Any] = {}
    if searched:
        extra["search"] = search_summary(cert, config if isinstance(config, dict) else {})
    if top_count(cert):
        extra["top"] = top_summary(cert)
    return jsonable({
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
        "verdict": st,
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
    }, "js")


# ---------------------------------------------------------------------------------------------
# validation


def check_train(cert: Certificate, train: np.ndarray | None, notes: list[dict[str, str]],
                 searched: Certificate | None = None) -> np.ndarray | None:
    """Validate the training images against the certificate; return them as uint8 N×C×S×S.

    ``cert`` holds the images the report shows (a searched certificate's near-copies,
    :func:`near_copy_view`); ``searched`` is the searched certificate itself, whose per-training-
    image rows (exposure, best output) must be one per training image."""
    n_rows = training_rows(searched) if searched is not None else None
    if train is None:
        if searched is not None and n_rows:
            notes.append(note("warn", "The training images were not provided (run `fscert report` with "
                                       "--train DATA): the exposure table and the near-copies show training "
                                       "image indices only, not the images."))
        elif cert.nearest_train is not None and len(cert.prob):
            notes.append(note("warn", "The training images were not provided (run `fscert report` with "
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
                              f"{shape_text(arr.shape[1:])} but the certificate's images are {shape_text(best.shape[1:])}")
    if cert.nearest_train is None and searched is None:
        notes.append(note("info", "Training images were given, but the certificate has no nearest-training "
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
                          f"{shape_text(arr.shape[1:])} but the certificate's images are {shape_text(cert.images.shape[1:])}")
    expected = str(cert.attrs.get("train_sha256") or "")
    if expected and arr.dtype == np.float32:
        from .data import data_sha256

        if data_sha256(arr) != expected:
            msg = ("the training images' fingerprint differs from the certificate's train_sha256: the nearest "
                   "training images shown may not be the ones the certificate was computed against")
            warnings.warn(msg)
            notes.append(note("warn", msg[0].upper() + msg[1:] + "."))
    return to_uint8(arr)


# ---------------------------------------------------------------------------------------------
# the page


def psnr_histogram(cert: Certificate, shown: Certificate, path: Path) -> dict[str, Any] | None:
    """Write ``psnr.png`` (:func:`fscert.report_charts.write_psnr_histogram`) from what the
    certificate holds: the listed images' PSNR to their nearest training image (counted, and
    weighted by probability), a searched certificate's best reachable PSNR per training image
    (exact ones only), and the decoder's reconstruction PSNR of each training image."""
    series: list[tuple[str, np.ndarray, np.ndarray | None]] = []
    if shown.psnr is not None and len(shown.psnr):
        what = ("listed near-copies" if shown is not cert else "possible outputs"
                if verdict_scope(cert.attrs) == SCOPE_COMPLETE else "listed outputs (not every possible one)")
        series.append((f"{what} (share of the {len(shown.psnr)} images)", shown.psnr, None))
        series.append((f"{what}, weighted by probability", shown.psnr, shown.prob))
    best, kind = cert.extra.get("best_psnr"), cert.extra.get("best_kind")
    if best is not None and len(best):
        exact = np.asarray(kind) == 0 if kind is not None and len(kind) == len(best) else \
            np.asarray(cert.extra.get("best_exact", np.zeros(len(best), bool)), bool)
        if exact.any():
            series.append((f"best reachable output per training image ({int(exact.sum())} exact)",
                           np.asarray(best, np.float64)[exact], None))
    recon = recon_psnr(cert)
    if recon is not None and len(recon):
        series.append((f"decoder's reconstructions of the {len(recon)} training images", recon, None))
    if not series or not cert.gammas:
        return None
    fid = fidelity_record(cert)
    drawn = write_psnr_histogram(path, series, cert.gammas, "How close outputs come to the training images",
                                 median=finite(fid.get("psnr_median")) if fid else None)
    if drawn is None:
        return None
    return {"file": PSNR_PNG, **drawn}


def page_parts(cert: Certificate, shown: Certificate, summary: dict[str, Any], sprites: dict[str, Any],
               view: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the page needs beyond summary.json: the template's ``v`` (verdict), ``x`` (searched),
    ``tv`` (per training image, listed), ``top``, and data.js's extra keys (the exposure or
    per-training table's columns, sprite layouts, per-image badges, other pairs)."""
    js: dict[str, Any] = {"sprites": jsonable(sprites, "js")}
    page: dict[str, Any] = {"js": js, "search": None, "top": top_page(summary, sprites), "training": None,
                            "verdict": verdict_page(summary["verdict"])}
    if "search" in summary:
        x = search_page(cert, summary, sprites, js)
        x["recon"] = bool(js.get("exposure")) and add_recon_and_decidability(js["exposure"], x["table"], cert)
        page["search"] = x
    elif view is not None:
        js["exposure"] = view["js"]
        page["training"] = {k: v for k, v in view.items() if k not in ("js", "arrays")}
    js["badges"] = grid_badges(shown, cert)
    rf = cert.extra.get("recon_flags") if not is_searched(cert) else None
    if rf is not None and rf.ndim == 2 and len(rf) == len(shown.prob) and rf.shape[1] >= len(cert.gammas):
        js["reconFlags"] = [rf[:, j].astype(np.uint8).tolist() for j in range(len(cert.gammas))]
    return page


def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = fmt_num
    env.filters["approx"] = approx
    return env


def render_index(summary: dict[str, Any], page: dict[str, Any] | None = None) -> str:
    template = environment().get_template("index.html.j2")
    page = page or {}
    n = summary["search"]["near_copies_listed"] if "search" in summary else summary["listed_count"]
    return template.render(s=summary, n=n, gamma_names=[gname(g) for g in summary["gammas"]],
                           x=page.get("search"), top=page.get("top"), v=page.get("verdict"),
                           tv=page.get("training"))
