"""Memorization audit of any generator's images against its training set (FS-LAR §5.1).

:func:`audit` computes, for a set of generated images and the training images,

* the nearest training image and PSNR (peak 1) of every generated image,
* UIR(γ) (Eq. 9) and M-UIR(γ) greedy and strict (Eq. 10) for every γ, as rates and counts,
* peer statistics: AuthPct (Alaa et al. 2022), the C_T data-copying test (Meehan et
  al. 2020) and the nearest / second-nearest training distance ratio,
* the **baseline**: with held-out real images (``test_NCHW``), the same statistics for them
  (nearest training PSNR, UIR / M-UIR rates and counts, near-copy counts, PSNR distribution,
  AuthPct, NN ratio), so every generated rate can be read against what unseen real data
  scores. Without them the baseline is ``{"status": "unknown"}``, never a number.

Every per-image figure carries the image's name (``names``: a path relative to the folder
it was read from, or ``#i``, its index in a file) and its nearest training image's name;
``sets`` states where each set came from and in which order it was read (the order matters:
greedy M-UIR keeps images in that order). Pass :class:`fscert.data.Dataset` objects (or any
object with ``images`` and ``names``) to carry names; plain arrays are named ``#0``, ``#1``, ….

Everything is computed in pixel space (images in [0, 1], compared at their native size,
rows of C·H·W values) unless user features are given for both sets, in which case every
metric uses the feature rows instead (PSNR then means −10·log10 of the mean squared
feature difference).

C_T needs a held-out set from the training distribution: the test set when given (Meehan's
design). Without one, a deterministic ``ct_holdout`` fraction (default 0.2: evenly spaced
rows) of the training set is held out and C_T compares the generated images against the
remaining rows; a weaker test (the generator saw those rows), said in ``ct_test.test_source``.

γ keys in the report are :func:`gamma_key` strings: integers without a decimal point
("25"), other values as Python's shortest repr ("27.5").
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from . import __version__
from .errors import FscertError
from .hashing import sha256_array
from .jsonio import jsonable
from .metrics import copying, ratio as ratio_mod
from .metrics.authenticity import authenticity
from .metrics.nearest import GEN_BATCH, TRAIN_CHUNK, nearest
from .metrics.uir import m_uir_masks, passing_mask

#: the PSNR thresholds γ in dB (Eq. 9–10) of every command and config that takes γ: the one
#: source of this default (EnumerateConfig, CertifyConfig and the CLI read it)
DEFAULT_GAMMAS: tuple[float, ...] = (25.0, 30.0)
#: PSNR quantiles reported per set (percent)
QUANTILES = (5, 25, 50, 75, 95)
#: the PSNR histogram has at most this many bins (1 dB wide when the range allows)
MAX_BINS = 60
#: keys of an :func:`audit` result that hold per-image arrays (left out of :func:`report_json`)
PER_IMAGE_KEYS = ("per_image", "held_out_per_image", "names")


@dataclass
class AuditConfig:
    batch: int = GEN_BATCH
    chunk: int = TRAIN_CHUNK
    ct_cells: int | None = None                           #: None → copying.auto_cells
    ct_tau: float | None = None                           #: None → 20 / n_generated
    ct_holdout: float = copying.HOLDOUT_FRACTION          #: used when no test set is given
    ct_within_cell: bool = True
    seed: int = 0
    ratio_threshold: float = ratio_mod.RATIO_THRESHOLD
    extra: dict = field(default_factory=dict)             #: recorded in params as given


@dataclass
class ImageSet:
    """One input set: its images, one name per image, where it came from and in which order."""

    images: np.ndarray
    names: list[str]
    source: str = "array given to audit()"
    order: str = "stored order of the array"
    skipped: dict[str, int] = field(default_factory=dict)

    def describe(self) -> dict:
        return {"source": self.source, "n": int(np.shape(self.images)[0]), "order": self.order,
                "skipped": dict(self.skipped)}


def image_set(x, role: str) -> ImageSet:
    """An :class:`ImageSet` from a :class:`fscert.data.Dataset`-like object or a plain array."""
    if hasattr(x, "images") and hasattr(x, "names"):
        s = ImageSet(x.images, list(x.names), str(getattr(x, "source", role)),
                     str(getattr(x, "order", "stored order")), dict(getattr(x, "skipped", None) or {}))
    else:
        a = np.asarray(x)
        s = ImageSet(x, [f"#{i}" for i in range(a.shape[0] if a.ndim else 0)])
    if len(s.names) != np.shape(s.images)[0]:
        raise FscertError(f"{role} images: {len(s.names)} names for {np.shape(s.images)[0]} images")
    return s


def gamma_key(g: float) -> str:
    """Report key of a threshold: "25" for 25.0, "27.5" for 27.5."""
    g = float(g)
    return str(int(g)) if g.is_integer() else repr(g)


def check_gammas(gammas) -> list[float]:
    """Sorted unique thresholds; each must be a finite positive number."""
    out = []
    for g in gammas:
        try:
            v = float(g)
        except (TypeError, ValueError):
            raise FscertError(f"γ must be a number, got {g!r}") from None
        if not (math.isfinite(v) and v > 0):
            raise FscertError(f"γ must be a finite positive number, got {g}")
        out.append(v)
    if not out:
        raise FscertError("give at least one PSNR threshold γ")
    return sorted(set(out))


def _rows(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim < 2 or a.shape[0] == 0:
        raise FscertError(f"{name}: need a non-empty array with one row per image, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)) or a.dtype == bool:
        raise FscertError(f"{name}: values must be numbers, got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
        raise FscertError(f"{name}: holds NaN or infinite values")
    return a


def _check_images(train, gen, test) -> None:
    for name, x in (("generated", gen), ("test", test)):
        if x is not None and x.shape[1:] != train.shape[1:]:
            raise FscertError(f"{name} images are {_shape(x)} but training images are {_shape(train)}; "
                              "audit compares images at their native size (give --*-features to compare features)")


def _shape(x: np.ndarray) -> str:
    return "×".join(str(s) for s in x.shape[1:])


def _peer_ct(train_rows, test_rows, gen_rows, cfg: AuditConfig) -> dict:
    if test_rows is None:
        if train_rows.shape[0] < 3:
            return {"z": None, "skipped": "needs at least 3 training images for a held-out split"}
        keep, held = copying.holdout_split(train_rows.shape[0], cfg.ct_holdout)
        t, p = train_rows[keep], train_rows[held]
        source = {"test_source": "holdout", "holdout_fraction": cfg.ct_holdout,
                  "n_holdout": int(held.size), "note": "held-out rows were seen in training: a weaker test"}
    else:
        t, p = train_rows, test_rows
        source = {"test_source": "test", "n_test": int(test_rows.shape[0])}
    res = copying.ct_test(t, p, gen_rows, copying.CTConfig(cells=cfg.ct_cells, tau=cfg.ct_tau, seed=cfg.seed,
                                                           within_cell=cfg.ct_within_cell))
    return {**res.to_dict(), **source}


def plan_audit(n_gen: int, n_train: int, dim: int, n_gammas: int, held: list | tuple = (),
               n_test: int = 0) -> "Plan":
    """Estimated memory and time of :func:`audit`: the arrays ``held`` in memory (inputs), the
    nearest training rows of every generated row, greedy and strict M-UIR among the generated
    rows per γ, and the training set against itself (AuthPct); with ``n_test`` held-out rows,
    the same search for them (the baseline)."""
    from .resources import Plan, neighbour_step, resident_step

    plan = Plan()
    if held:
        plan.add(resident_step(f"hold {n_gen + n_train + n_test:,} images", *held))
    plan.add(neighbour_step(n_gen, n_train, dim, n_gammas=2 * n_gammas, self_search=True))
    if n_test:
        plan.add(neighbour_step(n_test, n_train, dim, n_gammas=2 * n_gammas))
    return plan


def psnr_summary(psnr_N: np.ndarray) -> dict:
    """Distribution of nearest-training PSNRs: count, identical images (+inf), min, median, the
    largest finite value and the :data:`QUANTILES` (sample values, +inf where identical)."""
    p = np.asarray(psnr_N, dtype=np.float64)
    finite = p[np.isfinite(p)]
    q = np.quantile(p, [v / 100 for v in QUANTILES], method="inverted_cdf")
    return {"n": int(p.size), "n_identical": int(np.isinf(p).sum()),
            "max_finite": float(finite.max()) if finite.size else None,
            "median": float(np.median(p)), "min": float(p.min()),
            "quantiles": {str(k): float(v) for k, v in zip(QUANTILES, q)}}


def psnr_histogram(gen_psnr: np.ndarray, test_psnr: np.ndarray | None) -> dict:
    """Counts of nearest-training PSNR per bin for both sets over shared bins (dB; bins are
    [edge_i, edge_i+1), 1 dB wide unless that needs more than :data:`MAX_BINS`); identical
    images (+inf) are counted apart. ``held_out`` is None without a test set."""
    sets = [np.asarray(gen_psnr, np.float64)] + ([np.asarray(test_psnr, np.float64)] if test_psnr is not None else [])
    finite = np.concatenate([p[np.isfinite(p)] for p in sets])
    if finite.size:
        lo, hi = math.floor(finite.min()), math.floor(finite.max()) + 1
        step = max(1, math.ceil((hi - lo) / MAX_BINS))
        edges = np.arange(lo, hi + step, step, dtype=np.float64)
        edges = edges[: int(np.searchsorted(edges, finite.max(), side="right")) + 1]
    else:
        edges = np.zeros(0)

    def counts(p):
        f = p[np.isfinite(p)]
        return np.histogram(f, edges)[0].astype(int).tolist() if edges.size > 1 else []

    return {"edges_db": edges.tolist(), "generated": counts(sets[0]),
            "held_out": counts(sets[1]) if len(sets) > 1 else None,
            "identical": {"generated": int(np.isinf(sets[0]).sum()),
                          "held_out": int(np.isinf(sets[1]).sum()) if len(sets) > 1 else None}}


def _set_stats(rows: np.ndarray, t_rows: np.ndarray, gs: list[float], cfg: AuditConfig,
               client=None, t_source=None) -> tuple[dict, dict]:
    """Every per-set statistic of ``rows`` against the training rows, and its per-image arrays.
    With a Dask ``client`` the two searches against the training set run sharded on its workers
    (:func:`fscert.metrics.sharded.nearest_sharded`: the same result, bit for bit); with
    ``t_source`` (a :class:`~fscert.metrics.sharded.FileRows` holding exactly ``t_rows``) each
    worker reads its training shard from the file itself."""
    n = rows.shape[0]
    search = None
    if client is None:
        nn = nearest(rows, t_rows, batch=cfg.batch, chunk=cfg.chunk)
    else:
        from .metrics.sharded import nearest_sharded       # imports dask: only with a cluster

        ref_rows = t_source if t_source is not None else t_rows
        nn = nearest_sharded(rows, ref_rows, client, batch=cfg.batch, chunk=cfg.chunk)

        def search(query, ref, exclude):
            return nearest_sharded(query, ref_rows if t_source is not None else ref, client, batch=cfg.batch,
                                   exclude=exclude)
    psnr = nn.psnr_N
    per: dict = {"index": np.arange(n), "nearest_train": nn.idx_N, "psnr": psnr}
    uir, mg_r, ms_r, counts = {}, {}, {}, {}
    for g in gs:
        k = gamma_key(g)
        pas = passing_mask(psnr, g)
        mg, ms = m_uir_masks(rows, pas, g, batch=cfg.batch, chunk=cfg.chunk)
        uir[k], mg_r[k], ms_r[k] = float(pas.mean()), float(mg.mean()), float(ms.mean())
        counts[k] = {"n": n, "near_copies": int(n - pas.sum()), "unique": int(pas.sum()),
                     "m_uir": int(mg.sum()), "m_uir_strict": int(ms.sum())}
        per[f"pass_{k}"], per[f"m_uir_{k}"], per[f"m_uir_strict_{k}"] = pas, mg, ms
        per[f"near_copy_{k}"] = ~np.asarray(pas, bool)          # 1 = a near-copy (PSNR ≥ γ): the readable flag
    stats = {"n": n, "uir": uir, "m_uir": mg_r, "m_uir_strict": ms_r, "counts": counts, "psnr": psnr_summary(psnr)}
    if t_rows.shape[0] >= 2:
        auth = authenticity(t_rows, rows, gen_nearest=nn, batch=cfg.batch, search=search)
        per["authentic"] = auth.authentic_N
        per["nn_ratio"] = ratio_mod.nn_ratio(nn)
        stats["authpct"] = auth.authpct
        stats["n_authentic"] = int(auth.authentic_N.sum())
        stats["nn_ratio"] = ratio_mod.summarize_ratio(per["nn_ratio"], cfg.ratio_threshold).to_dict()
    else:
        stats["authpct"], stats["n_authentic"] = None, None
        stats["nn_ratio"] = {"skipped": "needs at least 2 training images"}
    return stats, per


def audit(train_NCHW, gen_NCHW, gammas=DEFAULT_GAMMAS, features=None, test_NCHW=None,
          test_features=None, config: AuditConfig | None = None, max_memory: int | None = None,
          client=None, train_source=None) -> dict:
    """Audit ``gen_NCHW`` against ``train_NCHW`` (float32 in [0, 1], or any rows).

    Each image argument is an array or a :class:`fscert.data.Dataset` (names and order kept).
    ``features``: optional (train_features, generated_features) arrays, one row per image;
    when given, every metric uses them (``test_features`` then stands for ``test_NCHW``).
    ``test_NCHW``: held-out real images; they are the C_T test set and the baseline.

    Returns the report as a JSON-ready dict opening with ``verdict`` (one sentence per γ with
    counts and the baseline beside them), ``peers`` (each peer statistic with its meaning) and
    ``glossary`` (the terms used), plus ``per_image`` (numpy arrays per generated image:
    ``nearest_train``, ``psnr``, ``nn_ratio``, ``authentic`` and, per γ key, ``pass``,
    ``m_uir``, ``m_uir_strict`` masks), ``held_out_per_image`` (the same for the test set, or
    None) and ``names`` (per set). :func:`report_json` drops these three.

    Before the search, its memory and time are estimated (logged at INFO, :mod:`fscert.resources`); above
    ``max_memory`` bytes (default ¾ of the machine's memory) the audit refuses.
    
    ``client``: a Dask client; the searches against the training set then run on its workers
    (the same result). ``train_source``: a :class:`~fscert.metrics.sharded.FileRows` holding
    exactly the training rows, which each worker then reads its shard from
    (:func:`fscert.metrics.sharded.file_rows_for`); pixel space only.
    """
    from .audit_verdict import glossary_used, peer_words, verdict

    cfg = config or AuditConfig()
    gs = check_gammas(gammas)
    tr_set, ge_set = image_set(train_NCHW, "training"), image_set(gen_NCHW, "generated")
    te_set = None if test_NCHW is None else image_set(test_NCHW, "test")
    train = _rows(tr_set.images, "training images")
    gen = _rows(ge_set.images, "generated images")
    test = None if te_set is None else _rows(te_set.images, "test images")
    if features is None:
        if test_features is not None:
            raise FscertError("test features need training and generated features too")
        _check_images(train, gen, test)
        t_rows, g_rows, p_rows, space = train, gen, test, "pixels"
    else:
        t_rows, g_rows = (_rows(f, n) for f, n in zip(features, ("training features", "generated features")))
        for f, x, n in ((t_rows, train, "training"), (g_rows, gen, "generated")):
            if f.shape[0] != x.shape[0]:
                raise FscertError(f"{n} features have {f.shape[0]} rows for {x.shape[0]} images")
        p_rows = None
        if test is not None:
            if test_features is None:
                raise FscertError("a test set in feature space needs test features too")
            p_rows = _rows(test_features, "test features")
            if p_rows.shape[0] != test.shape[0]:
                raise FscertError(f"test features have {p_rows.shape[0]} rows for {test.shape[0]} images")
        dims = {int(np.prod(a.shape[1:])) for a in (t_rows, g_rows) + ((p_rows,) if p_rows is not None else ())}
        if len(dims) > 1:
            raise FscertError(f"feature arrays differ in length per row: {sorted(dims)}")
        space = "features"

    held = [train, gen] + ([test] if test is not None else []) + ([t_rows, g_rows] if features is not None else [])
    plan_audit(g_rows.shape[0], t_rows.shape[0], int(np.prod(t_rows.shape[1:])), len(gs), held,
               n_test=0 if p_rows is None else p_rows.shape[0]).check(max_memory)
    src = train_source if features is None else None          # the workers read pixel rows, not features
    gstats, per_image = _set_stats(g_rows, t_rows, gs, cfg, client, src)
    bstats, base_per = _set_stats(p_rows, t_rows, gs, cfg, client, src) if p_rows is not None else (None, None)
    ct = _peer_ct(t_rows, p_rows, g_rows, cfg)

    params = {
        "gammas": gs, "space": space, "image_shape": list(gen.shape[1:]),
        "train_image_shape": list(train.shape[1:]), "dim": int(np.prod(t_rows.shape[1:])),
        "psnr": "10*log10(1/MSE), peak 1, images in [0, 1]; +inf (null in JSON) for identical images",
        "gamma_keys": "integers as '25', other values as Python repr ('27.5')",
        "config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
        "sha256": {"train": sha256_array(train), "generated": sha256_array(gen)},
        "fscert_version": __version__, **cfg.extra,
    }
    if test is not None:
        params["sha256"]["test"] = sha256_array(test)
    if features is not None:
        params["sha256"]["train_features"] = sha256_array(np.asarray(features[0]))
        params["sha256"]["generated_features"] = sha256_array(np.asarray(features[1]))
        if test_features is not None:
            params["sha256"]["test_features"] = sha256_array(np.asarray(test_features))
    if bstats is None:
        baseline = {"status": "unknown",
                    "reason": "no held-out real images were given (--test), so what unseen real images score is "
                              "unknown and the generated rates cannot be read against it"}
    else:
        baseline = {"status": "computed", "what": "held-out real images (--test), against the same training set",
                    **bstats}
    names = {"train": tr_set.names, "generated": ge_set.names, "test": te_set.names if te_set else None}
    per_image["name"] = ge_set.names
    per_image["nearest_train_name"] = [tr_set.names[i] for i in per_image["nearest_train"]]
    if base_per is not None:
        base_per["name"] = te_set.names
        base_per["nearest_train_name"] = [tr_set.names[i] for i in base_per["nearest_train"]]
    result = {
        "sets": {"generated": ge_set.describe(), "train": tr_set.describe(),
                 "test": te_set.describe() if te_set else None},
        "n_train": int(train.shape[0]), "n_generated": int(gen.shape[0]),
        "uir": gstats["uir"], "m_uir": gstats["m_uir"], "m_uir_strict": gstats["m_uir_strict"],
        "counts": gstats["counts"], "psnr": gstats["psnr"],
        "psnr_histogram": psnr_histogram(per_image["psnr"], None if base_per is None else base_per["psnr"]),
        "authpct": gstats["authpct"], "n_authentic": gstats["n_authentic"], "ct_test": ct,
        "nn_ratio": gstats["nn_ratio"], "baseline": baseline,
        "params": params, "per_image": per_image, "held_out_per_image": base_per, "names": names,
    }
    return {"verdict": verdict(result), "peers": peer_words(result), "glossary": glossary_used(result), **result}


def report_json(result: dict, per_image: bool = False) -> dict:
    """The JSON part of an :func:`audit` result (per-image arrays dropped, non-finite → null).

    ``per_image=True`` adds ``images`` (one row per generated image with its name and its
    nearest training image's name), ``held_out_images`` (the same for the test set, or None)
    and ``copied_training_images`` (the training images that generated near-copies are
    nearest to, with how many and which), from :mod:`fscert.audit_tables`."""
    out = {k: v for k, v in result.items() if k not in PER_IMAGE_KEYS}
    if per_image:
        from .audit_tables import copied_training_images, image_rows

        out["images"] = image_rows(result, "generated")
        out["held_out_images"] = image_rows(result, "held_out") if result.get("held_out_per_image") else None
        out["copied_training_images"] = copied_training_images(result)
    return jsonable(out)


def summary_lines(result: dict, glossary: bool = True) -> list[str]:
    """The human summary of an audit result (see :func:`fscert.audit_verdict.summary_lines`)."""
    from .audit_verdict import summary_lines as lines

    return lines(result, glossary=glossary)
