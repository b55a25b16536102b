"""Defensive reading of HDF5 files that come from users (latent files and certificates).

:func:`h5_input` opens only regular files, never a FIFO or device; a file whose global heap
would make libhdf5 loop forever is refused before libhdf5 sees it (:func:`check_global_heaps`).
:class:`H5Input` reads only datasets stored in the file itself (no links, external storage or
virtual datasets), of plain integer/float types and common filters, and only after their dtype
and shape are checked and their declared size is charged against a budget tied to the file
size, so that a forged shape cannot make a reader allocate memory the file does not back.
Attributes are returned as plain values and checked by kind (:func:`check_attrs`). Every
problem, a damaged file included, is one :class:`~fscert.errors.FscertError` line that names
the file (:func:`input_error`).
"""
from __future__ import annotations

import contextlib
import json
import math
import mmap
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import numpy as np

from .errors import FscertError

if TYPE_CHECKING:
    import h5py

#: Deflate (gzip) expands at most ~1032:1, so no dataset a writer made declares more bytes than
#: this many times the size of its file.
MAX_EXPANSION = 1100
#: Up to this many declared bytes are read from any file without comparing with its size.
MIN_READ_BUDGET = 64 << 20
#: Python's limit on the digits of a decimal string converted with ``int()``.
MAX_DECIMAL_DIGITS = 4300

#: HDF5 filters a dataset may use: deflate (gzip, what fscert writes), shuffle, fletcher32, lzf
#: (h5py's); others (scale-offset, n-bit, szip, plugins) are refused before libhdf5 decodes anything.
READ_FILTERS = frozenset({1, 2, 3, 32000})

_LINE_BREAKS = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


# ----------------------------------------------------------------------------- one-line errors


def one_line(text: str) -> str:
    """``text`` with every line break escaped (``\\n``), so that a message stays on one line."""
    return _LINE_BREAKS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def input_error(label: str, problem: str) -> FscertError:
    """The one-line error ``"<label>: <problem>"`` (``label`` names the file)."""
    return FscertError(one_line(f"{label}: {problem}"))


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def describe_values(a: np.ndarray, limit: int = 4) -> str:
    """A few distinct values of ``a`` for a message, e.g. ``{0, 2}``."""
    u = np.unique(a)
    shown = ", ".join(str(v) for v in u[:limit].tolist())
    return "{" + shown + (", …" if len(u) > limit else "") + "}"


# ----------------------------------------------------------------------------- attribute types


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_decimal(v: Any) -> bool:
    return isinstance(v, str) and v.isascii() and v.isdigit() and len(v) <= MAX_DECIMAL_DIGITS


def _json(v: Any) -> Any:
    """``v`` decoded as JSON, or None where it is not a JSON string (deep nesting included)."""
    if not isinstance(v, str):
        return None
    try:
        return json.loads(v)
    except (ValueError, RecursionError):
        return None


def _is_json_object(v: Any) -> bool:
    return isinstance(_json(v), dict)


def _is_number_map(v: Any) -> bool:
    """A JSON object whose values are numbers or null (null: a figure the file does not give)."""
    m = _json(v)
    return isinstance(m, dict) and all(x is None or _is_real(x) for x in m.values())


def _is_reals(v: Any) -> bool:
    a = np.asarray(v) if _is_real(v) or isinstance(v, np.ndarray) else None
    return a is not None and a.ndim <= 1 and a.dtype.kind in "iuf" and bool(np.isfinite(a).all())


#: attribute kind → (test, what the message says it must be)
ATTR_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_is_int, "an integer"),
    "real": (_is_real, "a number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "decimal": (_is_decimal, f"a string of at most {MAX_DECIMAL_DIGITS} decimal digits"),
    "json-object": (_is_json_object, "a JSON object (string)"),
    "number-map": (_is_number_map, "a JSON object of numbers or nulls (string)"),
    "reals": (_is_reals, "a number or a 1-D array of finite numbers"),
}

def check_attrs(label: str, attrs: Mapping[str, Any], kinds: Mapping[str, str], required: bool = False) -> None:
    """Each attribute named in ``kinds`` that is present (every one, if ``required``) has its kind."""
    for key, kind in kinds.items():
        if key not in attrs:
            if required:
                raise input_error(label, f"attribute '{key}' is missing")
            continue
        test, what = ATTR_KINDS[kind]
        if not test(attrs[key]):
            v = attrs[key]
            shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:40] + "…"
            raise input_error(label, f"attribute '{key}' must be {what}, found {type(v).__name__} {shown}")


# ----------------------------------------------------------------------------- defensive HDF5 reading

