"""The certificate file (HDF5, format version 2; version 1 still read): every image a generator can produce.

Written by :mod:`fscert.enumerate` (`fscert enumerate`), checked by `fscert verify`, read by
the report. Datasets (K = number of listed latents, G = number of PSNR thresholds γ):

==================  ================  ==========================================================
``latents``         int8 (K,M,H,W)    every listed latent, in deterministic listing order
                                      (empirical: depth-first, tokens ascending = lexicographic
                                      in the raster token sequence; full support: row j ↔ the
                                      base-2^M digits of j, see ``enumeration.full_support``)
``prob``            float64 (K,)      exact probability of each latent, renormalised by
                                      (1 − dead_end_mass) so that it sums to 1 (DESIGN §6.4)
``log_prob``        float64 (K,)      log of ``prob``, summed from the log conditionals (exact
                                      for probabilities below float64 range; optional)
``images``          uint8 (K,C,S,S)   decoded images (only with a model)
``nearest_train``   int64 (K,)        index of the nearest training image (only with a model)
``psnr``            float64 (K,)      PSNR to that training image, peak 1 (only with a model)
``flags``           bool (K,G)        UIR flag per γ: True where PSNR ≥ γ, a near-copy
                                      (only with a model; attribute ``gammas``)
``m_uir``           bool (K,G)        M-UIR (greedy) membership per γ (only with a model),
                                      greedy walk in listing order (DESIGN §7)
==================  ================  ==========================================================

With ``count_only`` the datasets are present but empty (K = 0) and only the attributes count.

File attributes: ``format`` ("fscert-certificate"), ``format_version`` (2), ``fscert_version``,
``mode`` ("empirical" or "full-support"), ``reachable_count`` (exact decimal string; full
support: latents with prob > 0), ``listed_count``, ``count_only``, ``dead_end_mass`` (0 in full
support), ``rho``, ``tau``, ``kappa`` (NaN when unknown: empirical sets record them when drawn),
``anchoring`` ("position"), ``latents_sha256`` (input latents: :func:`latents_sha256` of the
latents and counts arrays), ``model_sha256`` (``hashing.sha256_state_dict``) and
``train_sha256`` (``data.data_sha256`` of the loaded float32 training array) — empty strings
without a model, ``gammas``, and per-γ JSON maps (keys are γ as strings, e.g. "30.0"):

* ``uir`` — unweighted UIR (Eq. 9): fraction of the *listed distinct images* with PSNR < γ;
* ``uir_weighted`` — probability-weighted UIR: Σ prob over images with PSNR < γ, i.e. the
  chance that one generated image is not a near-copy;
* ``m_uir`` / ``m_uir_weighted`` — M-UIR (greedy) membership: fraction of listed images /
  probability mass of the members;
* ``memorization_mass`` — Σ prob over near-copies (PSNR ≥ γ) = 1 − ``uir_weighted``;

``verdict_scope`` — what those figures cover: "complete" (every reachable image is listed and,
with a model and training images, decoded and checked) or "not-examined" (count-only or a
partial listing: the per-γ map values are JSON null, never 0; ``fscert.enumerate.verdict_words``
says it in words). Files without it are read as "complete" only when the listing is complete;

``content_sha256`` (one hash over every dataset, :func:`content_hash`), ``config`` (JSON: the
full run configuration — rho, max_images, gammas, train spec and limit, decode batch, …).
Informational: ``empirical_rows`` / ``empirical_total`` (distinct rows of the input set and
Σ counts), ``max_frontier_states`` (empirical mode: largest layer of the frontier DP).

Where images are compared, and how sharp the decoder is (with a model and training images):

* ``geometry`` (JSON, :mod:`fscert.geometry`) — ``compared_hw``, ``canvas_hw``, ``offset``,
  ``how`` ("native": at the stored size, e.g. 28×28 at (2, 2) of the 32×32 canvas; "resized":
  on the canvas, the stored size having been resized; "canvas": whole canvas, stored size not
  known) and ``words``. Every PSNR above is over that region only. Files without it compared
  on the whole canvas and are read so;
* ``fidelity`` (JSON, :mod:`fscert.fidelity`) — the decoder's reconstruction PSNR of the
  training images from their own latents: n, mean, median, min, max, quantiles, per γ
  ``reach`` and ``decidable`` (median ≥ γ), ``rule``; ``status`` "unknown" + ``reason`` with
  null figures where it was not computed. Datasets ``train_latents`` (int8, one per training
  image) and ``recon_psnr`` (float64, one per training image); ``train_latents_sha256``;
* ``recon_near_copies`` / ``recon_memorization_mass`` (per-γ maps: count and exact mass of the
  outputs within γ of some training image's reconstruction; null where not established) with
  ``recon_verdict`` (JSON: scope, words, searched intervals) and, for listed images, dataset
  ``recon_flags`` (bool K×G).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import FscertError

from .fileio import atomic_path
from .hashing import sha256_arrays
from .h5input import H5Input, check_attrs, describe_values, h5_input, input_error
from .latents import check_pm1

if TYPE_CHECKING:
    import h5py

FORMAT = "fscert-certificate"
FORMAT_VERSION = 2
DATASETS = ("latents", "prob", "log_prob", "images", "nearest_train", "psnr", "flags", "m_uir")


@dataclass
class Certificate:
    latents: np.ndarray
    prob: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)
    log_prob: np.ndarray | None = None
    images: np.ndarray | None = None
    nearest_train: np.ndarray | None = None
    psnr: np.ndarray | None = None
    flags: np.ndarray | None = None
    m_uir: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)    # format 2: the near-copy search (SEARCH_SPEC)

    @property
    def gammas(self) -> list[float]:
        return [float(g) for g in np.atleast_1d(self.attrs.get("gammas", []))]

    @property
    def reachable_count(self) -> int:
        return int(self.attrs.get("reachable_count", "0"))

    def datasets(self) -> dict[str, np.ndarray]:
        d = {k: getattr(self, k) for k in DATASETS if getattr(self, k) is not None}
        d.update({k: v for k, v in self.extra.items() if v is not None})
        return d


def latents_sha256(latents: np.ndarray, counts: np.ndarray | None = None) -> str:
    """Fingerprint of an input latent set: latents (int8) and counts (int64, default 1)."""
    z = np.ascontiguousarray(latents, np.int8)
    c = np.ones(len(z), np.int64) if counts is None else np.ascontiguousarray(counts, np.int64)
    return sha256_arrays({"latents": z, "counts": c})


def content_hash(cert: Certificate) -> str:
    """SHA-256 over every dataset (name, dtype, shape, bytes), in sorted name order."""
    return sha256_arrays(cert.datasets())


def write_certificate(path: str | os.PathLike, cert: Certificate) -> str:
    """Write atomically; sets ``content_sha256`` and the format attributes. Returns the hash."""
    import h5py

    from . import __version__

    digest = content_hash(cert)
    attrs = dict(cert.attrs)
    attrs.update(format=FORMAT, format_version=FORMAT_VERSION, fscert_version=__version__, content_sha256=digest)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for name, arr in cert.datasets().items():
                kw = {"compression": "gzip", "compression_opts": 4} if arr.size > 0 and arr.ndim >= 1 else {}
                ds = f.create_dataset(name, data=arr, **kw)
                if name == "flags":
                    ds.attrs["gammas"] = np.asarray(cert.gammas, np.float64)
            for k, v in attrs.items():
                f.attrs[k] = v if isinstance(v, (str, int, float, bool, np.integer, np.floating, np.ndarray)) else json.dumps(v)
    cert.attrs = attrs
    return digest


#: dataset → (dtype, number of dimensions) in format version 1
DATASET_SPEC: dict[str, tuple[np.dtype, int]] = {
    "latents": (np.dtype(np.int8), 4), "prob": (np.dtype(np.float64), 1), "log_prob": (np.dtype(np.float64), 1),
    "images": (np.dtype(np.uint8), 4), "nearest_train": (np.dtype(np.int64), 1), "psnr": (np.dtype(np.float64), 1),
    "flags": (np.dtype(np.bool_), 2), "m_uir": (np.dtype(np.bool_), 2)}
#: format 2: datasets of the near-copy search (fscert.verdict), by row family → (dtype, ndim).
#: ``near_*``: every listed near-copy (K'); ``pair_*``: every (near-copy, training image) pair
#: within the smallest γ (P); ``exposure_*`` (S, G) and ``best_*`` (S): per training image;
#: ``top_*``: the most probable outputs (fscert.probable).
SEARCH_SPEC: dict[str, dict[str, tuple[np.dtype, int]]] = {
    "near": {"near_latents": (np.dtype(np.int8), 4), "near_prob": (np.dtype(np.float64), 1),
             "near_log_prob": (np.dtype(np.float64), 1), "near_images": (np.dtype(np.uint8), 4),
             "near_nearest_train": (np.dtype(np.int64), 1), "near_psnr": (np.dtype(np.float64), 1),
             "near_flags": (np.dtype(np.bool_), 2)},
    "pair": {"pair_row": (np.dtype(np.int64), 1), "pair_train": (np.dtype(np.int64), 1),
             "pair_psnr": (np.dtype(np.float64), 1)},
    "train": {"exposure_low": (np.dtype(np.float64), 2), "exposure_high": (np.dtype(np.float64), 2),
              "exposure_count_low": (np.dtype(np.float64), 2), "exposure_count_high": (np.dtype(np.float64), 2),
              "best_latents": (np.dtype(np.int8), 4), "best_images": (np.dtype(np.uint8), 4),
              "best_psnr": (np.dtype(np.float64), 1), "best_exact": (np.dtype(np.bool_), 1),
              "best_kind": (np.dtype(np.int8), 1),
              "best_prob": (np.dtype(np.float64), 1),
              # fscert.fidelity: each training image's own latent and its reconstruction PSNR
              "train_latents": (np.dtype(np.int8), 4), "recon_psnr": (np.dtype(np.float64), 1)},
    "top": {"top_latents": (np.dtype(np.int8), 4), "top_prob": (np.dtype(np.float64), 1),
            "top_log_prob": (np.dtype(np.float64), 1), "top_images": (np.dtype(np.uint8), 4)},
    # fscert.fidelity: per listed image (K rows, G columns) a near-copy of a reconstruction
    "recon": {"recon_flags": (np.dtype(np.bool_), 2)},
}
SEARCH_DATASETS = {name: spec for fam in SEARCH_SPEC.values() for name, spec in fam.items()}
#: attributes every certificate has (written by :func:`write_certificate` and ``certify``), and their kinds
REQUIRED_ATTRS = {"format": "str", "format_version": "int", "fscert_version": "str", "content_sha256": "str",
                  "mode": "str", "reachable_count": "decimal", "listed_count": "int", "count_only": "bool"}
#: attributes checked where present
OPTIONAL_ATTRS = {"dead_end_mass": "real", "rho": "real", "tau": "real", "kappa": "real", "anchoring": "str",
                  "latents_sha256": "str", "model_sha256": "str", "train_sha256": "str", "config": "json-object",
                  "gammas": "reals", "uir": "number-map", "uir_weighted": "number-map", "m_uir": "number-map",
                  "m_uir_weighted": "number-map", "memorization_mass": "number-map", "empirical_rows": "int",
                  "empirical_total": "int", "max_frontier_states": "int", "verdict_scope": "str",
                  # format 2, the near-copy search (fscert.verdict)
                  "memorization_mass_low": "number-map", "memorization_mass_high": "number-map",
                  "near_copy_count_low": "json-object", "near_copy_count_high": "json-object",
                  "near_copy_exact": "json-object", "near_copy_reason": "json-object", "search": "json-object",
                  "top_k": "int", "top_mass": "real", "top_note": "str",
                  # the comparison geometry (fscert.geometry) and the decoder's fidelity (fscert.fidelity)
                  "geometry": "json-object", "fidelity": "json-object", "train_latents_sha256": "str",
                  "recon_near_copies": "number-map", "recon_memorization_mass": "number-map",
                  "recon_verdict": "json-object"}
#: log_prob may exceed 0 by rounding where a renormalised probability is 1
LOG_PROB_SLACK = 1e-9


def _check_attrs(src: H5Input, attrs: dict[str, Any]) -> None:
    """The format attributes first (a clear message for another kind of file), then the kinds."""
    if not (isinstance(attrs.get("format"), str) and attrs["format"] == FORMAT):
        raise src.error(f"is not an fscert certificate (no format='{FORMAT}' attribute)")
    version = attrs.get("format_version")
    if version is None:
        raise src.error("has no 'format_version' attribute")
    if not isinstance(version, int) or isinstance(version, bool):
        raise src.error(f"attribute 'format_version' must be an integer, found {type(version).__name__}")
    if version > FORMAT_VERSION:
        raise src.error(f"has certificate format {version}; this fscert reads up to {FORMAT_VERSION}")
    if version < 1:
        raise src.error(f"has unknown certificate format version {version}")
    check_attrs(src.label, attrs, REQUIRED_ATTRS, required=True)
    check_attrs(src.label, attrs, OPTIONAL_ATTRS)


def _datasets(src: H5Input, attrs: dict[str, Any]) -> dict[str, "h5py.Dataset"]:
    """The datasets present, with dtypes and shapes checked against the format, each other and
    the attributes — from metadata alone, before any data is read."""
    found = {name: src.dataset(name, dt, ndim) for name, (dt, ndim) in DATASET_SPEC.items()}
    ds = {name: d for name, d in found.items() if d is not None}
    for name in ("latents", "prob"):
        if name not in ds:
            raise src.error(f"is missing the '{name}' dataset")
    k = ds["latents"].shape[0]
    for name, d in ds.items():
        if d.shape[0] != k:
            raise src.error(f"dataset '{name}' has {d.shape[0]} rows, 'latents' has {k}")
    for family in SEARCH_SPEC.values():
        got = {name: src.dataset(name, dt, ndim) for name, (dt, ndim) in family.items()}
        got = {name: d for name, d in got.items() if d is not None}
        rows = {d.shape[0] for d in got.values()}
        if len(rows) > 1:
            raise src.error(f"datasets {', '.join(sorted(got))} must have the same number of rows, found {sorted(rows)}")
        for name in ("near_latents", "best_latents", "top_latents", "near_images", "best_images", "top_images",
                     "train_latents"):
            if name in got and min(got[name].shape[1:]) == 0:
                raise src.error(f"dataset '{name}' must have non-empty rows, found shape {got[name].shape}")
        ds.update(got)
    for name in ("latents", "images"):
        if name in ds and min(ds[name].shape[1:]) == 0:
            raise src.error(f"dataset '{name}' must have non-empty rows, found shape {ds[name].shape}")
    g = len(np.atleast_1d(attrs.get("gammas", [])))
    for name in ("flags", "m_uir", "recon_flags"):
        if name in ds and ds[name].shape[1] != g:
            raise src.error(f"dataset '{name}' has {ds[name].shape[1]} columns, 'gammas' lists {g}")
    if "recon_flags" in ds and ds["recon_flags"].shape[0] != k:
        raise src.error(f"dataset 'recon_flags' has {ds['recon_flags'].shape[0]} rows, 'latents' has {k}")
    if attrs["listed_count"] != k:
        raise src.error(f"attribute 'listed_count' is {attrs['listed_count']}, 'latents' has {k} rows")
    if attrs["count_only"] and k:
        raise src.error(f"is count-only but lists {k} latents")
    return ds


def _check_values(label: str, data: dict[str, np.ndarray]) -> None:
    """The values of the datasets (their dtypes and shapes are checked already)."""
    def bad(name: str, what: str, mask: np.ndarray) -> FscertError:
        return input_error(label, f"dataset '{name}' must be {what}, found {int(mask.sum())} other values "
                                  f"(values {describe_values(data[name][mask])})")

    check_pm1(data["latents"], label)
    for name in ("near_latents", "best_latents", "top_latents", "train_latents"):
        if name in data and len(data[name]):
            real = data[name]
            if name == "best_latents" and "best_kind" in data:          # rows with a reachable output: exact, "at least"
                real = real[(data["best_kind"] == 0) | (data["best_kind"] == 2)]
            elif name == "best_latents" and "best_exact" in data:
                real = real[data["best_exact"]]
            check_pm1(real, label)
    for name in ("near_prob", "top_prob", "exposure_low", "exposure_high"):
        if name in data:
            mask = ~((data[name] >= 0) & (data[name] <= 1)) & ~np.isnan(data[name])
            if mask.any():
                raise bad(name, "probabilities in [0, 1] (or NaN: unknown)", mask)
    prob = data["prob"]
    mask = ~((prob >= 0) & (prob <= 1))                      # NaN fails both comparisons
    if mask.any():
        raise bad("prob", "probabilities in [0, 1]", mask)
    if "log_prob" in data:
        mask = ~(data["log_prob"] <= LOG_PROB_SLACK)
        if mask.any():
            raise bad("log_prob", "log-probabilities ≤ 0", mask)
    if "nearest_train" in data:
        mask = data["nearest_train"] < 0
        if mask.any():
            raise bad("nearest_train", "indices ≥ 0", mask)
    for name in ("psnr", "recon_psnr"):
        if name in data:
            mask = np.isnan(data[name])
            if mask.any():
                raise bad(name, "numbers (not NaN)", mask)


def read_certificate(path: str | os.PathLike) -> Certificate:
    """Read and validate a certificate; one-line :class:`FscertError` on anything malformed.

    Checked: the format attributes, the kinds of the attributes (:data:`REQUIRED_ATTRS`,
    :data:`OPTIONAL_ATTRS`), each dataset's dtype and shape (:data:`DATASET_SPEC`) from its
    metadata before any data is read, K rows in every dataset with ``listed_count`` = K (0 when
    ``count_only``), G = len(gammas) columns in ``flags`` and ``m_uir``, and the values: ±1
    latents, probabilities in [0, 1], log-probabilities ≤ 0, nearest indices ≥ 0, PSNR not NaN.
    Not checked: that ``prob`` sums to 1 and the content hash, which ``fscert verify`` reports.
    """
    p = Path(path)
    label = f"certificate {p}"
    with h5_input(p, label, missing=f"certificate not found: {p}") as src:
        attrs = src.attrs()
        _check_attrs(src, attrs)
        spec = {**DATASET_SPEC, **SEARCH_DATASETS}
        data = {name: src.read(d).astype(spec[name][0], copy=False) for name, d in _datasets(src, attrs).items()}
    _check_values(label, data)
    extra = {name: data.pop(name) for name in list(data) if name in SEARCH_DATASETS}
    return Certificate(attrs=attrs, extra=extra, **data)


def attr_json(cert: Certificate, key: str, default: Any = None) -> Any:
    """Decode a JSON-valued attribute (``uir``, ``m_uir``, ``memorization_mass``, ``config``)."""
    v = cert.attrs.get(key)
    if v is None:
        return default
    try:
        return json.loads(v) if isinstance(v, str) else v
    except (ValueError, RecursionError):
        return v
