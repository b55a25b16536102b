"""HDF5 files of ±1 latents: what `encode`, `sample` and `draw` write and everything else reads.

Layout: dataset ``latents`` int8 (N, M, H, W) with values in {−1, +1}; optional ``counts``
int64 (N,) ≥ 1 (multiplicities of an empirical set; default 1) and ``source_index`` (N,);
file attributes carry provenance (hashes, config, parameters). Inputs are validated before
any work starts: dtype, shape, values, sizes; files are read defensively
(:mod:`fscert.h5input`).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .fileio import atomic_path
from .h5input import check_attrs, describe_values, h5_input, input_error

@dataclass
class LatentSet:
    """A set of binary latents, optionally with multiplicities and source images."""

    latents: np.ndarray                       # int8 (N, M, H, W) in {-1, +1}
    counts: np.ndarray | None = None          # int64 (N,) >= 1
    source_index: np.ndarray | None = None    # int64 (N,)
    attrs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def weights(self) -> np.ndarray:
        return self.counts if self.counts is not None else np.ones(len(self.latents), np.int64)


# ----------------------------------------------------------------------------- validation


def check_pm1(z: np.ndarray, source: str, name: str = "latents") -> None:
    """Refuse any value of ``z`` other than ±1 (``z`` numeric)."""
    bad = ~((z == 1) | (z == -1))
    if bad.any():
        raise input_error(source, f"{name} must be ±1, found {int(bad.sum())} other values "
                                  f"(values {describe_values(z[bad])})")


def validate_latents(z: np.ndarray, source: str = "latents") -> np.ndarray:
    """Return ``z`` as int8 (N, M, H, W) after checking shape, dtype and ±1 values."""
    z = np.asarray(z)
    if z.ndim != 4:
        raise input_error(source, f"latents must be 4-D (N, M, H, W), got shape {z.shape}")
    if z.shape[0] == 0:
        raise input_error(source, "the latent set is empty")
    if min(z.shape[1:]) == 0:
        raise input_error(source, f"latents must have M, H, W ≥ 1, got shape {z.shape}")
    if z.dtype == np.bool_ or not (np.issubdtype(z.dtype, np.integer) or np.issubdtype(z.dtype, np.floating)):
        raise input_error(source, f"latents must be numeric, got dtype {z.dtype}")
    check_pm1(z, source)
    return z.astype(np.int8)


#: attributes of a latent file that readers convert (``int(attrs["limit"])``, ``float(attrs["tau"])``)
LATENT_ATTRS = {"limit": "int", "tau": "real", "kappa": "real", "trials": "int", "seed": "int",
                "flip_prob": "real", "rho": "real", "q": "real", "n_samples": "int"}



# ----------------------------------------------------------------------------- files


def write_latents(path: str | os.PathLike, latents: np.ndarray, attrs: Mapping[str, Any] | None = None,
                  counts: np.ndarray | None = None, source_index: np.ndarray | None = None,
                  extra: Mapping[str, np.ndarray] | None = None) -> None:
    """Write atomically (temporary file, then rename)."""
    import h5py

    z = validate_latents(latents)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("latents", data=z, compression="gzip", compression_opts=4)
            if counts is not None:
                f.create_dataset("counts", data=np.asarray(counts, np.int64))
            if source_index is not None:
                f.create_dataset("source_index", data=np.asarray(source_index, np.int64))
            for k, v in (extra or {}).items():
                f.create_dataset(k, data=v, compression="gzip", compression_opts=4)
            for k, v in (attrs or {}).items():
                if isinstance(v, np.generic):
                    v = v.item()
                f.attrs[k] = v if isinstance(v, (str, int, float, bool, np.ndarray)) else json.dumps(v)


def _index_array(a: np.ndarray, label: str, name: str, n: int, low: int) -> np.ndarray:
    """An integer dataset of shape (n,) with values ≥ ``low`` that fit int64, as int64."""
    if a.shape != (n,):
        raise input_error(label, f"dataset '{name}' must have shape ({n},) like 'latents', found {a.shape}")
    if len(a) and (int(a.min()) < low or int(a.max()) > np.iinfo(np.int64).max):
        bad = a[(a < low) | (a > np.iinfo(np.int64).max)]
        raise input_error(label, f"dataset '{name}' must be integers ≥ {low}, found values {describe_values(bad)}")
    return a.astype(np.int64)


def read_latents(path: str | os.PathLike, extra: tuple[str, ...] = ()) -> LatentSet:
    """Read and validate a latent file; raises :class:`FscertError` with one line on any problem.

    The result has int8 ±1 latents (N ≥ 1, M, H, W ≥ 1), int64 ``counts`` ≥ 1 whose sum fits
    int64 and int64 ``source_index`` ≥ 0 of length N where present, and plain attribute values.
    """
    p = Path(path)
    label = f"latents file {p}"
    with h5_input(p, label, missing=f"latent file not found: {p}") as src:
        zd = src.dataset("latents", "iuf", ndim=4)
        if zd is None:
            raise src.error("has no HDF5 dataset 'latents'")
        if zd.shape[0] == 0 or min(zd.shape[1:]) == 0:
            raise src.error(f"dataset 'latents' must be (N, M, H, W) with N, M, H, W ≥ 1, found {zd.shape}")
        n = zd.shape[0]
        cd = src.dataset("counts", "iu", ndim=1)
        sd = src.dataset("source_index", "iu", ndim=1)
        more = {k: src.dataset(k, "biuf") for k in extra}
        attrs = src.attrs()
        z, counts, source = src.read(zd), src.read(cd), src.read(sd)
        more_data = {k: src.read(d) for k, d in more.items() if d is not None}
    z = validate_latents(z, label)
    if counts is not None:
        counts = _index_array(counts, label, "counts", n, low=1)
        if counts.astype(np.float64).sum() >= 2.0 ** 62:
            raise input_error(label, "dataset 'counts' sums to more than 2^62")
    if source is not None:
        source = _index_array(source, label, "source_index", n, low=0)
    check_attrs(label, attrs, LATENT_ATTRS)
    return LatentSet(z, counts, source, attrs, more_data)
