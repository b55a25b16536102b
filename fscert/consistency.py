"""The patch-consistency difference map of FS-LAR A.3.1 (Eq. 27–28, Fig. 10).

Two latents z⁻ and z⁺ (M×8×8 in the paper) are cut into an upper part, a centre row and a
lower part, and stitched both ways (rows 0-based here; the paper prints 1-based rows 1:3, 4,
5:7 of the 8):

    X₊⁻ = d_θ([z⁻ rows 0..2; centre row 3; z⁺ rows 4..7])
    X₋⁺ = d_θ([z⁺ rows 0..2; centre row 3; z⁻ rows 4..7])          (Eq. 27)

    D⁽ⁱ⁾ = |X₊⁻ − X₋⁺| (summed over colour channels),   M = concat_i Σ_col D⁽ⁱ⁾   (Eq. 28)

so M has one row per image row and one column per pair i. The centre row is the one reading
the paper leaves open: as printed, X₊⁻ takes z⁻'s row 3 and X₋⁺ takes z⁺'s row 3 (the centre
comes with the upper part, ``shared_centre=False``); the default, ``shared_centre=True``, uses
z⁻'s row 3 in both stitchings — the reading under which the paper's "dark line" can appear.

Guarantee (locality of the decoder, :mod:`fscert.autoencoder`): each latent cell's p×p block
of pixels depends only on the R×R cells around it. So the image rows of latent row r are the
same in X₊⁻ and X₋⁺ — and M is 0 there, up to float rounding — whenever the two stitched
latents agree on latent rows r − (R−1)/2 … r + (R−1)/2. With R = 1 and the shared centre this
holds for the centre row: image rows 4·3 … 4·3 + 3 = 12 … 15 of a 32×32 image are a dark line
of zeros. With R = 3 no row is guaranteed; a dark line then measures how consistent the
decoder makes neighbouring patches. M ≥ 0 always, and M = 0 when z⁻ = z⁺.
"""
from __future__ import annotations

import numpy as np
import torch

from .autoencoder import LocalAutoencoder

#: the centre latent row of Eq. 27 (0-based; the paper's row 4 of 8)
CENTRE_ROW = 3


def stitch(z_minus_NMHW: np.ndarray, z_plus_NMHW: np.ndarray, shared_centre: bool = True,
           centre_row: int = CENTRE_ROW) -> tuple[np.ndarray, np.ndarray]:
    """The two stitched latents of Eq. 27 for every pair, as float32: (for X₊⁻, for X₋⁺).

    Rows above ``centre_row`` come from z⁻ (first) and z⁺ (second), rows below from the other
    one; the centre row is z⁻'s in both (``shared_centre``) or each one's upper source's.
    """
    zm = np.asarray(z_minus_NMHW, np.float32)
    zp = np.asarray(z_plus_NMHW, np.float32)
    if zm.ndim != 4 or zm.shape != zp.shape:
        raise ValueError(f"z⁻ and z⁺ must both be N×M×H×W, got {zm.shape} and {zp.shape}")
    c = int(centre_row)
    if not 0 < c < zm.shape[2] - 1:
        raise ValueError(f"the centre row must have rows above and below it: row {c} of {zm.shape[2]}")
    a = np.concatenate([zm[:, :, :c + 1], zp[:, :, c + 1:]], axis=2)
    centre = zm[:, :, c:c + 1] if shared_centre else zp[:, :, c:c + 1]
    b = np.concatenate([zp[:, :, :c], centre, zm[:, :, c + 1:]], axis=2)
    return a, b


def consistency_map(model: LocalAutoencoder, z_minus_NMHW: np.ndarray, z_plus_NMHW: np.ndarray,
                    shared_centre: bool = True, centre_row: int = CENTRE_ROW) -> np.ndarray:
    """M of Eq. 28 for the pairs (z⁻_i, z⁺_i): float32, image rows × pairs.

    Column i is Σ over image columns (and channels) of |X₊⁻ − X₋⁺| for pair i, with X₊⁻ and
    X₋⁺ the decoded :func:`stitch` latents (``model.decode``: images clamped to [0, 1]).
    """
    a, b = stitch(z_minus_NMHW, z_plus_NMHW, shared_centre, centre_row)
    with torch.no_grad():
        xa_NCHW = model.decode(torch.from_numpy(a)).numpy()
        xb_NCHW = model.decode(torch.from_numpy(b)).numpy()
    d_NHW = np.abs(xa_NCHW - xb_NCHW).sum(axis=1)        # over channels
    return d_NHW.sum(axis=2).T                          # Σ over image columns, one column per pair
