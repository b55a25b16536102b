"""The report's tiles and PNG sprite sheets: every listed image (or latent) as one tile of a sheet.

Guarantees: :func:`write_sprites` lays tile ``i`` at sheet ``i // perSheet``, row-major in a
``cols``-wide grid, and returns that layout, the one report.js uses to cut it out again; tiles
are stored at their own size (the page upscales them by the integer ``scale``), so no pixel is
resampled. :func:`latent_tiles` never shows a latent as if it were an image: it is a mosaic
of ±1 cells, and the page says so.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .certificate import Certificate
from .progress import Progress
from .report_format import note

TILES_PER_SHEET = 1000
SHEET_COLS = 40
DISPLAY_PX = 96  # target on-screen tile size; tiles are upscaled by an integer factor
PNG_COMPRESS_LEVEL = 1  # zlib level: several times faster than the default 6, files ~1.4× larger


def image_tiles(images: np.ndarray) -> tuple[np.ndarray, str]:
    """uint8 (K,C,S,S) → tiles (K,S,S) grey or (K,S,S,3) RGB, and a note when C is neither 1 nor 3."""
    c = images.shape[1]
    if c == 1:
        return images[:, 0], ""
    if c == 3:
        return np.ascontiguousarray(images.transpose(0, 2, 3, 1)), ""
    return images[:, 0], f"Images have {c} channels; tiles show channel 0."


def latent_tiles(latents: np.ndarray) -> np.ndarray:
    """int (K,M,H,W) latents → grey tiles: the M channels as a mosaic, −1 black, +1 white.

    Channels are laid out row-major in a ⌈√M⌉-wide grid separated by a 1-pixel dark-grey line;
    any value other than ±1 is mid-grey.
    """
    k, m, h, w = latents.shape
    gc = max(1, math.ceil(math.sqrt(m)))
    gr = max(1, math.ceil(m / gc))
    th, tw = gr * (h + 1) - 1, gc * (w + 1) - 1
    tiles = np.full((k, th, tw), 64, np.uint8)
    grey = np.full(latents.shape, 128, np.uint8)
    grey[latents < 0] = 0
    grey[latents > 0] = 255
    for ch in range(m):
        r, c = divmod(ch, gc)
        tiles[:, r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = grey[:, ch]
    return tiles


def write_generated_sprites(cert: Certificate, folder: Path, notes: list[dict[str, str]],
                            progress: bool, searched: bool = False) -> dict[str, Any] | None:
    """``gen-NNNN.png``: the listed images (or their latents, with a notice); None when nothing is listed."""
    if len(cert.prob) == 0:
        if not searched:                            # a searched report says why in its near-copy section
            notes.append(note("info", "Nothing was listed: this certificate only counts the reachable images "
                                      "(count-only), so there are no images to show."))
        return None
    if cert.images is not None:
        tiles, msg = image_tiles(np.asarray(cert.images, np.uint8) if cert.images.dtype != np.uint8 else cert.images)
        if msg:
            notes.append(note("info", msg))
        source = "images"
    else:
        tiles = latent_tiles(np.asarray(cert.latents))
        m, h, w = cert.latents.shape[1:]
        notes.append(note("latents", f"This certificate has no decoded images (it was made without a model). "
                                     f"The tiles show the latents instead: the {m}×{h}×{w} latent, its {m} "
                                     f"channel(s) side by side, −1 black and +1 white. They are not images."))
        source = "latents"
    info = write_sprites(tiles, folder, "gen", progress)
    info["source"] = source
    return info


def write_sprites(tiles: np.ndarray, folder: Path, prefix: str, progress: bool) -> dict[str, Any]:
    """Write ``tiles`` as PNG sheets of :data:`TILES_PER_SHEET`; return their layout for the page
    (``progress``: a :class:`fscert.progress.Progress` over the sheets)."""
    from PIL import Image

    n, th, tw = tiles.shape[:3]
    cols = min(SHEET_COLS, n)
    scale = max(1, DISPLAY_PX // max(th, tw))
    sheets, rows_per_sheet = [], []
    count = math.ceil(n / TILES_PER_SHEET)
    for s in Progress(range(count), desc=f"report: {prefix} sprite sheets", unit="sheet", show=progress,
                      leave=False):
        chunk = tiles[s * TILES_PER_SHEET:(s + 1) * TILES_PER_SHEET]
        rows = math.ceil(len(chunk) / cols)
        pad = rows * cols - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], np.uint8)])
        grid = chunk.reshape((rows, cols) + chunk.shape[1:]).swapaxes(1, 2)
        sheet = grid.reshape((rows * th, cols * tw) + chunk.shape[3:])
        name = f"sprites/{prefix}-{s:04d}.png"
        Image.fromarray(np.ascontiguousarray(sheet), "L" if sheet.ndim == 2 else "RGB").save(
            folder / name, compress_level=PNG_COMPRESS_LEVEL)
        sheets.append(name)
        rows_per_sheet.append(rows)
    return {"sheets": sheets, "rows": rows_per_sheet, "cols": cols, "perSheet": TILES_PER_SHEET,
            "tileW": int(tw), "tileH": int(th), "scale": int(scale)}
