"""One comparison geometry (issue 12 item 4): certificates compare images at their stored size.

The crop and the PSNR are checked against numpy slicing and a float64 sum written here; the
certificate's metrics against `fscert audit` run on the same decoded images (identical PSNR,
nearest image, UIR and M-UIR); old files without the attribute read as the whole canvas.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fscert.autoencoder import AEConfig, LocalAutoencoder
from fscert.enumerate import EnumerateConfig, Inputs, certify
from fscert.errors import FscertError
from fscert.fit import Fit
from fscert.geometry import Geometry, Targets, load_compared, paired_psnr, stored_hw

PAD = Fit(pad=True)
from fscert.latents import LatentSet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_geometry_of_stored_sizes():
    g = Geometry.for_stored((28, 28), (32, 32))
    assert (g.compared_hw, g.canvas_hw, g.offset, g.how) == ((28, 28), (32, 32), (2, 2), "native")
    assert g.words == ("images are compared at their stored size 28×28; the 2-pixel border the model adds is "
                       "not compared")
    assert g.pixels(1) == 784 and g.pixels(3) == 3 * 784
    d = json.loads(g.to_json())
    assert (d["compared_hw"], d["canvas_hw"], d["offset"], d["how"]) == ([28, 28], [32, 32], [2, 2], "native")
    assert Geometry.from_json(g.to_json(), (32, 32)) == g
    whole = Geometry.for_stored((32, 32), (32, 32))
    assert whole.how == "native" and whole.whole_canvas and "32×32" in whole.words
    r = Geometry.for_stored((64, 48), (32, 32))
    assert r.how == "resized" and r.whole_canvas and "64×48" in r.words and "not at their stored size" in r.words
    old = Geometry.from_json(None, (32, 32))                    # a certificate written before the attribute
    assert old.how == "canvas" and old.whole_canvas
    with pytest.raises(FscertError, match="does not fit"):
        Geometry((30, 30), (32, 32), (4, 4), "native")
    with pytest.raises(FscertError, match="unreadable"):
        Geometry.from_json('{"how": "native"}', (32, 32))


def test_crop_and_psnr_equal_numpy():
    rng = np.random.default_rng(0)
    a = rng.random((5, 2, 32, 32)).astype(np.float32)
    b = rng.random((5, 2, 32, 32)).astype(np.float32)
    b[3] = a[3]
    g = Geometry((20, 24), (32, 32), (3, 5), "native")
    assert np.array_equal(g.crop(a), a[:, :, 3:23, 5:29])
    assert np.array_equal(g.rows(a), a[:, :, 3:23, 5:29].reshape(5, -1))
    assert g.mask().sum() == 20 * 24 and g.mask()[3, 5] and not g.mask()[2, 5] and not g.mask()[3, 29]
    got = paired_psnr(a, b, g)
    d = a[:, :, 3:23, 5:29].astype(np.float64) - b[:, :, 3:23, 5:29].astype(np.float64)
    with np.errstate(divide="ignore"):
        want = 10 * np.log10(2 * 20 * 24 / (d ** 2).reshape(5, -1).sum(1))
    np.testing.assert_allclose(got[[0, 1, 2, 4]], want[[0, 1, 2, 4]], rtol=1e-12)
    assert got[3] == np.inf
    with pytest.raises(FscertError, match="canvas"):
        g.crop(np.zeros((1, 1, 28, 28)))


def test_load_compared_is_load_images_with_its_geometry():
    from fscert.data import load_images

    x, g = load_compared("mnist", limit=5)                               # native: the whole 28×28 image
    assert np.array_equal(x, load_images("mnist", limit=5)) and g == Geometry.whole((28, 28), "native")
    x, g = load_compared("mnist", limit=5, fit=PAD)                      # --pad: the stored 28×28 region
    assert np.array_equal(x, load_images("mnist", limit=5, fit=PAD))
    assert g == Geometry.for_stored((28, 28), (32, 32)) and stored_hw("mnist") == (28, 28)
    assert np.array_equal(g.crop(x), load_images("mnist", limit=5))


def test_other_sizes_are_compared_on_the_canvas_and_say_so(tmp_path):
    np.save(tmp_path / "x.npy", (np.arange(3 * 20 * 20) % 256).astype(np.uint8).reshape(3, 20, 20))
    x, g = load_compared(tmp_path / "x.npy", fit=Fit(resize=(32, 32)))
    assert x.shape == (3, 1, 32, 32) and g.how == "resized" and g.whole_canvas and g.stored_hw == (20, 20)
    assert json.loads(g.to_json())["stored_hw"] == [20, 20] and "resized" in g.words
    assert np.array_equal(g.crop(x), x)


@pytest.fixture(scope="module")
def listed():
    """A tiny untrained model, 12 MNIST training images and a small listing decoded with it."""
    torch.manual_seed(0)
    model = LocalAutoencoder(AEConfig(latent_channels=1, hidden=8)).eval()
    rng = np.random.default_rng(0)
    base = rng.choice(np.array([-1, 1], np.int8), size=(3, 1, 8, 8))
    z = np.concatenate([base, np.where(rng.random((6, 1, 8, 8)) < 0.03, -1, 1).astype(np.int8) * base.repeat(2, 0)])
    x, geom = load_compared("mnist", limit=12, fit=PAD)                 # the padded canvas, compared at 28×28
    cfg = EnumerateConfig(rho=2, gammas=(10.0, 13.3))
    native = certify(Inputs(LatentSet(z), model, x, geometry=geom), cfg)
    canvas = certify(Inputs(LatentSet(z), model, x), cfg)
    assert len(native.latents) > 5 and 0 < native.flags[:, 1].sum() < len(native.latents)   # γ = 13.3 splits
    return model, x, geom, native, canvas


def test_certify_and_audit_agree(listed):
    """`certify` and `audit` on the same decoded images: identical PSNR, nearest, UIR and M-UIR."""
    from fscert.audit import audit
    from fscert.certificate import attr_json
    from fscert.data import load_images

    model, x, geom, cert, _ = listed
    train_native = load_images("mnist", limit=12)          # what `fscert audit` loads
    gen = geom.crop(cert.images).astype(np.float32) / 255.0
    res = audit(train_native, gen, gammas=(10.0, 13.3))
    pi = res["per_image"]
    assert np.array_equal(pi["psnr"], cert.psnr) and np.array_equal(pi["nearest_train"], cert.nearest_train)
    for j, k in enumerate(("10", "13.3")):
        assert res["uir"][k] == attr_json(cert, "uir")[k]
        assert res["m_uir"][k] == attr_json(cert, "m_uir")[k]
        assert np.array_equal(pi[f"m_uir_{k}"], cert.m_uir[:, j])
    assert json.loads(cert.attrs["geometry"])["compared_hw"] == [28, 28]


def test_native_psnr_is_crop_then_compare(listed):
    """Every listed image's PSNR is the best over the training images of a 28×28 comparison
    written here from scratch; the whole-canvas PSNR differs (the border is left out)."""
    model, x, geom, cert, canvas = listed
    k = len(cert.images)
    gen = (cert.images[:, :, 2:30, 2:30].astype(np.float32) / 255.0).astype(np.float64).reshape(k, -1)
    ref = x[:, :, 2:30, 2:30].astype(np.float64).reshape(len(x), -1)
    sq = ((gen[:, None, :] - ref[None, :, :]) ** 2).sum(-1)
    want = 10 * np.log10(784 / sq.min(1))
    np.testing.assert_allclose(cert.psnr, want, rtol=1e-12)
    assert np.array_equal(cert.nearest_train, sq.argmin(1))
    assert not np.allclose(cert.psnr, canvas.psnr)
    assert json.loads(canvas.attrs["geometry"])["how"] == "canvas"


def test_searched_certificate_in_native_geometry_equals_the_listing(listed):
    """--near-copies-only in the native geometry gives the listing's near-copies and mass."""
    from fscert.certificate import attr_json

    model, x, geom, cert, _ = listed
    rng = np.random.default_rng(0)
    base = rng.choice(np.array([-1, 1], np.int8), size=(3, 1, 8, 8))
    z = np.concatenate([base, np.where(rng.random((6, 1, 8, 8)) < 0.03, -1, 1).astype(np.int8) * base.repeat(2, 0)])
    cfg = EnumerateConfig(rho=2, gammas=(10.0, 13.3), near_copies_only=True, top_k=0)
    s = certify(Inputs(LatentSet(z), model, x, geometry=geom), cfg)
    for j, k in enumerate(("10", "13.3")):
        assert attr_json(s, "near_copy_exact")[k]
        assert int(attr_json(s, "near_copy_count_low")[k]) == int(cert.flags[:, j].sum())
        assert attr_json(s, "memorization_mass_low")[k] == pytest.approx(attr_json(cert, "memorization_mass")[k],
                                                                         rel=1e-12, abs=1e-15)
    rows = {r.tobytes(): i for i, r in enumerate(cert.latents)}
    idx = [rows[r.tobytes()] for r in s.extra["near_latents"]]
    assert np.array_equal(s.extra["near_psnr"], cert.psnr[idx])


