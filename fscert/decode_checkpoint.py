"""The decoding checkpoint of a certificate (`fscert enumerate --resume`, `fscert certify --resume`).

Decoding every listed latent (DESIGN §6.6) is the long part of a certificate. While it runs,
:class:`DecodeCheckpoint` keeps an HDF5 file beside the output with the listing, the images
decoded so far (rows [0, n_done)) and a key over the inputs and the config. Guarantees: a file
of other inputs or options, or one cut short (a kill while writing it), is never used: the work
starts again; rows are decoded by :func:`decode_into` in the same chunks whether resumed or not,
so a resumed run gives the certificate of an uninterrupted one, byte for byte.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .certificate import Certificate
from .fileio import atomic_path
from .progress import Progress


def decode_into(cert: Certificate, model: Any, start: int, batch: int, ckpt: "DecodeCheckpoint | None",
                progress: bool) -> None:
    """Decode the listed latents from row ``start`` on (:func:`fscert.blocks.decode_canonical`),
    saving each chunk of ``4 · batch`` rows to the checkpoint."""
    from .blocks import decode_canonical      # looked up per call: tests substitute a counting decoder

    k = len(cert.latents)
    chunk = 4 * batch                                 # rows decoded between checkpoint saves
    for lo in Progress(range(start, k, chunk), desc="decode", unit="chunk", show=progress, leave=False):
        hi = min(k, lo + chunk)
        cert.images[lo:hi] = decode_canonical(model, cert.latents[lo:hi], batch=batch)
        if ckpt is not None:
            ckpt.save_images(cert.images, lo, hi)


class DecodeCheckpoint:
    """An HDF5 file beside the certificate: the listing, the images decoded so far (rows
    [0, n_done)), and a key over the inputs and config so that a stale file is never used."""

    def __init__(self, path: Path, key: str):
        self.path, self.key = path, key

    def load(self) -> tuple[Certificate | None, int]:
        """The certificate so far and the number of rows decoded; (None, 0) for a missing,
        stale or damaged file."""
        import h5py                               # h5py takes ~0.1 s to import: only where a file is used

        if not self.path.exists():
            return None, 0
        try:
            with h5py.File(self.path, "r") as f:
                if f.attrs.get("key") != self.key:
                    return None, 0
                attrs = json.loads(f.attrs["cert_attrs"])
                cert = Certificate(f["latents"][()], f["prob"][()], attrs, log_prob=f["log_prob"][()])
                n_done = int(f.attrs["n_done"])
                if "images" in f:
                    cert.images = f["images"][()]
            return cert, n_done
        except (OSError, KeyError, ValueError):          # a checkpoint cut short: start again
            return None, 0

    def start(self, cert: Certificate) -> None:
        """Write the listing (atomically), with no row decoded yet."""
        import h5py

        with atomic_path(self.path) as tmp:
            with h5py.File(tmp, "w") as f:
                for name in ("latents", "prob", "log_prob", "images"):
                    if getattr(cert, name, None) is not None:
                        f.create_dataset(name, data=getattr(cert, name))
                f.attrs["cert_attrs"] = json.dumps({k: (v.tolist() if isinstance(v, np.ndarray) else
                                                        v.item() if isinstance(v, np.generic) else v)
                                                    for k, v in cert.attrs.items()})
                f.attrs["key"] = self.key
                f.attrs["n_done"] = 0

    def save_images(self, images: np.ndarray, lo: int, hi: int) -> None:
        """Rows [lo, hi) are decoded: store them, then move ``n_done`` to ``hi``."""
        import h5py

        with h5py.File(self.path, "a") as f:
            f["images"][lo:hi] = images[lo:hi]
            f.flush()
            f.attrs["n_done"] = hi
