"""Where images are compared: the comparison geometry of a certificate (issue 12, item 4).

The model works on its canvas: the images' stored size by default (the canvas is then the
image), or a padded or resized canvas on request (:mod:`fscert.fit`: ``--pad`` zero-pads
28×28 onto 32×32 as the paper does, ``--resize H W``). Comparing on the whole of a padded
canvas would add the border, where training images are 0 and a good decoder outputs ≈ 0:
that border inflates every PSNR (measured on ``make demo``: +1.16 dB) and makes the
certificate disagree with ``fscert audit`` on the same images. So a certificate compares
images **at their stored size**: only the *compared region* of the canvas, the rectangle of
``compared_hw`` pixels at ``offset``, enters the squared error, and PSNR (peak 1) is

    PSNR(a, b) = 10·log10(D / Σ_{region} (a − b)²),   D = C·h·w values of the region,

i.e. 10·log10(1/MSE) over the stored pixels only (paper Eq. 9's PSNR, at the stored size).

How the region is chosen (``how``):

* ``native`` — the stored pixels are on the canvas as they are: the whole canvas (the
  default), or the stored region of a padded canvas (28×28 at offset (2, 2) of 32×32);
* ``resized`` — the images were resized onto the canvas (``--resize``); there is no
  stored-size grid to compare on, so images are compared on the whole canvas, and the
  certificate says so;
* ``canvas`` — the stored size is not known: a library call given canvas-sized arrays only,
  or a certificate written before fscert recorded its geometry (read as the old padded
  comparison on the whole canvas).

The certificate records it as the JSON attribute ``geometry`` (:meth:`Geometry.to_json`).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import FscertError

HOWS = ("native", "resized", "canvas")
#: the stored size the paper pads onto the 32×32 canvas
PADDED_HW = (28, 28)


@dataclass(frozen=True)
class Geometry:
    """The region of the model's canvas where images are compared (module docstring)."""

    compared_hw: tuple[int, int]
    canvas_hw: tuple[int, int]
    offset: tuple[int, int]
    how: str                                   # one of HOWS
    stored_hw: tuple[int, int] | None = None   # the images' stored size, where known

    def __post_init__(self) -> None:
        (h, w), (ch, cw), (oy, ox) = self.compared_hw, self.canvas_hw, self.offset
        if self.how not in HOWS:
            raise FscertError(f"comparison geometry 'how' must be one of {', '.join(HOWS)}, got {self.how!r}")
        if not (0 < h and 0 < w and 0 <= oy and 0 <= ox and oy + h <= ch and ox + w <= cw):
            raise FscertError(f"comparison region {h}×{w} at offset ({oy}, {ox}) does not fit the {ch}×{cw} canvas")

    # ------------------------------------------------------------------ constructors

    @classmethod
    def whole(cls, canvas_hw: tuple[int, int], how: str = "canvas") -> "Geometry":
        """Compare on the whole canvas (``how`` "canvas": the stored size is not known)."""
        hw = (int(canvas_hw[0]), int(canvas_hw[1]))
        return cls(hw, hw, (0, 0), how, hw if how == "native" else None)

    @classmethod
    def for_stored(cls, stored_hw: tuple[int, int], canvas_hw: tuple[int, int], fit=None) -> "Geometry":
        """The geometry of images stored at ``stored_hw`` and put on the canvas by ``fit``
        (:class:`fscert.fit.Fit`; None: the 28×28 → 32×32 padding of files written before fits
        existed): the stored pixels where they are kept as they are (native, or padded), else
        the whole (resized) canvas."""
        s = (int(stored_hw[0]), int(stored_hw[1]))
        c = (int(canvas_hw[0]), int(canvas_hw[1]))
        if s == c:
            return cls(c, c, (0, 0), "native", s)
        padded = fit.pad if fit is not None else (s == PADDED_HW and c == (32, 32))
        if padded:
            return cls(s, c, ((c[0] - s[0]) // 2, (c[1] - s[1]) // 2), "native", s)
        return cls(c, c, (0, 0), "resized", s)

    @classmethod
    def from_json(cls, value: Any, canvas_hw: tuple[int, int]) -> "Geometry":
        """The geometry recorded in a certificate's ``geometry`` attribute; absent (None: a file
        written before the attribute existed) → the old comparison on the whole canvas."""
        if value is None:
            return cls.whole(canvas_hw)
        try:
            d = json.loads(value) if isinstance(value, str) else dict(value)
            stored = d.get("stored_hw")
            return cls(tuple(int(v) for v in d["compared_hw"]), tuple(int(v) for v in d["canvas_hw"]),
                       tuple(int(v) for v in d["offset"]), str(d["how"]),
                       tuple(int(v) for v in stored) if stored else None)
        except (TypeError, ValueError, KeyError) as e:
            raise FscertError(f"the certificate's 'geometry' attribute is unreadable: {e}") from None

    # ------------------------------------------------------------------ what it means

    @property
    def whole_canvas(self) -> bool:
        return self.compared_hw == self.canvas_hw

    def pixels(self, channels: int) -> int:
        """D: values per image in the region (the PSNR's normaliser)."""
        return int(channels) * self.compared_hw[0] * self.compared_hw[1]

    @property
    def words(self) -> str:
        """The geometry in plain words (one sentence)."""
        h, w = self.compared_hw
        ch, cw = self.canvas_hw
        if self.how == "native" and not self.whole_canvas:
            oy, ox = self.offset
            border = f"the {oy}-pixel border" if oy == ox == ch - h - oy == cw - w - ox else "the border"
            return f"images are compared at their stored size {h}×{w}; {border} the model adds is not compared"
        if self.how == "native":
            return f"images are compared at their stored size {h}×{w}, the model's canvas"
        if self.how == "resized":
            s = f"{self.stored_hw[0]}×{self.stored_hw[1]}" if self.stored_hw else "another size"
            return (f"images stored at {s} were resized to the model's {ch}×{cw} canvas and are compared there "
                    "(not at their stored size)")
        return (f"images are compared on the model's whole {ch}×{cw} canvas (their stored size is not recorded), "
                "including any border added to fit them on it")

    def to_dict(self) -> dict:
        d = {"compared_hw": list(self.compared_hw), "canvas_hw": list(self.canvas_hw), "offset": list(self.offset),
             "how": self.how, "words": self.words}
        if self.stored_hw is not None:
            d["stored_hw"] = list(self.stored_hw)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    # ------------------------------------------------------------------ arrays

    def mask(self) -> np.ndarray:
        """bool (H, W) over the canvas: True on the compared pixels."""
        m = np.zeros(self.canvas_hw, bool)
        (h, w), (oy, ox) = self.compared_hw, self.offset
        m[oy:oy + h, ox:ox + w] = True
        return m

    def crop(self, x_NCHW: np.ndarray) -> np.ndarray:
        """The compared region of canvas images (N×C×H×W → N×C×h×w, a contiguous copy)."""
        x = np.asarray(x_NCHW)
        if tuple(x.shape[-2:]) != self.canvas_hw:
            raise FscertError(f"images of {x.shape[-2]}×{x.shape[-1]} pixels are not on the "
                              f"{self.canvas_hw[0]}×{self.canvas_hw[1]} canvas of the comparison geometry")
        (h, w), (oy, ox) = self.compared_hw, self.offset
        return np.ascontiguousarray(x[..., oy:oy + h, ox:ox + w])

    def rows(self, x_NCHW: np.ndarray) -> np.ndarray:
        """The compared region, one row of D values per image."""
        c = self.crop(x_NCHW)
        return c.reshape(len(c), int(np.prod(c.shape[1:])))


@dataclass
class Targets:
    """Images a search compares against: canvas-sized values and the region compared.

    :func:`fscert.nearcopy.near_copy_search` accepts these in place of a bare array (which
    means the whole canvas)."""

    canvas: np.ndarray        # float32 N×C×H×W in [0, 1]
    geometry: Geometry

    def __len__(self) -> int:
        return len(self.canvas)


def comparison_geometry(train: np.ndarray | None, geometry: Geometry | None) -> Geometry | None:
    """The geometry of comparisons with the canvas images ``train`` (None without them): the
    given one, checked against their canvas, else the whole canvas (stored size unknown)."""
    if train is None:
        return None
    canvas = tuple(int(v) for v in np.shape(train)[2:])
    g = geometry if geometry is not None else Geometry.whole(canvas)
    if g.canvas_hw != canvas:
        raise FscertError(f"the comparison geometry is for a {g.canvas_hw[0]}×{g.canvas_hw[1]} canvas, "
                          f"the training images are {canvas[0]}×{canvas[1]}")
    return g


def targets_of(train: "np.ndarray | Targets") -> Targets:
    """A bare canvas array is compared on the whole canvas."""
    if isinstance(train, Targets):
        return train
    x = np.asarray(train, np.float32)
    return Targets(x, Geometry.whole(x.shape[-2:]))


def paired_psnr(gen_values: np.ndarray, targets: np.ndarray, geometry: Geometry) -> np.ndarray:
    """PSNR (peak 1) of each generated image to the target of the same row, over the region,
    with the metrics' exact float64 sums (``metrics.nearest.exact_sqdist``)."""
    import torch

    from .metrics.nearest import Rows, exact_sqdist, psnr_from_sqdist

    a, b = geometry.rows(gen_values), geometry.rows(targets)
    if len(a) != len(b):
        raise FscertError(f"{len(a)} images but {len(b)} targets")
    if len(a) == 0:
        return np.zeros(0)
    ra, rb = Rows(a), Rows(b)
    idx = torch.arange(len(a))
    return psnr_from_sqdist(exact_sqdist(ra, idx, rb, idx).numpy(), a.shape[1])


# ----------------------------------------------------------------------------- data


def stored_hw(spec: str | os.PathLike, split: str = "train") -> tuple[int, int]:
    """The stored H×W of DATA's images (read as :func:`fscert.data.load_images` reads them; only
    the first image where the format allows)."""
    from .data import load_dataset

    return tuple(load_dataset(spec, limit=1, split=split, warn=False).native_hw)


def load_compared(spec: str | os.PathLike, limit: int | None = None, split: str = "train",
                  fit=None) -> tuple[np.ndarray, Geometry]:
    """DATA on the model's canvas (exactly :func:`fscert.data.load_images` with ``fit``) and its geometry."""
    from .data import load_dataset

    ds = load_dataset(spec, limit=limit, split=split, fit=fit)
    return ds.images, Geometry.for_stored(ds.native_hw, ds.images.shape[2:], fit)


def load_for_model(spec: str | os.PathLike, model, limit: int | None = None, split: str = "train",
                   geometry: Any = None) -> tuple[np.ndarray, Geometry]:
    """DATA as ``model`` was trained on it (its recorded fit, :func:`fscert.fit.for_model`) and
    the geometry of comparing with it (the stored size where the pixels are kept). Without a
    model, as a certificate's recorded ``geometry`` (JSON) says: padded where it compares a
    region, resized to its canvas where it says resized, else native."""
    from .data import load_dataset
    from .fit import Fit, for_model

    ds = load_dataset(spec, limit=limit, split=split)
    if model is not None:
        fit = for_model(model, ds.native_hw)
    elif geometry is None:
        fit = Fit()
    else:
        g = Geometry.from_json(geometry, ds.native_hw)
        fit = (Fit() if g.canvas_hw == tuple(ds.native_hw) else Fit(pad=True) if g.how == "native"
               else Fit(resize=g.canvas_hw))
    x = fit.apply(ds.images)
    return x, Geometry.for_stored(ds.native_hw, x.shape[2:], fit)