_KIND_NAMES = {"b": "bool", "i": "signed integer", "u": "unsigned integer", "f": "float"}


def _type_class_name(type_class: int) -> str:
    import h5py

    names = {h5py.h5t.STRING: "string", h5py.h5t.VLEN: "variable-length sequence", h5py.h5t.COMPOUND: "compound",
             h5py.h5t.OPAQUE: "opaque", h5py.h5t.REFERENCE: "reference", h5py.h5t.ARRAY: "array",
             h5py.h5t.BITFIELD: "bitfield", h5py.h5t.TIME: "time"}
    return names.get(type_class, f"class {type_class}")


class H5Input:
    """An open HDF5 file that is read defensively (see the module docstring).

    Made by :func:`h5_input`. Declared sizes of datasets and attributes are charged to a
    budget (``MAX_EXPANSION`` × the file size, at least ``MIN_READ_BUDGET``) before anything is read.
    """

    def __init__(self, f: "h5py.File", label: str, budget: int):
        self.f, self.label = f, label
        self.limit = self.budget = budget          # bytes: the most a chunk may hold; what is left to read

    def error(self, problem: str) -> FscertError:
        return input_error(self.label, problem)

    def _charge(self, what: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        n = math.prod(shape) * dtype.itemsize
        if n > self.budget:
            raise self.error(f"{what} declares shape {shape} of {dtype} ({n:,} bytes), more than the file can "
                             f"hold (at most {self.budget:,} bytes are read from it)")
        self.budget -= n

    def dataset(self, name: str, kinds: str | np.dtype, ndim: int | None = None) -> "h5py.Dataset | None":
        """The dataset ``name`` (None when absent), checked from its metadata alone: a dataset
        stored in this file, ``ndim``-D, within budget, of a dtype kind in ``kinds`` (e.g. ``"iuf"``)
        or of the dtype ``kinds`` (any byte order)."""
        import h5py

        link = self.f.get(name, getlink=True)
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            raise self.error(f"'{name}' is a link ({type(link).__name__}), not a dataset stored in the file")
        ds = self.f[name]
        if not isinstance(ds, h5py.Dataset):
            raise self.error(f"'{name}' is a {type(ds).__name__.lower()}, not a dataset")
        dcpl = ds.id.get_create_plist()
        if dcpl.get_layout() not in (h5py.h5d.COMPACT, h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED) \
                or dcpl.get_external_count() > 0:
            raise self.error(f"dataset '{name}' keeps its data in another file; only data stored in the file is read")
        filters = {dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())}
        if not filters <= READ_FILTERS:
            raise self.error(f"dataset '{name}' uses HDF5 filter {min(filters - READ_FILTERS)}; "
                             "only gzip, lzf, shuffle and fletcher32 are read")
        type_class = ds.id.get_type().get_class()
        if type_class not in (h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.ENUM):
            raise self.error(f"dataset '{name}' must be numeric, found HDF5 type {_type_class_name(type_class)}")
        dt, shape = ds.dtype, ds.shape
        if shape is None:
            raise self.error(f"dataset '{name}' has no dataspace (it holds nothing)")
        if isinstance(kinds, np.dtype):
            ok, expected = dt.kind == kinds.kind and dt.itemsize == kinds.itemsize, str(kinds)
        else:
            ok, expected = dt.kind in kinds, " or ".join(_KIND_NAMES[k] for k in kinds)
        if not ok or dt.fields is not None or dt.subdtype is not None:
            raise self.error(f"dataset '{name}' must be {expected}, found dtype {dt}")
        if ndim is not None and len(shape) != ndim:
            raise self.error(f"dataset '{name}' must be {ndim}-D, found shape {shape}")
        if ds.chunks is not None and math.prod(ds.chunks) * dt.itemsize > self.limit:
            raise self.error(f"dataset '{name}' declares chunks {ds.chunks} larger than the file can hold")
        self._charge(f"dataset '{name}'", shape, dt)
        return ds

    def read(self, ds: "h5py.Dataset | None") -> np.ndarray | None:
        """The data of a dataset returned by :meth:`dataset`."""
        return None if ds is None else np.asarray(ds[()])

    def attrs(self) -> dict[str, Any]:
        """The file's attributes as plain values: str, int, float, bool, or a numeric/str array."""
        import h5py

        out: dict[str, Any] = {}
        for name in self.f.attrs:
            if not isinstance(name, str):                 # h5py gives bytes for a name that is not UTF-8
                raise self.error(f"attribute name {name!r} is not UTF-8 text")
            aid = self.f.attrs.get_id(name)
            # only types fscert writes: libhdf5 can crash reading a damaged one of another class
            type_class = aid.get_type().get_class()
            if type_class not in (h5py.h5t.INTEGER, h5py.h5t.FLOAT, h5py.h5t.ENUM, h5py.h5t.STRING):
                raise self.error(f"attribute '{name}' has an unsupported HDF5 type ({_type_class_name(type_class)})")
            if aid.shape is None:
                raise self.error(f"attribute '{name}' has no dataspace (it holds nothing)")
            self._charge(f"attribute '{name}'", aid.shape, aid.dtype)
            out[name] = self._attr_value(name, self.f.attrs[name])
        return out

    def _attr_value(self, name: str, v: Any) -> Any:
        if isinstance(v, bytes):
            try:
                return v.decode("utf-8")
            except UnicodeDecodeError:
                raise self.error(f"attribute '{name}' is not UTF-8 text") from None
        if isinstance(v, str):
            return v
        if isinstance(v, np.generic) and v.dtype.kind in "biuf":
            return v.item()
        if isinstance(v, np.ndarray) and v.dtype.kind in "biuf" and v.dtype.fields is None:
            return v
        if isinstance(v, np.ndarray) and v.dtype.kind in "OSU":
            items = [self._attr_value(name, x) for x in v.ravel().tolist()]
            if all(isinstance(x, str) for x in items):
                return np.array(items, dtype=object).reshape(v.shape)
        raise self.error(f"attribute '{name}' has an unsupported type ({getattr(v, 'dtype', type(v).__name__)})")


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _align8(n: int) -> int:
    return (n + 7) // 8 * 8


