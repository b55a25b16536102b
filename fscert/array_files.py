"""Readers of array files: npz (plain or MedMNIST splits), HDF5 ``images``, MNIST IDX and CIFAR-10
python batches; each read exactly as stored or refused with one line. CIFAR-10 batches are
pickles: they are unpickled with an allow-list that rebuilds numpy arrays and refuses any
other global, so a crafted file cannot run code.
"""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import h5py
import numpy as np

from .errors import FscertError
from .readers import SPLITS


def read_npz(path: Path, split: str | None, split_option: str = "--split") -> tuple[np.ndarray, str]:
    """(array, key): 'images', else the MedMNIST key ``{split}_images``; ``split=None`` must be unambiguous."""
    with np.load(path, allow_pickle=False) as z:
        if "images" in z.files:
            return z["images"], "images"
        keys = [k for k in z.files if k.endswith("_images")]
        if split is None:
            if len(keys) == 1:
                return z[keys[0]], keys[0]
            if keys:
                raise FscertError(f"{path} holds {', '.join(keys)}: say which with {split_option}")
            raise FscertError(f"{path} has no 'images' array (keys: {', '.join(z.files) or 'none'})")
        if split not in SPLITS:
            raise FscertError(f"{split_option} must be one of {', '.join(SPLITS)}, got '{split}'")
        key = f"{split}_images"
        if key in z.files:
            return z[key], key
        raise FscertError(f"{path} has no 'images' or '{key}' array (keys: {', '.join(z.files) or 'none'})")


def read_hdf5(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as f:
        if "images" not in f or not isinstance(f["images"], h5py.Dataset):
            raise FscertError(f"{path} has no HDF5 dataset 'images'")
        return f["images"][()]


def read_idx(buf: bytes, path: Path) -> np.ndarray:
    if len(buf) < 16 or buf[:4] != b"\x00\x00\x08\x03":
        raise FscertError(f"{path} is not an MNIST IDX image file (magic 0x00000803)")
    n, h, w = struct.unpack(">III", buf[4:16])
    need = 16 + n * h * w
    if len(buf) < need:
        raise FscertError(f"{path} is truncated: header says {n} images of {h}x{w}, file holds {len(buf) - 16} pixel bytes")
    return np.frombuffer(buf, np.uint8, count=n * h * w, offset=16).reshape(n, h, w)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR-10 batches: rebuilds numpy arrays, refuses any other global."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("builtins", "bytes"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise FscertError(f"refusing to unpickle {module}.{name}: only CIFAR-10 python batches are accepted")


def read_cifar(path: Path) -> np.ndarray:
    with path.open("rb") as f:
        obj = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    if not isinstance(obj, dict):
        raise FscertError(f"{path} is not a CIFAR-10 python batch")
    data = obj.get(b"data", obj.get("data"))
    if data is None:
        raise FscertError(f"{path} is not a CIFAR-10 python batch (no 'data' entry)")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise FscertError(f"{path}: CIFAR-10 'data' must be N×3072, got {data.shape}")
    return data.reshape(-1, 3, 32, 32)
