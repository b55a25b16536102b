"""Image loading: every DATA format fscert accepts, validated, normalised and traceable.

Formats (detected from the file's bytes, not its name): ``.npz`` (key ``images``, or the
MedMNIST keys ``train_images``/``val_images``/``test_images`` picked by ``split``), ``.npy``,
HDF5 (dataset ``images``), MNIST IDX (gzip or raw), CIFAR-10 python batches (read with a
restricted unpickler that only rebuilds numpy arrays), one PNG, JPEG, TIFF, DICOM or NIfTI
file, and a folder of such files (see :mod:`fscert.readers` for what each reader accepts and
refuses). The bundled names ``mnist`` and ``pneumoniamnist`` resolve to the subsets in ``data/``.

Guarantees of :func:`load_dataset` (and :func:`load_images`, its ``.images``):

* float32 N×C×H×W in [0, 1]; integer pixels scaled by the true maximum of their depth
  (uint8 by 255, uint16 by 65535, computed in float64), so 8-bit v and 16-bit v·257 are equal;
* every image is named (``Dataset.names``) and the order is stated (``Dataset.order``):
  arrays in stored order, folders in natural sort of their POSIX relative paths;
* a folder's files that are not images are skipped and counted (``Dataset.skipped``, and one
  notice, :attr:`Dataset.notes`), never silently; images of different sizes are refused; a folder whose
  images all lie in subfolders is read with the subfolder names as labels; grayscale stored
  as RGB (three equal channels) among grayscale files becomes one channel, real colour among
  grayscale is refused;
* rescaled DICOM/NIfTI files of one folder share one value range (the union of theirs, from
  their headers), so equal values (e.g. Hounsfield units) give equal pixels;
* ``limit`` gives a prefix of the full read (same pixels, same names).
"""
from __future__ import annotations

import gzip
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import array_files, readers
from .errors import FscertError
from .fit import Fit
from .hashing import sha256_array
from .readers import IMAGE_SUFFIXES, KINDS, SPLITS, NotAnImage  # noqa: F401  (re-exported)

from .shipped import DATA_DIR  # noqa: E402  (data/, $FSCERT_DATA, or the installed fscert_data)
BUNDLED = {"mnist": "mnist.npz", "pneumoniamnist": "pneumoniamnist.npz"}
NATURAL_ORDER = "natural sort of file paths (im2 before im10)"
SKIP_PHRASES = {"not an image": "files that are not images", "hidden": "hidden files or folders",
                "DICOM without pixel data": "DICOM files without pixel data",
                "link to a folder": "links to folders (not followed)"}


@dataclass
class Dataset:
    """Images read from DATA, with where each one came from.

    ``images``: float32 N×C×H×W in [0, 1] (the stored size, or padded / resized as asked:
    :class:`fscert.fit.Fit`).
    ``names``: per image, its POSIX path relative to the folder given (``pneumonia/im_10.png``),
    ``#<index>`` in an array file, ``NAME[z=3]`` / ``NAME[frame=2]`` / ``NAME[page=1]`` for an
    image of a volume, multi-frame DICOM or TIFF stack. ``order``: the order in plain words.
    ``labels``: the class subfolder of each image, or None. ``bit_depth``: bits of the stored
    integer pixels (the largest, if files differ), None for floats. ``skipped``: files not read,
    by reason (with a ``limit``, DICOM files past it are not opened, so not counted as lacking
    pixel data). ``native_hw``: the stored size. ``notes``: the notices of the read (skipped
    files, a common DICOM range), also issued as warnings unless the caller asked otherwise."""

    images: np.ndarray
    names: list[str]
    source: str
    order: str
    labels: list[str] | None = None
    bit_depth: int | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    native_hw: tuple[int, int] = (0, 0)
    notes: list[str] = field(default_factory=list)


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


def natural_key(rel: str) -> tuple:
    """Sort key of a POSIX relative path: runs of ASCII digits compare as numbers, per path part
    (``im2`` < ``im10``; ``a/x`` < ``a b/x``); ties (``im02`` vs ``im2``) broken by the plain text."""
    parts = tuple(tuple(int(t) if i % 2 else t for i, t in enumerate(re.split(r"([0-9]+)", p))) for p in rel.split("/"))
    return parts, rel


@dataclass
class _Loaded:
    array: np.ndarray
    names: list[str]
    order: str
    labels: list[str] | None = None
    bit_depth: int | None = None
    skipped: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _head(path: Path, n: int = 348) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(n)
    except OSError as e:
        raise FscertError(f"cannot read {path}: {e.strerror}") from None


