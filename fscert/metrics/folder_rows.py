"""Training rows in a folder of image files, read shard by shard on the Dask workers.

A folder (PNG, JPEG, TIFF, DICOM, NIfTI; :func:`fscert.data.load_dataset`) is read in natural
order of its files, the images of one file in stored order, each normalised as soon as it is
decoded (rescaled DICOM/NIfTI through one range common to the folder; grayscale stored as RGB
kept as one channel when the folder mixes them). :class:`FolderRows` carries what a worker
needs to read rows lo:hi by itself with the same readers and the same operations: the files
in read order with their number of images, the common range and the channel count. The
client builds it from its own read (:func:`folder_rows_for`), and
:func:`fscert.metrics.sharded.file_rows_for` trusts it only after the row count and the first
and last rows compare equal, byte for byte, with what the client read.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import readers
from ..data import _scan, to_nchw
from ..errors import FscertError
from ..fit import Fit


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
