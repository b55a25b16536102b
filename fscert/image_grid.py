"""The one image-grid writer: tile uint8 images (N, C, H, W) into one picture, and save it as PNG.

Used by ``fscert sample`` (the samples' PNG), NFIG's samples and the experiments' figures.
Tiles keep their size and aspect ratio; ``pad`` pixels of ``fill`` separate them and frame the
grid. Grey images give a 2-D array, RGB ones an H×W×3 array (what PIL's ``fromarray`` takes).
"""
from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image

from .fileio import atomic_path


def image_grid(images_NCHW: np.ndarray, cols: int | None = None, max_images: int | None = None, pad: int = 1,
               fill: int = 0) -> np.ndarray:
    """One uint8 picture of the first ``max_images`` images, ``cols`` a row (default: near-square)."""
    x_NCHW = np.asarray(images_NCHW if max_images is None else images_NCHW[:max_images], np.uint8)
    n, c, h, w = x_NCHW.shape
    cols = max(1, int(cols) if cols else math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    grid_HWC = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), fill, np.uint8)
    for k in range(n):
        r, q = divmod(k, cols)
        y0, x0 = pad + r * (h + pad), pad + q * (w + pad)
        grid_HWC[y0:y0 + h, x0:x0 + w] = x_NCHW[k].transpose(1, 2, 0)
    return grid_HWC[:, :, 0] if c == 1 else grid_HWC


def write_png_grid(path: str | os.PathLike, images_NCHW: np.ndarray, **grid) -> None:
    """Write :func:`image_grid` of ``images_NCHW`` to ``path`` as PNG (atomically)."""
    with atomic_path(path) as tmp:
        Image.fromarray(image_grid(images_NCHW, **grid)).save(tmp, format="PNG")