def _load(path: Path, split: str | None, split_option: str, limit: int | None) -> _Loaded:
    if path.is_dir():
        return _read_folder(path, limit)
    head = _head(path)
    try:
        kind = readers.sniff(head, path.name)
        if kind is not None:
            d = readers.read_image(path, kind)
            return _stack([(path.name, readers.normalise(d), d)], path, limit, False, "stored order of the file")
        order = "stored order of the array"
        if head[:2] == b"PK":
            a, key = array_files.read_npz(path, split, split_option)
            order = f"stored order of array '{key}'"
        elif head[:6] == b"\x93NUMPY":
            a = np.load(path, allow_pickle=False)
        elif head[:8] == b"\x89HDF\r\n\x1a\n":
            a = array_files.read_hdf5(path)
        elif head[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as f:
                a = array_files.read_idx(f.read(), path)
        elif head[:4] in (b"\x00\x00\x08\x03", b"\x00\x00\x08\x01"):
            a = array_files.read_idx(path.read_bytes(), path)
        elif head[:1] == b"\x80":
            a = array_files.read_cifar(path)
        else:
            raise FscertError(f"{path} is not an image dataset (expected .npz, .npy, HDF5, MNIST IDX, CIFAR-10 batch, "
                              f"a {KINDS} image or a folder)")
    except (FscertError, NotAnImage) as e:
        if isinstance(e, NotAnImage):
            raise FscertError(f"{path} holds no image ({e.reason})") from None
        raise
    except Exception as e:  # corrupt archives, truncated files, wrong dtypes
        raise FscertError(f"cannot read images from {path}: {type(e).__name__}: {e}".splitlines()[0]) from None
    a = np.asarray(a)
    if limit is not None and a.ndim:
        a = a[:limit]
    n = len(a) if a.ndim else 0
    return _Loaded(a, [f"#{i}" for i in range(n)], order, bit_depth=_array_bits(a.dtype))


def _array_bits(dtype: np.dtype) -> int | None:
    if dtype == np.uint16:
        return 16
    return 8 if np.issubdtype(dtype, np.integer) else None


def _scan(root: Path) -> tuple[list[tuple[str, Path, str]], dict[str, list[str]]]:
    """Every image file under ``root`` as (relative POSIX path, path, kind), and the files skipped by reason."""
    found, skipped = [], {}

    def fail(e: OSError):
        raise FscertError(f"cannot list {e.filename}: {e.strerror}")

    for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
        here = Path(dirpath)
        for d in sorted(dirnames):
            rel = (here / d).relative_to(root).as_posix()
            if d.startswith("."):
                skipped.setdefault("hidden", []).append(rel)
            elif (here / d).is_symlink():
                skipped.setdefault("link to a folder", []).append(rel)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and not (here / d).is_symlink()]
        for name in sorted(filenames):
            p = here / name
            rel = p.relative_to(root).as_posix()
            if name.startswith("."):
                skipped.setdefault("hidden", []).append(rel)
                continue
            kind = readers.sniff(_head(p), name) if p.is_file() else None
            if kind is not None:
                found.append((rel, p, kind))
            elif name.lower().endswith(IMAGE_SUFFIXES):
                raise FscertError(f"{p} is named like an image but is not a {KINDS} file")
            else:
                skipped.setdefault("not an image", []).append(rel)
    found.sort(key=lambda t: natural_key(t[0]))
    return found, {k: sorted(v, key=natural_key) for k, v in sorted(skipped.items())}