def test_targets_must_be_on_the_canvas():
    from fscert.nearcopy import NearCopyConfig, near_copy_search

    torch.manual_seed(0)
    model = LocalAutoencoder(AEConfig(latent_channels=1, hidden=8)).eval()
    z = np.ones((1, 1, 8, 8), np.int8)
    bad = Targets(np.zeros((1, 1, 28, 28), np.float32), Geometry.for_stored((28, 28), (32, 32)))
    with pytest.raises(FscertError, match="canvas"):
        near_copy_search(z, None, 1, model, bad, NearCopyConfig(), 0.0)


def test_pipeline_stage6_audit_agrees_with_the_certificate(tmp_path):
    """`fscert certify` on tiny settings: the certificate compares at 28×28, its stage-6 audit.json
    gives the same UIR and M-UIR, the fidelity uses stage 2's latents, and verify accepts it."""
    from fscert.autoencoder import load_model
    from fscert.certificate import attr_json, read_certificate
    from fscert.enumerate import verify
    from fscert.latents import read_latents
    from fscert.certify import CertifyConfig, run_certify

    job = CertifyConfig(n_train=8, epochs=3, finetune_epochs=1, draw_finetune_epochs=1, hidden=16, trials=2, rho=4,
                     gammas=(10.0, 25.0))
    out = tmp_path / "run"
    run_certify(job, out, progress=False)
    cert = read_certificate(out / "cert.h5")
    aud = json.loads((out / "audit.json").read_text())
    assert json.loads(cert.attrs["geometry"])["how"] == "native" and aud["params"]["dim"] == 784
    for k in ("10", "25"):
        assert aud["uir"][k] == attr_json(cert, "uir")[k] and aud["m_uir"][k] == attr_json(cert, "m_uir")[k]
    z = read_latents(out / "latents.h5").latents
    assert np.array_equal(cert.extra["train_latents"], z) and attr_json(cert, "fidelity")["n"] == 8
    x, geom = load_compared("mnist", limit=8)
    assert verify(cert, read_latents(out / "empirical.h5"), load_model(out / "model_ft.pt"), x, train_latents=z,
                  geometry=geom) == []
