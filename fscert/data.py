"""Image loading: every DATA format fscert accepts, validated and normalised.

Formats (detected from the file's bytes, not its name): ``.npz`` (key ``images``, or the
MedMNIST keys ``train_images``/``val_images``/``test_images`` picked by ``split``), ``.npy``,
HDF5 (dataset ``images``), MNIST IDX (gzip or raw), CIFAR-10 python batches (read with a
restricted unpickler that only rebuilds numpy arrays), and a folder of PNG/JPEG files.
The bundled names ``mnist`` and ``pneumoniamnist`` resolve to the subsets in ``data/``.

Images may be grayscale or RGB, uint8 or float in [0, 1], laid out N×H×W, N×H×W×C or
N×C×H×W. :func:`load_images` returns float32 N×C×32×32 in [0, 1] (28×28 zero-padded to 32
as in the paper, other sizes resized with a warning); ``native=True`` keeps the stored size.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import warnings
from pathlib import Path

import numpy as np

from .errors import FscertError

DATA_DIR = Path(os.environ.get("FSCERT_DATA", Path(__file__).resolve().parents[1] / "data"))
BUNDLED = {"mnist": "mnist.npz", "pneumoniamnist": "pneumoniamnist.npz"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
SPLITS = ("train", "val", "test")


def resolve(spec: str | os.PathLike) -> Path:
    """Map a bundled dataset name or a path to an existing path."""
    s = str(spec)
    if s in BUNDLED and not Path(s).exists():
        p = DATA_DIR / BUNDLED[s]
        if not p.exists():
            raise FscertError(f"bundled dataset '{s}' is missing from {DATA_DIR}")
        return p
    p = Path(s)
    if not p.exists():
        raise FscertError(f"data not found: {s} (a file, a folder of images, or one of: {', '.join(BUNDLED)})")
    return p


def load_raw(spec: str | os.PathLike, split: str = "train") -> np.ndarray:
    """Read the stored array without any normalisation (uint8 or float, any layout)."""
    path = resolve(spec)
    if path.is_dir():
        return _read_folder(path)
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError as e:
        raise FscertError(f"cannot read {path}: {e.strerror}") from None
    try:
        if head[:2] == b"PK":
            return _read_npz(path, split)
        if head[:6] == b"\x93NUMPY":
            return np.load(path, allow_pickle=False)
        if head[:8] == b"\x89HDF\r\n\x1a\n":
            return _read_hdf5(path)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                return _read_idx(f.read(), path)
        if head[:4] == b"\x00\x00\x08\x03" or head[:4] == b"\x00\x00\x08\x01":
            return _read_idx(path.read_bytes(), path)
        if head[:1] == b"\x80":
            return _read_cifar(path)
    except FscertError:
        raise
    except Exception as e:  # corrupt archives, truncated files, wrong dtypes
        raise FscertError(f"cannot read images from {path}: {type(e).__name__}: {e}".splitlines()[0]) from None
    raise FscertError(f"{path} is not an image dataset (expected .npz, .npy, HDF5, MNIST IDX, CIFAR-10 batch or a folder)")


def _read_npz(path: Path, split: str) -> np.ndarray:
    with np.load(path, allow_pickle=False) as z:
        if "images" in z.files:
            return z["images"]
        key = f"{split}_images"
        if split not in SPLITS:
            raise FscertError(f"--split must be one of {', '.join(SPLITS)}, got '{split}'")
        if key in z.files:
            return z[key]
        raise FscertError(f"{path} has no 'images' or '{key}' array (keys: {', '.join(z.files) or 'none'})")


def _read_hdf5(path: Path) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as f:
        if "images" not in f or not isinstance(f["images"], h5py.Dataset):
            raise FscertError(f"{path} has no HDF5 dataset 'images'")
        return f["images"][()]


def _read_idx(buf: bytes, path: Path) -> np.ndarray:
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


def _read_cifar(path: Path) -> np.ndarray:
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


def _read_folder(path: Path) -> np.ndarray:
    from PIL import Image

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FscertError(f"folder {path} holds no PNG or JPEG files")
    arrays = []
    for p in files:
        try:
            with Image.open(p) as im:
                mode = "L" if im.mode in ("1", "L", "I", "I;16", "F", "LA") else "RGB"
                arrays.append(np.asarray(im.convert(mode)))
        except Exception as e:
            raise FscertError(f"cannot read image {p}: {e}") from None
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise FscertError(f"images in {path} differ in size or channels: {sorted(shapes)[:3]}")
    return np.stack(arrays)


def to_nchw(raw: np.ndarray, source: str = "data") -> np.ndarray:
    """Validate values and layout; return float32 N×C×H×W in [0, 1] at the stored size."""
    a = np.asarray(raw)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise FscertError(f"{source}: images must be uint8 or float, got dtype {a.dtype}")
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4:
        if a.shape[-1] in (1, 3) and a.shape[1] not in (1, 3):
            a = a.transpose(0, 3, 1, 2)
        elif a.shape[1] not in (1, 3):
            raise FscertError(f"{source}: cannot tell the channel axis of shape {a.shape} (need 1 or 3 channels)")
    else:
        raise FscertError(f"{source}: images must be N×H×W, N×H×W×C or N×C×H×W, got shape {a.shape}")
    if a.shape[0] == 0:
        raise FscertError(f"{source}: the dataset is empty")
    if min(a.shape[2:]) < 2:
        raise FscertError(f"{source}: images of {a.shape[2]}×{a.shape[3]} pixels are too small")
    if np.issubdtype(a.dtype, np.integer):
        if a.min() < 0 or a.max() > 255:
            raise FscertError(f"{source}: integer pixels must lie in 0..255, found {a.min()}..{a.max()}")
        return (a.astype(np.float32) / 255.0)
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise FscertError(f"{source}: {int((~np.isfinite(a)).sum())} pixels are NaN or infinite")
    if a.min() < 0.0 or a.max() > 1.0:
        raise FscertError(f"{source}: float pixels must lie in [0, 1], found {a.min():.3g}..{a.max():.3g}")
    return a


def to_size(x_NCHW: np.ndarray, size: int = 32, source: str = "data") -> np.ndarray:
    """28×28 → zero-pad to 32 (the paper's MNIST set-up); other sizes → bilinear resize with a warning."""
    h, w = x_NCHW.shape[2:]
    if (h, w) == (size, size):
        return x_NCHW
    if (h, w) == (28, 28) and size == 32:
        return np.pad(x_NCHW, ((0, 0), (0, 0), (2, 2), (2, 2)))
    warnings.warn(f"{source}: resizing {h}×{w} images to {size}×{size}", stacklevel=2)
    import torch
    import torch.nn.functional as F

    t = F.interpolate(torch.from_numpy(x_NCHW), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return t.clamp_(0, 1).numpy()


def load_images(spec: str | os.PathLike, limit: int | None = None, split: str = "train",
                size: int = 32, native: bool = False) -> np.ndarray:
    """Load DATA as float32 N×C×size×size in [0, 1] (or N×C×H×W at the stored size if ``native``).

    ``limit`` keeps the first ``limit`` images (a deterministic subset, in stored order).
    """
    if limit is not None and limit < 1:
        raise FscertError(f"--limit must be a positive number, got {limit}")
    raw = load_raw(spec, split=split)
    if limit is not None:
        raw = raw[:limit]
    x = to_nchw(raw, source=str(spec))
    return x if native else to_size(x, size, source=str(spec))


def data_sha256(x: np.ndarray) -> str:
    """Fingerprint of a loaded image array (what the model saw), for provenance attributes."""
    from .hashing import sha256_array

    return sha256_array(x)
