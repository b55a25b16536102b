"""Memorization audit of any generator's images against its training set (FS-LAR §5.1).

:func:`audit` computes, for a set of generated images and the training images,

* the nearest training image and PSNR (peak 1) of every generated image,
* UIR(γ) (Eq. 9) and M-UIR(γ) greedy and strict (Eq. 10) for every γ,
* peer statistics: AuthPct (Alaa et al. 2022), the C_T data-copying test (Meehan et
  al. 2020) and the nearest / second-nearest training distance ratio.

Everything is computed in pixel space (images in [0, 1], compared at their native size,
rows of C·H·W values) unless user features are given for both sets, in which case every
metric uses the feature rows instead (PSNR then means −10·log10 of the mean squared
feature difference).

C_T needs a held-out set from the training distribution. Without one, a deterministic
``ct_holdout`` fraction (default 0.2: evenly spaced rows) of the training set is held out
and C_T compares the generated images against the remaining rows. This is a weaker test
than a true held-out set (the generator saw the held-out rows during training), which the
report says in ``ct_test.test_source``.

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
from .metrics import copying, ratio as ratio_mod
from .metrics.nearest import GEN_BATCH, TRAIN_CHUNK, nearest
from .metrics.uir import m_uir_masks, passing_mask
from .metrics.authenticity import authenticity

DEFAULT_GAMMAS = (25.0, 30.0)


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


def _clean(x):
    """JSON-safe copy: numpy scalars → Python, non-finite floats → None."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    return x


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


def plan_audit(n_gen: int, n_train: int, dim: int, n_gammas: int, held: list | tuple = ()) -> "Plan":
    """Estimated memory and time of :func:`audit`: the arrays ``held`` in memory (inputs), the
    nearest training rows of every generated row, greedy and strict M-UIR among the generated
    rows per γ, and the training set against itself (AuthPct)."""
    from .resources import Plan, neighbour_step, resident_step

    plan = Plan()
    if held:
        plan.add(resident_step(f"hold {n_gen + n_train:,} images", *held))
    return plan.add(neighbour_step(n_gen, n_train, dim, n_gammas=2 * n_gammas, self_search=True))


