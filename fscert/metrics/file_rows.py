"""Training rows read shard by shard where a Dask task runs: from an array file or a folder.

:class:`FileRows`: a ``.npy``, ``.npz`` or HDF5 file, or a bundled set. :class:`FolderRows`: a
folder of image files (PNG, JPEG, TIFF, DICOM, NIfTI; :func:`fscert.data.load_dataset`), read
in natural order of its files, the images of one file in stored order, each normalised as soon
as it is decoded (rescaled DICOM/NIfTI through one range common to the folder; grayscale stored
as RGB kept as one channel when the folder mixes them); it carries what a worker needs to read
rows lo:hi by itself with the same readers and operations: the files in read order with their
number of images, the common range and the channel count.

:func:`file_rows_for` builds either from the client's own read and trusts it only after the
row count and the first and last :data:`CHECK_ROWS` rows compare equal, byte for byte, with what
the client read (:func:`fscert.metrics.sharded.nearest_sharded` then sends no rows).
"""
from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .. import readers
from ..data import _scan, resolve, to_nchw
from ..errors import FscertError
from ..fit import Fit

_NPY_MAGIC, _ZIP_MAGIC, _HDF5_MAGIC = b"\x93NUMPY", b"PK", b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class FileRows:
    """Training rows in an array file, read shard by shard where the task runs.

    ``path``: a ``.npy`` (memory-mapped), ``.npz`` (the member is read from the row's offset,
    decompressing only what precedes it) or HDF5 file (h5py slicing), told apart by their
    bytes, or a bundled dataset name (``mnist``). ``key``: the npz array or HDF5 dataset;
    default ``images``, else an npz's only array. ``limit``: use only the first ``limit``
    rows. ``images``: rows become what :func:`fscert.data.load_images` gives (float32 N×C×H×W
    in [0, 1], at the stored size or padded / resized by ``fit``), row-wise the same
    operations, so the shards are slices of ``load_images(path, limit, fit=fit)``; otherwise rows are
    as stored. Every worker must see ``path``.
    """

    path: str
    key: str | None = None
    limit: int | None = None
    images: bool = False
    fit: Fit | None = None

    def _kind(self, p: Path) -> str:
        try:
            with open(p, "rb") as f:
                head = f.read(8)
        except OSError as e:
            raise FscertError(f"cannot read {p}: {e.strerror}") from None
        for kind, magic in (("npy", _NPY_MAGIC), ("npz", _ZIP_MAGIC), ("hdf5", _HDF5_MAGIC)):
            if head.startswith(magic):
                return kind
        raise FscertError(f"{p} is not a .npy, .npz or HDF5 file (sharded training rows need one)")

    def _npz_member(self, z) -> str:
        names = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
        key = self.key or ("images" if "images" in names or len(names) != 1 else names[0])
        if key not in names:
            raise FscertError(f"{self.path} has no array '{key}' (arrays: {', '.join(names) or 'none'})")
        return key + ".npy"

    def _stored(self, lo: int, hi: int | None) -> tuple[np.ndarray | None, tuple[int, ...]]:
        """Stored rows lo:hi (None: read nothing) and the stored shape."""
        p = resolve(self.path)
        kind = self._kind(p)
        try:
            if kind == "npy":
                a = np.load(p, mmap_mode="r", allow_pickle=False)
                return (None if hi is None else np.array(a[lo:hi])), a.shape
            if kind == "hdf5":
                with h5py.File(p, "r") as f:
                    key = self.key or "images"
                    if key not in f or not isinstance(f[key], h5py.Dataset):
                        raise FscertError(f"{self.path} has no HDF5 dataset '{key}'")
                    d = f[key]
                    return (None if hi is None else d[lo:hi]), d.shape
            with zipfile.ZipFile(p) as z, z.open(self._npz_member(z)) as f:
                version = np.lib.format.read_magic(f)
                read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                        else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read(f)
                if hi is None:
                    return None, shape
                if dtype.hasobject:
                    raise FscertError(f"{self.path}: array of Python objects, not numbers")
                if fortran:  # rare: column-major rows are not contiguous, read it whole
                    return np.load(p, allow_pickle=False)[self._npz_member(z)[:-4]][lo:hi].copy(), shape
                row = dtype.itemsize * math.prod(shape[1:])
                f.seek(f.tell() + lo * row)
                buf = f.read((hi - lo) * row)
                return np.frombuffer(buf, dtype).reshape((hi - lo,) + tuple(shape[1:])).copy(), shape
        except FscertError:
            raise
        except Exception as e:  # truncated or damaged files
            raise FscertError(f"cannot read rows from {self.path}: {type(e).__name__}: {e}".splitlines()[0]) from None

    def count(self) -> int:
        """Number of rows (after ``limit``), from the file's header."""
        shape = self._stored(0, None)[1]
        if not shape:
            raise FscertError(f"{self.path} holds a single number, not rows")
        return shape[0] if self.limit is None else min(shape[0], self.limit)

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows lo:hi (``images``: as :func:`fscert.data.load_images` gives them)."""
        a = self._stored(lo, hi)[0]
        if not self.images:
            return a
        x = to_nchw(a, source=self.path)
        return x if self.fit is None else self.fit.apply(x)


#: rows compared by :func:`file_rows_for` before the workers are trusted to read the same rows
CHECK_ROWS = 256


def file_rows_for(spec: str, limit: int | None, split: str | None, images_NCHW: np.ndarray,
                  names: list[str] | None = None) -> "FileRows | FolderRows | None":
    """A :class:`FileRows` (or, for a folder of images with their ``names`` from the client's
    read, a :class:`FolderRows`) that makes the workers read
    ``images_NCHW`` (what ``load_dataset`` read from ``spec``) themselves, or None: not a .npy /
    .npz / HDF5 file, bundled name or folder, or other rows (count, first and last
    :data:`CHECK_ROWS` rows compared byte for byte; MedMNIST splits read)."""
    try:
        p = resolve(spec)
        if p.is_dir() and names is not None:
            return _checked(folder_rows_for(p, names, limit, int(images_NCHW.shape[1])), images_NCHW)
        if not p.is_file():
            return None
        with open(p, "rb") as f:
            head = f.read(8)
        if not any(head.startswith(m) for m in (_NPY_MAGIC, _ZIP_MAGIC, _HDF5_MAGIC)):
            return None
        key = None
        if head.startswith(_ZIP_MAGIC) and split:
            with zipfile.ZipFile(p) as z:
                if f"{split}_images.npy" in z.namelist() and "images.npy" not in z.namelist():
                    key = f"{split}_images"
        return _checked(FileRows(str(spec), key=key, limit=limit, images=True), images_NCHW)
    except (FscertError, OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _checked(src, images_NCHW: np.ndarray):
    """``src`` if it reads as many rows as ``images_NCHW`` and the same first and last
    :data:`CHECK_ROWS` rows, byte for byte; else None."""
    n = len(images_NCHW)
    if src.count() != n:
        return None
    k = min(n, CHECK_ROWS)
    for lo, hi in ((0, k), (n - k, n)):
        if src.rows(lo, hi).tobytes() != np.ascontiguousarray(images_NCHW[lo:hi]).tobytes():
            return None
    return src



@dataclass(frozen=True)
class FolderRows:
    """Rows of a folder: ``files`` (relative path, kind, number of images) in read order,
    ``common`` the DICOM/NIfTI range of the folder (None: none), ``channels`` of the read."""

    root: str
    files: tuple[tuple[str, str, int], ...]
    common: tuple[float, float] | None
    channels: int
    limit: int | None = None
    fit: Fit | None = None

    def count(self) -> int:
        n = sum(k for _, _, k in self.files)
        return n if self.limit is None else min(n, self.limit)

    def rows(self, lo: int, hi: int) -> np.ndarray:
        """Rows lo:hi, as :func:`fscert.data.load_images` gives them: only the files that hold them are read."""
        hi = min(hi, self.count())
        out, start = [], 0
        for rel, kind, k in self.files:
            if start >= hi:
                break
            if start + k > lo:
                d = readers.read_image(Path(self.root) / rel, kind)
                x = readers.normalise(d, *self.common) if d.modality and self.common else readers.normalise(d)
                if self.channels == 1 and x.shape[1] == 3:
                    x = x[:, :1]
                out.append(x[max(0, lo - start):hi - start])
            start += k
        if not out:
            raise FscertError(f"{self.root}: no rows {lo}:{hi}")
        x = to_nchw(np.concatenate(out), source=self.root)
        return x if self.fit is None else self.fit.apply(x)


def folder_rows_for(root: Path, names: list[str], limit: int | None, channels: int) -> FolderRows:
    """The :class:`FolderRows` of a folder the client read: ``names`` (``Dataset.names``: one per
    image, ``REL`` or ``REL[axis=i]``) give each file's number of images; files the read skipped
    have none and are left out."""
    per: dict[str, int] = {}
    for name in names:
        rel = name.split("[", 1)[0] if name.endswith("]") else name
        per[rel] = per.get(rel, 0) + 1
    found, _ = _scan(root)
    ranges = {r for _, p, kind in found if kind in ("dicom", "nifti") for r in [readers.value_range(p, kind)] if r}
    common = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None
    files = tuple((rel, kind, per[rel]) for rel, _, kind in found if rel in per)
    return FolderRows(str(root), files, common, channels, limit)