def _size_of_lengths(mm: mmap.mmap) -> int | None:
    """'Size of lengths' in the superblock libhdf5 uses (the first at byte 0, 512, 1024, 2048, …)."""
    at = 0
    while at + 16 <= len(mm):
        if mm[at:at + 8] == HDF5_SIGNATURE:
            return mm[at + (14 if mm[at + 8] < 2 else 10)]
        at = 512 if at == 0 else 2 * at
    return None


def _collection_ok(mm: mmap.mmap, at: int, n: int) -> bool:
    """Whether the global heap collection at byte ``at`` is a chain of objects that ends exactly at
    its end, each advancing by at least an object header (``n``: size of lengths)."""
    end = at + int.from_bytes(mm[at + 8:at + 8 + n], "little")
    if end > len(mm):
        return True                                   # libhdf5 fails to read it: an error, not a hang
    header = _align8(8 + n)
    p = at + header
    while p + header <= end:                          # a shorter tail is free space
        index = int.from_bytes(mm[p:p + 2], "little")
        size = int.from_bytes(mm[p + 8:p + 8 + n], "little")
        need = header + _align8(size) if index else size
        if need < header or p + need > end:
            return False
        p += need
    return True


def check_global_heaps(path: Path, label: str) -> None:
    """Refuse a file with a malformed global heap collection ("GCOL", where HDF5 keeps
    variable-length strings such as str attributes) before libhdf5 sees it: libhdf5 2.0 loops
    forever decoding a collection in which an object does not advance (e.g. a free-space object of
    size 0 after a damaged length). One pass over the file (memory-mapped)."""
    if path.stat().st_size == 0:
        return
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        n = _size_of_lengths(mm)
        if n not in (2, 4, 8, 16, 32):
            return                                    # not HDF5, or a superblock libhdf5 refuses
        at = mm.find(b"GCOL\x01")
        while at >= 0:
            if not _collection_ok(mm, at, n):
                raise input_error(label, f"is damaged: malformed HDF5 global heap at byte {at}")
            at = mm.find(b"GCOL\x01", at + 1)


@contextlib.contextmanager
def h5_input(path: Path, label: str, missing: str) -> Iterator[H5Input]:
    """Open the regular file ``path`` read-only as :class:`H5Input`. Any failure inside the block
    that is not already a :class:`FscertError` (h5py reports a damaged file as OSError, KeyError,
    ValueError, RuntimeError, … and numpy runs out of memory) becomes one line naming the file."""
    import h5py

    if not path.exists():
        raise FscertError(one_line(missing))
    if not path.is_file():
        raise input_error(label, "is not a regular file")
    try:
        check_global_heaps(path, label)
        budget = max(MIN_READ_BUDGET, MAX_EXPANSION * path.stat().st_size)
        with h5py.File(path, "r") as f:
            yield H5Input(f, label, budget)
    except FscertError:
        raise
    except Exception as e:  # noqa: BLE001 — a damaged file can fail anywhere inside h5py
        raise input_error(label, f"cannot read it as HDF5 (damaged, truncated or not HDF5?): {_first_line(e)}") \
            from None
