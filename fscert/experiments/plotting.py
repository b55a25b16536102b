"""Figures of the experiments: matplotlib on the Agg backend, PNGs written atomically.

matplotlib is imported on first use, not with this module: ``import matplotlib.pyplot`` takes
≈ 0.5 s (measured 0.45–0.6 s on the 2-core test machine, after torch), and the package is
imported by ``fscert experiment`` and the tests before any figure is drawn.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..fileio import atomic_path
from ..image_grid import image_grid

#: tiles per row of the sample mosaics
MOSAIC_COLS = 16
#: the mosaics' look: 1-pixel gaps and frame of grey 128
MOSAIC_PAD, MOSAIC_FILL = 1, 128


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported here: slow, see above)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path, dpi: int = 80) -> None:
    """Lay out ``fig``, write it to ``path`` as PNG (atomically) and close it."""
    plt = pyplot()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)


def mosaic(images_NCHW: np.ndarray, cols: int = MOSAIC_COLS) -> np.ndarray:
    """One row block of sample tiles (uint8, ``cols`` a row), in the experiments' grey frame."""
    return image_grid(images_NCHW, cols=cols, pad=MOSAIC_PAD, fill=MOSAIC_FILL)


def labelled_mosaics(ax: Any, rows: Sequence[tuple[str, np.ndarray]], fontsize: int = 7) -> None:
    """Stack one :func:`mosaic` per (label, uint8 images) on ``ax``, each labelled on the y axis."""
    stacked = np.concatenate([mosaic(images) for _, images in rows], axis=0)
    ax.imshow(stacked, cmap="gray")
    ax.set_yticks([(i + 0.5) * stacked.shape[0] / len(rows) for i in range(len(rows))],
                  [label for label, _ in rows], fontsize=fontsize)
    ax.set_xticks([])