def _read_folder(root: Path, limit: int | None) -> _Loaded:
    """Read the images of a folder in natural order, each normalised as soon as it is decoded.

    Rescaled DICOM/NIfTI values are mapped through one common range, the union of the ranges
    of every such file in the folder (read from headers first), so equal values give equal
    pixels and a ``limit`` gives a prefix of the full read."""
    found, skipped = _scan(root)
    ranges = {r for _, p, kind in found if kind in ("dicom", "nifti") for r in [readers.value_range(p, kind)] if r}
    common = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None
    notes = [f"{root}: DICOM/NIfTI files differ in value range; all are mapped through the common range "
             f"{common[0]:g}..{common[1]:g}, so equal values (e.g. Hounsfield units) give equal pixels"] if len(ranges) > 1 else []
    items, count = [], 0
    for rel, p, kind in found:
        if limit is not None and count >= limit:
            break
        try:
            d = readers.read_image(p, kind)
        except NotAnImage as e:
            skipped.setdefault(e.reason, []).append(rel)
            continue
        if d.modality and (common is None or d.lo < common[0] or d.hi > common[1]):
            raise FscertError(f"{p}: the value range of its pixels could not be read from its header")
        items.append((rel, readers.normalise(d, *common) if d.modality else readers.normalise(d), d))
        count += len(d.pixels)
    if not items:
        note = f" (skipped {sum(map(len, skipped.values()))} other files)" if skipped else ""
        raise FscertError(f"folder {root} holds no PNG, JPEG, TIFF, DICOM or NIfTI images{note}")
    nested = [rel for rel, _, _ in items if "/" in rel]
    if nested and len(nested) < len(items):
        top = next(rel for rel, _, _ in items if "/" not in rel)
        raise FscertError(f"folder {root} holds images both at its top level ({top}) and in subfolders ({nested[0]}): "
                          "put every image in a class subfolder, or none")
    shown = {reason: ", ".join(rels[:3]) + (", …" if len(rels) > 3 else "") for reason, rels in skipped.items()}
    notes = [f"{root}: skipped {len(rels)} {SKIP_PHRASES.get(reason, reason)} ({shown[reason]})"
             for reason, rels in sorted(skipped.items())] + notes
    loaded = _stack(items, root, limit, bool(nested), NATURAL_ORDER)
    loaded.skipped, loaded.notes = skipped, notes
    return loaded


def _stack(items: list, root: Path, limit: int | None, labelled: bool, order: str) -> _Loaded:
    """Stack (relative name, float32 K×C×H×W, Decoded) items after checking channels and sizes agree."""
    names, labels = [], []
    for rel, x, d in items:
        names += [rel] if len(x) == 1 else [f"{rel}[{d.axis}={i}]" for i in range(len(x))]
        labels += [rel.split("/")[0]] * len(x)
    images = _same_channels([x for _, x, _ in items], [rel for rel, _, _ in items], root)
    sizes = {}
    for (rel, _, _), x in zip(items, images):
        sizes.setdefault(x.shape[2:], rel)
    if len(sizes) > 1:
        (s1, r1), (s2, r2) = list(sizes.items())[:2]
        raise FscertError(f"images in {root} differ in size: {r1} is {s1[0]}×{s1[1]}, {r2} is {s2[0]}×{s2[1]}")
    x = np.concatenate(images)[:limit]
    bits = [d.bits for _, _, d in items if d.bits is not None]
    if len(items) > 1 and any(len(d.pixels) > 1 for _, _, d in items):
        order += "; the images of one file in stored order"
    return _Loaded(x, names[:len(x)], order, labels[:len(x)] if labelled else None, max(bits) if bits else None)


def _same_channels(images: list[np.ndarray], rels: list[str], root: Path) -> list[np.ndarray]:
    """Grayscale stored as RGB becomes 1 channel when other files are grayscale; real colour is refused."""
    if len({x.shape[1] for x in images}) < 2:
        return images
    out = []
    for x, rel in zip(images, rels):
        if x.shape[1] == 3:
            if not _is_gray(x):
                gray = rels[next(i for i, y in enumerate(images) if y.shape[1] == 1)]
                raise FscertError(f"images in {root} differ in channels: {rel} is colour, {gray} is grayscale")
            x = x[:, :1]
        out.append(x)
    return out


def _is_gray(x: np.ndarray) -> bool:
    return bool((x[:, 0] == x[:, 1]).all() and (x[:, 1] == x[:, 2]).all())


def match_channels(x_NCHW: np.ndarray, like_NCHW: np.ndarray, source: str) -> np.ndarray:
    """``x_NCHW`` with the channel count of ``like_NCHW``, converted exactly or refused (one line).

    3 → 1: only when the three channels of every image of ``x`` are equal (grayscale stored as
    RGB); returns channel 0. 1 → 3: only when ``like`` itself is grayscale stored as RGB;
    returns the channel repeated. A colour set against a grayscale one is refused.
    """
    c, want = x_NCHW.shape[1], like_NCHW.shape[1]
    if c == want:
        return x_NCHW
    if (c, want) == (3, 1):
        if not _is_gray(x_NCHW):
            raise FscertError(f"{source}: colour images (3 channels that differ) cannot be compared with grayscale images")
        return x_NCHW[:, :1]
    if (c, want) == (1, 3):
        if not _is_gray(like_NCHW):
            raise FscertError(f"{source}: grayscale images cannot be compared with colour images (3 channels that differ)")
        return np.repeat(x_NCHW, 3, axis=1)
    raise FscertError(f"{source}: images with {c} channels cannot be matched to images with {want}")


