"""`fscert train` / `fscert encode` end to end on tiny settings, and their bad-input handling."""
import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from fscert import load_model
from fscert_cli.main import cli

TINY = ["--limit", "24", "--epochs", "2", "--finetune-epochs", "1", "--hidden", "16", "--batch-size", "8"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("m")
    r = CliRunner().invoke(cli, ["train", "mnist", "--out", str(d / "m.pt"), *TINY])
    assert r.exit_code == 0, r.output
    return d


def test_train_writes_model_curves_and_png(trained):
    m = load_model(trained / "m.pt")
    assert (m.config.latent_hw, m.config.latent_channels, m.config.receptive_field) == ((7, 7), 7, 3)   # native 28×28
    assert m.config.image_hw == (28, 28) and json.loads(m.extra["fit"]) == {"pad": False, "resize": None}
    hist = json.loads((trained / "m.history.json").read_text())
    assert [h["phase"] for h in hist] == [1, 1, 2]
    assert {"mse", "psnr", "mean_abs_latent", "binary_rate"} <= set(hist[0])
    assert (trained / "m.history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_encode_writes_pm1_latents_with_provenance(trained):
    out = trained / "l.h5"
    r = CliRunner().invoke(cli, ["encode", str(trained / "m.pt"), "mnist", "--limit", "10", "--out", str(out)])
    assert r.exit_code == 0, r.output
    with h5py.File(out) as f:
        z = f["latents"][()]
        assert z.dtype == np.int8 and z.shape == (10, 7, 7, 7) and set(np.unique(z)) <= {-1, 1}
        assert len(f.attrs["model_sha256"]) == 64 and len(f.attrs["data_sha256"]) == 64
        assert json.loads(f.attrs["config"])["latent_channels"] == 7


def test_train_is_deterministic(tmp_path):
    for name in ("a.pt", "b.pt"):
        assert CliRunner().invoke(cli, ["train", "mnist", "--out", str(tmp_path / name), *TINY]).exit_code == 0
    from fscert.autoencoder import model_sha256
    assert model_sha256(load_model(tmp_path / "a.pt")) == model_sha256(load_model(tmp_path / "b.pt"))
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()     # the files too, byte for byte


@pytest.mark.parametrize("args,msg", [
    (["train", "missing.npz", "--out", "{d}/x.pt"], "data not found"),
    (["train", "mnist", "--out", "{d}/x.pt", "--receptive-field", "2"], "odd"),
    (["train", "mnist", "--out", "{d}/x.pt", "--tau", "-1"], "τ"),
    (["train", "mnist", "--out", "{d}/x.pt", "--kappa", "0"], "κ"),
    (["train", "mnist", "--out", "{d}/nodir/x.pt"], "does not exist"),
    (["encode", "{d}/notamodel.pt", "mnist", "--out", "{d}/l.h5"], "not an fscert autoencoder file"),
    (["encode", "{d}/m.pt", "{d}/nan.npy", "--out", "{d}/l.h5"], "NaN"),
    (["encode", "{d}/m.pt", "{d}/rgb.npy", "--out", "{d}/l.h5"], "do not fit the model"),
])
def test_bad_input_one_line_error_no_output(trained, tmp_path, args, msg):
    (tmp_path / "notamodel.pt").write_text("junk")
    np.save(tmp_path / "nan.npy", np.full((2, 28, 28), np.nan, np.float32))
    np.save(tmp_path / "rgb.npy", np.zeros((2, 32, 32, 3), np.uint8))
    (tmp_path / "m.pt").write_bytes((trained / "m.pt").read_bytes())
    before = set(tmp_path.iterdir())
    r = CliRunner().invoke(cli, [a.format(d=tmp_path) for a in args])
    assert r.exit_code != 0
    assert msg in r.output
    assert "Traceback" not in r.output
    assert set(tmp_path.iterdir()) == before          # nothing written, no temp files left


def test_existing_output_needs_force(trained):
    args = ["encode", str(trained / "m.pt"), "mnist", "--limit", "4", "--out", str(trained / "m.history.json")]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1 and "already exists" in r.output


def test_help_on_every_command():
    for name, cmd in cli.load_all().items():
        r = CliRunner().invoke(cli, [name, "--help"])
        assert r.exit_code == 0 and "Usage" in r.output, name
    assert CliRunner().invoke(cli, ["--version"]).output.startswith("fscert, version")
