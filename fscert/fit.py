"""How images are brought to the size a model works at: natively by default, padded or resized
only on request (`--pad`, `--resize H W`), and always stated.

* **native** (the default): images keep their stored H×W; the model is built for it (any H×W
  with integer pixel blocks, :class:`fscert.autoencoder.AEConfig`). Nothing is invented or lost.
* **pad** (`--pad`): zero borders bring each side to the next multiple of 32, centred
  (28×28 → 32×32 with 2 px on every side: the paper's MNIST set-up; 64 stays 64). The
  certificate still compares at the stored size: only the stored region of the canvas
  (:mod:`fscert.geometry`), so the border never inflates a PSNR.
* **resize** (`--resize H W`): bilinear with antialiasing to H×W. The stored pixels are gone;
  images are compared at the resized size, and every output that depends on it says so.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .errors import FscertError

#: `--pad` brings each side up to a multiple of this (28 → 32)
PAD_MULTIPLE = 32


@dataclass
class Fit:
    """The size policy (module docstring). ``Fit()`` is native."""

    pad: bool = False
    resize: tuple[int, int] | None = None

    def validate(self) -> "Fit":
        if self.pad and self.resize is not None:
            raise FscertError("give --pad or --resize, not both")
        if self.resize is not None:
            if len(self.resize) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                            for v in self.resize):
                raise FscertError(f"--resize needs two positive integers H W, got {self.resize!r}")
        return self

    @property
    def native(self) -> bool:
        return not self.pad and self.resize is None

    def target_hw(self, native_hw: tuple[int, int]) -> tuple[int, int]:
        """H×W of the fitted images for stored images of ``native_hw``."""
        if self.resize is not None:
            return tuple(self.resize)
        if self.pad:
            return tuple(-(-v // PAD_MULTIPLE) * PAD_MULTIPLE for v in native_hw)
        return tuple(native_hw)

    def apply(self, x_NCHW: np.ndarray) -> np.ndarray:
        """The fitted images (float32 N×C×H×W in [0, 1])."""
        self.validate()
        h, w = x_NCHW.shape[2:]
        th, tw = self.target_hw((h, w))
        if (th, tw) == (h, w):
            return x_NCHW
        if self.pad:
            top, left = (th - h) // 2, (tw - w) // 2
            return np.pad(x_NCHW, ((0, 0), (0, 0), (top, th - h - top), (left, tw - w - left)))
        import torch
        import torch.nn.functional as F

        t = F.interpolate(torch.from_numpy(np.ascontiguousarray(x_NCHW)), size=(th, tw), mode="bilinear",
                          align_corners=False, antialias=True)
        return t.clamp_(0, 1).numpy()

    def words(self, native_hw: tuple[int, int]) -> str:
        """What was done, for every output that depends on it."""
        h, w = native_hw
        th, tw = self.target_hw(native_hw)
        if self.resize is not None:
            return (f"resized (bilinear) from the stored {h}×{w} to {th}×{tw}: compared at {th}×{tw}"
                    if (th, tw) != (h, w) else f"native {h}×{w} (--resize to the stored size)")
        if self.pad and (th, tw) != (h, w):
            return f"zero-padded from the stored {h}×{w} to {th}×{tw} (--pad); compared at the stored {h}×{w}"
        return f"native {h}×{w}"

    def to_json(self) -> str:
        return json.dumps({"pad": self.pad, "resize": list(self.resize) if self.resize else None})

    @classmethod
    def from_json(cls, text: str | None) -> "Fit":
        if not text:
            return cls()
        d = json.loads(text)
        return cls(bool(d.get("pad")), tuple(d["resize"]) if d.get("resize") else None)


def for_model(model, stored_hw: tuple[int, int]) -> Fit:
    """The fit a model was trained with (recorded by `fscert train` / `certify` in the model
    file); for files written before it was recorded: native when the model's size is the
    stored size, the 28×28 → 32×32 padding those versions applied, else a resize to the
    model's size (what they did, with a warning)."""
    rec = (getattr(model, "extra", None) or {}).get("fit")
    if rec:
        return Fit.from_json(rec)
    hw = tuple(model.config.image_hw)
    if hw == tuple(stored_hw):
        return Fit()
    if Fit(pad=True).target_hw(tuple(stored_hw)) == hw:
        return Fit(pad=True)
    return Fit(resize=hw)


def onto(native_hw: tuple[int, int], canvas_hw: tuple[int, int]) -> Fit:
    """The fit that puts stored images onto a fixed canvas (a model built for one size only,
    e.g. NFIG's 32×32): zero padding where it reaches the canvas, else a resize."""
    pad = Fit(pad=True)
    if tuple(native_hw) == tuple(canvas_hw):
        return Fit()
    return pad if pad.target_hw(tuple(native_hw)) == tuple(canvas_hw) else Fit(resize=tuple(canvas_hw))
