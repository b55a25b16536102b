"""Any image size end to end (issue 15): `fscert certify` at the stored 28×28 of a MedMNIST set
with no padding, and on rectangular images with a rectangular latent grid; the certificate's
near-copy figures equal `fscert audit`'s on the same decoded images."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from fscert.autoencoder import load_model
from fscert.certificate import read_certificate
from fscert.data import load_images
from fscert_cli.main import cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--epochs", "4", "--finetune-epochs", "1", "--draw-finetune-epochs", "1", "-M", "2", "--rho", "3",
        "--quiet"]


def _certify(data, out, *args):
    r = CliRunner().invoke(cli, ["certify", str(data), "--out", str(out), *TINY, *map(str, args)])
    assert r.exit_code == 0, r.output
    return out


def _audit_agrees(out, train):
    """The certificate's nearest training image and PSNR of every listed image equal the audit's
    of the same decoded images against the training images at their stored size."""
    from fscert.audit import audit

    cert = read_certificate(out / "cert.h5")
    assert len(cert.latents) > 0
    res = audit(train, cert.images.astype(np.float32) / 255.0, gammas=(20.0, 25.0))
    pi = res["per_image"]
    assert np.array_equal(pi["psnr"], cert.psnr) and np.array_equal(pi["nearest_train"], cert.nearest_train)
    return cert


def test_pneumoniamnist_at_28_without_padding(tmp_path):
    out = _certify("pneumoniamnist", tmp_path / "p", "--limit", 10)
    m = load_model(out / "model_ft.pt")
    assert m.config.image_hw == (28, 28) and m.config.latent_hw == (7, 7)
    train = load_images("pneumoniamnist", limit=10)
    cert = _audit_agrees(out, train)
    assert cert.images.shape[1:] == (1, 28, 28)
    g = json.loads(cert.attrs["geometry"])
    assert g["compared_hw"] == g["canvas_hw"] == [28, 28]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == "native 28×28" and summary["latent_shape"] == "2×7×7"


def test_rectangular_images_and_grid_end_to_end(tmp_path):
    """24×40 images (two MNIST digits side by side, cropped), a 6×10 latent grid."""
    x = load_images("mnist", limit=20)[:, 0]                                    # 20×28×28
    pairs = np.concatenate([x[0::2, 2:26, 4:24], x[1::2, 2:26, 4:24]], axis=2)  # 10×24×40
    np.save(tmp_path / "rect.npy", (pairs * 255).round().astype(np.uint8))
    out = _certify(tmp_path / "rect.npy", tmp_path / "r", "--limit", 10, "--latent-size", "6x10")
    m = load_model(out / "model_ft.pt")
    assert m.config.image_hw == (24, 40) and m.config.latent_hw == (6, 10)
    cert = _audit_agrees(out, load_images(tmp_path / "rect.npy"))
    assert cert.images.shape[1:] == (1, 24, 40) and cert.latents.shape[2:] == (6, 10)
    r = CliRunner().invoke(cli, ["verify", str(out / "cert.h5"), "--model", str(out / "model_ft.pt"),
                                 "--train", str(tmp_path / "rect.npy"), "--latents", str(out / "empirical.h5")])
    assert r.exit_code == 0, r.output


def test_pad_and_resize_are_stated(tmp_path):
    out = _certify("mnist", tmp_path / "p", "--limit", 8, "--pad")
    assert load_model(out / "model_ft.pt").config.image_hw == (32, 32)
    s = json.loads((out / "summary.json").read_text())
    assert s["images"].startswith("zero-padded from the stored 28×28 to 32×32") and s["latent_shape"] == "2×8×8"
    assert json.loads(read_certificate(out / "cert.h5").attrs["geometry"])["compared_hw"] == [28, 28]
    r = CliRunner().invoke(cli, ["report", str(out / "cert.h5"), "--out", str(tmp_path / "rep"), "--train", "mnist",
                                 "--quiet"])                      # the training images on the padded canvas
    assert r.exit_code == 0, r.output
    out = _certify("mnist", tmp_path / "r", "--limit", 8, "--resize", 16, 16)
    s = json.loads((out / "summary.json").read_text())
    assert s["images"].startswith("resized (bilinear) from the stored 28×28 to 16×16") and s["latent_shape"] == "2×4×4"
    r = CliRunner().invoke(cli, ["certify", "mnist", "--out", str(tmp_path / "x"), "--pad", "--resize", "8", "8"])
    assert r.exit_code != 0 and "not both" in r.output
    r = CliRunner().invoke(cli, ["certify", "mnist", "--out", str(tmp_path / "y"), "--latent-size", "8"])
    assert r.exit_code != 0 and "28×28 image does not split into a 8×8 grid" in r.output


def test_rectangular_train_encode_sample_enumerate_report(tmp_path):
    """Every command on 24×40 images with a 6×10 grid: the sampler (direct and network), the
    draws, the enumeration and the report keep the rectangular shapes."""
    import h5py

    x = load_images("mnist", limit=20)[:, 0]
    pairs = np.concatenate([x[0::2, 2:26, 4:24], x[1::2, 2:26, 4:24]], axis=2)
    np.save(tmp_path / "rect.npy", (pairs * 255).round().astype(np.uint8))
    d = tmp_path

    def run(*args):
        r = CliRunner().invoke(cli, [str(a) for a in args] + ["--quiet"])
        assert r.exit_code == 0, r.output
        return r.output

    run("train", d / "rect.npy", "--out", d / "m.pt", "--latent-size", "6x10", "--epochs", 3, "--finetune-epochs",
        1, "-M", 3)
    run("encode", d / "m.pt", d / "rect.npy", "-o", d / "z.h5")
    for s in ("direct", "network"):
        run("sample", "--latents", d / "z.h5", "--model", d / "m.pt", "--strategy", s, "--rho", 1, "-n", 6,
            "-o", d / f"s_{s}.h5")
        with h5py.File(d / f"s_{s}.h5", "r") as f:
            assert f["latents"].shape == (6, 3, 6, 10) and f["images"].shape == (6, 1, 24, 40)
    run("draw", "--latents", d / "z.h5", "--trials", 3, "--out", d / "e.h5")
    run("enumerate", "--latents", d / "e.h5", "--rho", 2, "--model", d / "m.pt", "--train", d / "rect.npy",
        "--out", d / "c.h5")
    cert = read_certificate(d / "c.h5")
    assert cert.latents.shape[1:] == (3, 6, 10) and cert.images.shape[1:] == (1, 24, 40)
    run("report", d / "c.h5", "--out", d / "rep", "--train", d / "rect.npy")
    assert (d / "rep" / "index.html").is_file()
