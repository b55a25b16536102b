"""Finished near-copy searches kept on disk, so that an interrupted verdict continues.

The near-copy search of a certificate too large to list (:mod:`fscert.nearcopy`) is one
independent problem per training image and can take hours. :class:`SearchCheckpoint` keeps
each finished training image's :class:`~fscert.nearcopy.TrainResult` in a folder beside the
output (one ``.npz`` per training image, written atomically, read with ``allow_pickle=False``),
with a key over the inputs and options. A rerun with ``--resume`` searches only the training
images not yet there. Guarantees: a folder of other inputs or options is never used (it is
emptied); a damaged file is searched again; results are stored exactly (float64, int8, and
counts as decimal strings: they can exceed 64 bits), and each training image's result does not
depend on which others were searched before it (the survival table is built first), so a
resumed verdict equals an uninterrupted one, field by field.
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np

from .fileio import atomic_path
from .nearcopy import TrainResult

_SCALARS = ("index", "listed", "best_psnr", "best_exact", "best_raw_prob", "reason", "max_states", "best_kind",
            "dropped_mass")
_ARRAYS = ("best_latent", "latents", "raw_prob", "psnr")


class SearchCheckpoint:
    """A folder of finished :class:`TrainResult` files, valid for the inputs fingerprinted by ``key``."""

    def __init__(self, directory: str | Path, key: str):
        self.dir, self.key = Path(directory), key

    def load(self) -> dict[int, TrainResult]:
        """Finished results by training index; an empty folder (created) when the key differs."""
        key_file = self.dir / "key.txt"
        if not key_file.is_file() or key_file.read_text() != self.key:
            self.clear()
            self.dir.mkdir(parents=True)
            with atomic_path(key_file) as tmp:
                tmp.write_text(self.key)
            return {}
        done = {}
        for p in sorted(self.dir.glob("t_*.npz")):
            try:
                r = _read(p)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):   # cut short: searched again
                continue
            done[r.index] = r
        return done

    def save(self, r: TrainResult) -> None:
        with atomic_path(self.dir / f"t_{r.index}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **_arrays(r))

    def clear(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _arrays(r: TrainResult) -> dict[str, np.ndarray]:
    out = {name: np.asarray(getattr(r, name)) for name in _SCALARS}
    out["count_low"] = np.asarray([str(int(c)) for c in r.count_low])
    out["count_high"] = np.asarray([str(int(c)) for c in r.count_high])
    out["mass_low"] = np.asarray(r.mass_low, np.float64)
    out["mass_high"] = np.asarray(r.mass_high, np.float64)
    for name in _ARRAYS:
        a = getattr(r, name)
        if a is not None:
            out[name] = np.asarray(a)
    return out


def _read(path: Path) -> TrainResult:
    with np.load(path, allow_pickle=False) as z:
        kw = {name: z[name].item() for name in _SCALARS}
        kw["index"], kw["max_states"] = int(kw["index"]), int(kw["max_states"])
        kw["listed"], kw["best_exact"] = bool(kw["listed"]), bool(kw["best_exact"])
        kw["reason"], kw["best_kind"] = str(kw["reason"]), str(kw["best_kind"])
        for name in ("best_psnr", "best_raw_prob", "dropped_mass"):
            kw[name] = float(kw[name])
        kw["count_low"] = [int(c) for c in z["count_low"]]
        kw["count_high"] = [int(c) for c in z["count_high"]]
        kw["mass_low"] = [float(v) for v in z["mass_low"]]
        kw["mass_high"] = [float(v) for v in z["mass_high"]]
        for name in _ARRAYS:
            kw[name] = z[name].copy() if name in z.files else None
    return TrainResult(**kw)
