"""The decoding checkpoint of a certificate (`fscert enumerate --resume`, `fscert certify --resume`).

Decoding every listed latent (DESIGN §6.6) is the long part of a certificate. While it runs,
:class:`DecodeCheckpoint` keeps an HDF5 file beside the output with the listing, the images
decoded so far (rows [0, n_done)) and a key over the inputs and the config. Guarantees: a file
of other inputs or options, or one cut short (a kill while writing it), is never used: the work
starts again; rows are decoded by :func:`decode_into` in the same chunks whether resumed or not,
so a resumed run gives the certificate of an uninterrupted one, byte for byte.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from .certificate import Certificate
from .fileio import atomic_path
from .progress import Progress


def decode_into(cert: Certificate, model: Any, start: int, batch: int, ckpt: "DecodeCheckpoint | None",
                progress: bool, client: Any = None) -> None:
    """Decode the listed latents from row ``start`` on (:func:`fscert.blocks.decode_canonical`),
    saving each chunk of ``4 · batch`` rows to the checkpoint.

    ``client`` (a ``dask.distributed.Client``): the chunks are decoded on its workers (the
    model scattered once, at most ``IN_FLIGHT_PER_THREAD`` chunks per worker thread ahead of
    the one being stored) and stored in row order, so the checkpoint grows exactly as in one
    process. The images are the same: the canonical decode does not depend on the batch or the
    process (:func:`fscert.blocks.decode_canonical`)."""
    from .blocks import decode_canonical      # looked up per call: tests substitute a counting decoder

    k = len(cert.latents)
    chunk = 4 * batch                                 # rows decoded between checkpoint saves
    bounds = [(lo, min(k, lo + chunk)) for lo in range(start, k, chunk)]
    with Progress(total=len(bounds), desc="decode", unit="chunk", show=progress, leave=False) as bar:
        for lo, hi, images in _decoded_chunks(cert.latents, bounds, model, batch, client, decode_canonical):
            cert.images[lo:hi] = images
            if ckpt is not None:
                ckpt.save_images(cert.images, lo, hi)
            bar.update(1)


#: decode tasks submitted ahead of the chunk being stored, per worker thread (bounds the memory
#: that finished, not yet stored chunks hold on the workers)
IN_FLIGHT_PER_THREAD = 4


def _decode_chunk(model: Any, latents: np.ndarray, batch: int) -> np.ndarray:
    import torch

    from .blocks import decode_canonical

    torch.set_num_threads(1)                  # one thread per worker process (fscert.cluster)
    return decode_canonical(model, latents, batch=batch)


def _decoded_chunks(latents: np.ndarray, bounds: list[tuple[int, int]], model: Any, batch: int, client: Any,
                    decode):
    """(lo, hi, images) for each chunk, in order: here, or on ``client``'s workers."""
    if client is None:
        for lo, hi in bounds:
            yield lo, hi, decode(model, latents[lo:hi], batch=batch)
        return
    from .cluster import in_order

    [model_f] = client.scatter([model], broadcast=True, hash=False)
    try:
        for (lo, hi), images in in_order(client, bounds, lambda b: client.submit(
                _decode_chunk, model_f, latents[b[0]:b[1]], batch, pure=False), IN_FLIGHT_PER_THREAD):
            yield lo, hi, images
    finally:
        with contextlib.suppress(Exception):
            client.cancel([model_f])


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