def load_raw(spec: str | os.PathLike, split: str = "train") -> np.ndarray:
    """The stored array of an array file without normalisation (uint8, uint16 or float, any layout);
    for image files and folders, the decoded float32 N×C×H×W in [0, 1] (see :mod:`fscert.readers`)."""
    loaded = _load(resolve(spec), split, "--split", None)
    for line in loaded.notes:
        warnings.warn(line, stacklevel=2)
    return loaded.array


_LUT: dict[int, np.ndarray] = {}


def _scale(a: np.ndarray, top: int) -> np.ndarray:
    """Integers 0..top → float32 ``v / top`` computed in float64 (a lookup table: exact and memory-light)."""
    if top not in _LUT:
        _LUT[top] = (np.arange(top + 1, dtype=np.float64) / top).astype(np.float32)
    return _LUT[top][a]


def to_nchw(raw: np.ndarray, source: str = "data") -> np.ndarray:
    """Validate values and layout; return float32 N×C×H×W in [0, 1] at the stored size.

    uint8 is scaled by 255, uint16 by 65535; other integer types must lie in 0..255 (scaled by 255).
    """
    a = np.asarray(raw)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise FscertError(f"{source}: images must be uint8, uint16 or float, got dtype {a.dtype}")
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
    if a.dtype == np.uint8:
        return _scale(a, 255)
    if a.dtype == np.uint16:
        return _scale(a, 65535)
    if np.issubdtype(a.dtype, np.integer):
        if a.min() < 0 or a.max() > 255:
            raise FscertError(f"{source}: integer pixels of type {a.dtype} must lie in 0..255 (uint16 is read as "
                              f"16-bit), found {a.min()}..{a.max()}")
        return _scale(a.astype(np.uint8), 255)
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise FscertError(f"{source}: {int((~np.isfinite(a)).sum())} pixels are NaN or infinite")
    if a.min() < 0.0 or a.max() > 1.0:
        raise FscertError(f"{source}: float pixels must lie in [0, 1], found {a.min():.3g}..{a.max():.3g}")
    return a


def load_dataset(spec: str | os.PathLike, limit: int | None = None, split: str | None = "train",
                 fit: Fit | None = None, *, split_option: str = "--split", warn: bool = True) -> Dataset:
    """Load DATA with its provenance (see the module docstring for the guarantees).

    ``limit`` keeps the first ``limit`` images in the stated order (a deterministic subset).
    ``split=None``: the choice must be unambiguous (an npz with several ``*_images`` arrays and
    no ``images`` is refused, naming ``split_option``). Each notice (skipped files, a common
    DICOM range) is in ``Dataset.notes`` and, with ``warn``, issued with :func:`warnings.warn`.
    ``fit``: how the images are brought to the model's size (default: the stored size,
    :class:`fscert.fit.Fit`).
    """
    if limit is not None and limit < 1:
        raise FscertError(f"--limit must be a positive number, got {limit}")
    loaded = _load(resolve(spec), split, split_option, limit)
    for line in loaded.notes if warn else ():
        warnings.warn(line, stacklevel=2)
    x = to_nchw(loaded.array, source=str(spec))
    hw = (int(x.shape[2]), int(x.shape[3]))
    if fit is not None:
        x = fit.apply(x)
    return Dataset(x, loaded.names, str(spec), loaded.order, loaded.labels, loaded.bit_depth,
                   {k: len(v) for k, v in loaded.skipped.items()}, hw, loaded.notes)


def load_images(spec: str | os.PathLike, limit: int | None = None, split: str = "train",
                fit: Fit | None = None) -> np.ndarray:
    """Load DATA as float32 N×C×H×W in [0, 1], at the stored size unless ``fit`` pads or resizes
    (:class:`fscert.fit.Fit`).

    ``limit`` keeps the first ``limit`` images (a deterministic subset, in stored order).
    """
    return load_dataset(spec, limit=limit, split=split, fit=fit).images


def data_sha256(x: np.ndarray) -> str:
    """Fingerprint of a loaded image array (what the model saw), for provenance attributes."""
    return sha256_array(x)