def audit(train_NCHW, gen_NCHW, gammas=DEFAULT_GAMMAS, features=None, test_NCHW=None,
          test_features=None, config: AuditConfig | None = None, max_memory: int | None = None,
          log=None) -> dict:
    """Audit ``gen_NCHW`` against ``train_NCHW`` (float32 in [0, 1], or any rows).

    ``features``: optional (train_features, generated_features) arrays, one row per image;
    when given, every metric uses them (``test_features`` then stands for ``test_NCHW``).
    Returns the report as a JSON-ready dict, plus ``per_image``: numpy arrays per generated
    image (``nearest_train``, ``psnr``, ``nn_ratio``, ``authentic`` and, per γ key,
    ``pass``, ``m_uir``, ``m_uir_strict`` masks). :func:`report_json` drops ``per_image``.

    Before the search, its memory and time are estimated (printed with ``log``); above
    ``max_memory`` bytes (default ¾ of the machine's memory) the audit refuses.
    """
    cfg = config or AuditConfig()
    gs = check_gammas(gammas)
    train = _rows(train_NCHW, "training images")
    gen = _rows(gen_NCHW, "generated images")
    test = None if test_NCHW is None else _rows(test_NCHW, "test images")
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
    plan_audit(g_rows.shape[0], t_rows.shape[0], int(np.prod(t_rows.shape[1:])), len(gs), held).check(max_memory, log)
    nn = nearest(g_rows, t_rows, batch=cfg.batch, chunk=cfg.chunk)
    psnr = nn.psnr_N
    per_image: dict = {"index": np.arange(gen.shape[0]), "nearest_train": nn.idx_N, "psnr": psnr}
    uir_r, mg_r, ms_r = {}, {}, {}
    for g in gs:
        k = gamma_key(g)
        pas = passing_mask(psnr, g)
        mg, ms = m_uir_masks(g_rows, pas, g, batch=cfg.batch, chunk=cfg.chunk)
        uir_r[k], mg_r[k], ms_r[k] = float(pas.mean()), float(mg.mean()), float(ms.mean())
        per_image[f"pass_{k}"], per_image[f"m_uir_{k}"], per_image[f"m_uir_strict_{k}"] = pas, mg, ms

    if t_rows.shape[0] >= 2:
        auth = authenticity(t_rows, g_rows, gen_nearest=nn, batch=cfg.batch)
        authpct = auth.authpct
        per_image["authentic"] = auth.authentic_N
        ratio_N = ratio_mod.nn_ratio(nn)
        per_image["nn_ratio"] = ratio_N
        nn_ratio = ratio_mod.summarize_ratio(ratio_N, cfg.ratio_threshold).to_dict()
    else:
        authpct, nn_ratio = None, {"skipped": "needs at least 2 training images"}
    ct = _peer_ct(t_rows, p_rows, g_rows, cfg)

    finite = psnr[np.isfinite(psnr)]
    params = {
        "gammas": gs, "space": space, "image_shape": list(gen.shape[1:]),
        "train_image_shape": list(train.shape[1:]), "dim": nn.dim,
        "psnr": "10*log10(1/MSE), peak 1, images in [0, 1]; +inf (null in JSON) for identical images",
        "gamma_keys": "integers as '25', other values as Python repr ('27.5')",
        "config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
        "sha256": {"train": sha256_array(np.asarray(train_NCHW)), "generated": sha256_array(np.asarray(gen_NCHW))},
        "fscert_version": __version__, **cfg.extra,
    }
    if test is not None:
        params["sha256"]["test"] = sha256_array(np.asarray(test_NCHW))
    if features is not None:
        params["sha256"]["train_features"] = sha256_array(np.asarray(features[0]))
        params["sha256"]["generated_features"] = sha256_array(np.asarray(features[1]))
        if test_features is not None:
            params["sha256"]["test_features"] = sha256_array(np.asarray(test_features))
    return {
        "n_train": int(train.shape[0]), "n_generated": int(gen.shape[0]),
        "uir": uir_r, "m_uir": mg_r, "m_uir_strict": ms_r,
        "psnr": {"n_identical": int(np.isinf(psnr).sum()),
                 "max_finite": float(finite.max()) if finite.size else None,
                 "median": float(np.median(psnr)), "min": float(psnr.min())},
        "authpct": authpct, "ct_test": ct, "nn_ratio": nn_ratio,
        "params": params, "per_image": per_image,
    }


def report_json(result: dict) -> dict:
    """The JSON part of an :func:`audit` result (``per_image`` dropped, non-finite → null)."""
    return _clean({k: v for k, v in result.items() if k != "per_image"})


def summary_lines(result: dict) -> list[str]:
    """A short human summary of an audit result."""
    p = result["params"]
    lines = [f"audit: {result['n_generated']} generated vs {result['n_train']} training images "
             f"({p['space']}, {p['dim']} values per row); {result['psnr']['n_identical']} exact copies"]
    for k in result["uir"]:
        lines.append(f"  γ={k}: UIR {result['uir'][k]:.4f}  M-UIR {result['m_uir'][k]:.4f} "
                     f"(strict {result['m_uir_strict'][k]:.4f})")
    peers = []
    if result["authpct"] is not None:
        peers.append(f"AuthPct {result['authpct']:.1f}%")
    ct = result["ct_test"]
    if ct.get("z") is not None:
        peers.append(f"C_T z {ct['z']:.2f} ({ct['cells_used']}/{ct['cells']} cells, {ct['test_source']})")
    else:
        peers.append(f"C_T n/a ({ct.get('skipped', 'no cell has enough generated images')})")
    r = result["nn_ratio"]
    if "frac_below" in r:
        peers.append(f"NN ratio < {r['threshold']:.3g}: {100 * r['frac_below']:.1f}%")
    lines.append("  " + "  ".join(peers))
    return lines
