"""fscert.consistency: the difference map M of Eq. 27–28 (A.3.1, Fig. 10) against a brute-force
reference that stitches, decodes and sums one pair, one row and one pixel at a time, and the
locality guarantee of its docstring."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fscert.autoencoder import AEConfig, LocalAutoencoder
from fscert.consistency import CENTRE_ROW, consistency_map, stitch

pytestmark = pytest.mark.usefixtures("one_torch_thread")

H = W = 8           # latent rows and columns (the paper's 8×8)
P = 4               # pixels per latent cell along a side (32×32 images)


def tiny_model(receptive_field: int, transition: bool = False, image_channels: int = 1) -> LocalAutoencoder:
    """A randomly initialised local autoencoder whose decoder output is mostly inside (0, 1), so
    that the clamp in ``decode`` does not hide differences."""
    torch.manual_seed(0)
    cfg = AEConfig(latent_channels=2, receptive_field=receptive_field, hidden=8, transition=transition,
                   image_channels=image_channels)
    model = LocalAutoencoder(cfg).eval()
    with torch.no_grad():
        model.decoder.cell[-1].bias.fill_(0.5)
    return model


def signs(rng: np.random.Generator, n: int, m: int = 2) -> np.ndarray:
    return np.where(rng.random((n, m, H, W)) < 0.5, -1, 1).astype(np.int8)


def reference_map(model: LocalAutoencoder, zm: np.ndarray, zp: np.ndarray, shared_centre: bool) -> np.ndarray:
    """Eq. 27–28 written out: for each pair, build both latents row by row, decode each alone, and
    add |X₊⁻ − X₋⁺| over channels and image columns pixel by pixel."""
    n, m = zm.shape[:2]
    img = model.config.image_size
    out = np.zeros((img, n))
    for i in range(n):
        a = np.zeros((1, m, H, W), np.float32)       # for X₊⁻: z⁻ above, z⁻ centre, z⁺ below
        b = np.zeros((1, m, H, W), np.float32)       # for X₋⁺: z⁺ above, centre, z⁻ below
        for r in range(H):
            if r < CENTRE_ROW:
                a[0, :, r], b[0, :, r] = zm[i, :, r], zp[i, :, r]
            elif r == CENTRE_ROW:
                a[0, :, r] = zm[i, :, r]
                b[0, :, r] = zm[i, :, r] if shared_centre else zp[i, :, r]
            else:
                a[0, :, r], b[0, :, r] = zp[i, :, r], zm[i, :, r]
        with torch.no_grad():
            xa = model.decode(torch.from_numpy(a))[0].double().numpy()
            xb = model.decode(torch.from_numpy(b))[0].double().numpy()
        for row in range(img):
            total = 0.0
            for c in range(xa.shape[0]):
                for col in range(img):
                    total += abs(xa[c, row, col] - xb[c, row, col])
            out[row, i] = total
    return out


@pytest.mark.parametrize("receptive_field,transition,image_channels", [(1, False, 1), (3, False, 3), (3, True, 1)])
@pytest.mark.parametrize("shared_centre", [True, False])
def test_map_equals_brute_force(receptive_field, transition, image_channels, shared_centre):
    model = tiny_model(receptive_field, transition, image_channels)
    rng = np.random.default_rng(receptive_field + 10 * transition)
    zm, zp = signs(rng, 3), signs(rng, 3)
    with torch.no_grad():
        x = model.decode(torch.from_numpy(zm.astype(np.float32))).numpy()
    assert ((x > 0) & (x < 1)).mean() > 0.5                   # the clamp hides little
    got = consistency_map(model, zm, zp, shared_centre=shared_centre)
    want = reference_map(model, zm, zp, shared_centre)
    assert got.shape == (32, 3)
    assert (want.max(axis=0) > 0.01).all()                    # every pair differs somewhere
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_stitch_rows_come_from_the_stated_sources():
    rng = np.random.default_rng(1)
    zm, zp = signs(rng, 2, 3), signs(rng, 2, 3)
    a, b = stitch(zm, zp, shared_centre=True)
    assert a.dtype == np.float32 and a.shape == b.shape == zm.shape
    np.testing.assert_array_equal(a[:, :, :4], zm[:, :, :4])
    np.testing.assert_array_equal(a[:, :, 4:], zp[:, :, 4:])
    np.testing.assert_array_equal(b[:, :, :3], zp[:, :, :3])
    np.testing.assert_array_equal(b[:, :, 3], zm[:, :, 3])
    np.testing.assert_array_equal(b[:, :, 4:], zm[:, :, 4:])
    _, b_printed = stitch(zm, zp, shared_centre=False)
    np.testing.assert_array_equal(b_printed[:, :, :4], zp[:, :, :4])


def test_dark_line_with_receptive_field_one():
    """The guarantee: R = 1 and a shared centre row → image rows 12..15 are identical in X₊⁻ and
    X₋⁺ (M = 0 there); the other rows differ, and Eq. 27 as printed has no such line."""
    model = tiny_model(1)
    rng = np.random.default_rng(2)
    zm, zp = signs(rng, 4), signs(rng, 4)
    zp[:, :, CENTRE_ROW] = -zm[:, :, CENTRE_ROW]              # the two centre rows differ everywhere
    m = consistency_map(model, zm, zp, shared_centre=True)
    centre = slice(P * CENTRE_ROW, P * (CENTRE_ROW + 1))
    np.testing.assert_allclose(m[centre], 0, atol=1e-5)
    assert (np.delete(m, np.arange(32)[centre], axis=0).sum(axis=0) > 0).all()
    printed = consistency_map(model, zm, zp, shared_centre=False)
    assert (printed[centre].sum(axis=0) > 0).all()


def test_rows_whose_receptive_field_agrees_are_zero():
    """R = 3: image rows of latent row r are zero exactly where the two stitched latents agree on
    rows r − 1 … r + 1 (here: z⁻ and z⁺ share rows 2 and 4, so the centre row's pixels vanish)."""
    model = tiny_model(3)
    rng = np.random.default_rng(3)
    zm, zp = signs(rng, 4), signs(rng, 4)
    zp[:, :, 2], zp[:, :, 4] = zm[:, :, 2], zm[:, :, 4]
    a, b = stitch(zm, zp)
    same_row = (a == b).all(axis=(1, 3))                      # N × H: stitched latents agree on row r
    m = consistency_map(model, zm, zp)
    for i in range(len(zm)):
        for r in range(H):
            near = same_row[i, max(0, r - 1):r + 2].all()
            pix = m[P * r:P * (r + 1), i]
            if near:
                np.testing.assert_allclose(pix, 0, atol=1e-5)
            else:
                assert pix.sum() > 0
    assert same_row[:, CENTRE_ROW - 1:CENTRE_ROW + 2].all()


@pytest.mark.parametrize("shared_centre", [True, False])
def test_identical_pair_gives_zero_map(shared_centre):
    model = tiny_model(3, transition=True)
    z = signs(np.random.default_rng(4), 2)
    np.testing.assert_allclose(consistency_map(model, z, z.copy(), shared_centre=shared_centre), 0, atol=1e-6)


def test_rejects_mismatched_or_centreless_latents():
    z = signs(np.random.default_rng(5), 2)
    with pytest.raises(ValueError, match="N×M×H×W"):
        stitch(z, z[:1])
    with pytest.raises(ValueError, match="centre row"):
        stitch(z, z, centre_row=7)
