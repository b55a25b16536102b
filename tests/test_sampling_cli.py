"""`fscert sample` through click's CliRunner on a throwaway group."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import click
from click.testing import CliRunner

from fscert.autoencoder import AEConfig, LocalAutoencoder, save_model
from fscert.latents import write_latents
from fscert_cli.common import FscertGroup
from fscert_cli.sample import COMMANDS


@click.group(cls=FscertGroup)
@click.pass_context
def group(ctx):
    ctx.ensure_object(dict)


for _c in COMMANDS:
    group.add_command(_c)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def latents_file(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.choice(np.array([-1, 1], np.int8), (12, 2, 8, 8))
    p = tmp_path / "l.h5"
    write_latents(p, z, {"source": "test"})
    return p


@pytest.fixture
def model_file(tmp_path):
    torch.manual_seed(0)
    m = LocalAutoencoder(AEConfig(latent_size=8, latent_channels=2, hidden=8))
    p = tmp_path / "m.pt"
    save_model(m, p)
    return p


def run(*args):
    return CliRunner().invoke(group, list(map(str, args)))


def read(p):
    with h5py.File(p, "r") as f:
        return {k: f[k][()] for k in f}, dict(f.attrs)


@pytest.mark.parametrize("extra", [[], ["--translation-invariant"], ["--full-context"], ["--tau", "1.0"]])
def test_direct_same_seed_same_samples(tmp_path, latents_file, extra):
    a, b, c = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    base = ["sample", "--latents", latents_file, "--rho", 1, "--tau", 1.5, "-n", 20]
    r = run(*base, "--seed", 3, "--out", a, *extra)
    assert r.exit_code == 0, r.output
    assert run(*base, "--seed", 3, "--out", b, *extra).exit_code == 0
    assert run(*base, "--seed", 4, "--out", c, *extra).exit_code == 0
    da, attrs = read(a)
    assert da["latents"].shape == (20, 2, 8, 8) and da["latents"].dtype == np.int8
    np.testing.assert_array_equal(da["latents"], read(b)[0]["latents"])
    assert (da["latents"] != read(c)[0]["latents"]).any()
    assert attrs["strategy"] == "direct" and attrs["seed"] == 3 and len(attrs["latents_sha256"]) == 64
    assert not (tmp_path / "a.png").exists()


def test_model_writes_images_and_png(tmp_path, latents_file, model_file):
    out = tmp_path / "s.h5"
    r = run("sample", "--latents", latents_file, "--model", model_file, "--tau", 1.3, "--kappa", 2, "-n", 5,
            "--out", out)
    assert r.exit_code == 0, r.output
    d, attrs = read(out)
    assert d["images"].shape == (5, 1, 32, 32) and d["images"].dtype == np.uint8
    assert len(attrs["model_sha256"]) == 64
    assert attrs["q"] == pytest.approx(0.5 * (1 - 1 / 1.3) ** 0.5)
    assert (tmp_path / "s.png").stat().st_size > 0
    r = run("sample", "--latents", latents_file, "--model", model_file, "-n", 5, "--out", out)
    assert r.exit_code != 0 and "exists" in r.output
    assert run("sample", "--latents", latents_file, "--model", model_file, "-n", 5, "--out", out,
               "--force").exit_code == 0


def test_network_strategy_deterministic(tmp_path, latents_file):
    outs = [tmp_path / f"{k}.h5" for k in "ab"]
    for o in outs:
        r = run("sample", "--latents", latents_file, "--strategy", "network", "--network-epochs", 2,
                "--tau", 1.5, "-n", 8, "--seed", 1, "--out", o)
        assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(read(outs[0])[0]["latents"], read(outs[1])[0]["latents"])
    assert read(outs[0])[1]["strategy"] == "network"


def test_bad_inputs_one_line_no_output(tmp_path, latents_file, model_file):
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("latents", data=np.zeros((3, 2, 8, 8), np.int8))
    small = tmp_path / "small.h5"
    write_latents(small, np.ones((2, 3, 4, 4), np.int8))
    out = tmp_path / "o.h5"
    cases = [
        ["--rho", -1], ["--tau", -2], ["--kappa", 0], ["--kappa", -1],
        ["--latents", bad], ["--latents", tmp_path / "missing.h5"],
        ["--latents", small, "--model", model_file],
        ["--translation-invariant", "--full-context"],
        ["-n", 0],
    ]
    for extra in cases:
        args = ["sample", "--latents", latents_file, "--out", out, *extra]
        r = run(*args)
        assert r.exit_code != 0, (extra, r.output)
        assert len(r.output.strip().splitlines()) <= 6, r.output       # click usage errors: short
        assert "Traceback" not in r.output
        assert not out.exists() and not (tmp_path / "o.png").exists(), extra
    r = run("sample", "--latents", bad, "--out", out)
    assert r.output.strip().startswith("error:") and len(r.output.strip().splitlines()) == 1
    r = run("sample", "--latents", small, "--model", model_file, "--out", out)
    assert r.output.strip().startswith("error:") and "do not fit" in r.output


def test_saved_network_samples_like_the_trained_one(tmp_path, latents_file):
    """--save-network then --network: the same samples as training in the run, without retraining."""
    a, b, net = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "net.pt"
    r = run("sample", "--latents", latents_file, "--strategy", "network", "--network-epochs", 2, "--tau", 1.5,
            "-n", 8, "--seed", 1, "--out", a, "--save-network", net)
    assert r.exit_code == 0 and net.exists(), r.output
    r = run("sample", "--latents", latents_file, "--strategy", "network", "--network", net, "-n", 8, "--seed", 1,
            "--out", b)
    assert r.exit_code == 0, r.output
    (za, aa), (zb, ab) = read(a), read(b)
    np.testing.assert_array_equal(za["latents"], zb["latents"])
    assert ab["q"] == aa["q"] and ab["rho"] == aa["rho"] and ab["network"] == str(net)
    assert ab["network_loss"] == aa["network_loss"]


def test_saved_network_refuses_other_latents_and_direct(tmp_path, latents_file):
    net = tmp_path / "net.pt"
    assert run("sample", "--latents", latents_file, "--strategy", "network", "--network-epochs", 1, "-n", 2,
               "--out", tmp_path / "a.h5", "--save-network", net).exit_code == 0
    other = tmp_path / "other.h5"
    write_latents(other, -read(latents_file)[0]["latents"])
    out = tmp_path / "o.h5"
    for args, msg in ((["--latents", other, "--strategy", "network", "--network", net], "other latents"),
                      (["--latents", latents_file, "--network", net], "need --strategy network"),
                      (["--latents", latents_file, "--strategy", "network", "--network", net, "--save-network",
                        tmp_path / "n2.pt"], "give one")):
        r = run("sample", *args, "--out", out)
        assert r.exit_code == 1 and msg in r.output and not out.exists(), r.output
