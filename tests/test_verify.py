"""`fscert verify`: exit 0 only when the certificate matches every input given."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from fscert.latents import read_latents, write_latents
from fscert_cli.main import COMMANDS
from fscert_cli.common import FscertGroup


def invoke(*args):
    g = FscertGroup("fscert-test")
    for c in COMMANDS:
        g.add_command(c)
    return CliRunner().invoke(g, [str(a) for a in args])


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    import torch

    from fscert.autoencoder import AEConfig, LocalAutoencoder, save_model

    d = tmp_path_factory.mktemp("verify")
    torch.manual_seed(0)
    save_model(LocalAutoencoder(AEConfig(latent_channels=1, hidden=8)), d / "m.pt")
    torch.manual_seed(5)
    save_model(LocalAutoencoder(AEConfig(latent_channels=1, hidden=8)), d / "other.pt")
    rng = np.random.default_rng(1)
    base = rng.choice(np.array([-1, 1], np.int8), size=(2, 1, 8, 8))
    write_latents(d / "l.h5", base[rng.integers(0, 2, 8)], {"limit": 8})
    assert invoke("draw", "--latents", d / "l.h5", "--trials", 2, "--tau", 1.02, "--out", d / "e.h5").exit_code == 0
    r = invoke("enumerate", "--latents", d / "e.h5", "--rho", 2, "--model", d / "m.pt", "--train", "mnist",
               "--train-latents", d / "l.h5", "--out", d / "c.h5")
    assert r.exit_code == 0, r.output
    return d


def test_verify_everything_matches(made):
    r = invoke("verify", made / "c.h5", "--model", made / "m.pt", "--train", "mnist", "--latents", made / "e.h5")
    assert r.exit_code == 0, r.output
    assert "verified" in r.output
    assert invoke("verify", made / "c.h5").exit_code == 0                     # content hash only


def test_verify_other_model(made):
    r = invoke("verify", made / "c.h5", "--model", made / "other.pt")
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert any(line.startswith("DIFFERS model_sha256") for line in lines)
    assert any(line.startswith("DIFFERS dataset images") for line in lines)


def test_verify_other_train_and_latents(made, tmp_path):
    r = invoke("verify", made / "c.h5", "--train", "pneumoniamnist")
    assert r.exit_code == 1 and "train_sha256" in r.output
    E = read_latents(made / "e.h5")
    counts = E.counts.copy()
    counts[0] += 1
    write_latents(tmp_path / "e2.h5", E.latents, {}, counts=counts, source_index=E.source_index)
    r = invoke("verify", made / "c.h5", "--latents", tmp_path / "e2.h5")
    assert r.exit_code == 1 and "latents_sha256" in r.output and "dataset prob" in r.output


def test_verify_tampered(made, tmp_path):
    import shutil

    shutil.copy(made / "c.h5", tmp_path / "t.h5")
    with h5py.File(tmp_path / "t.h5", "r+") as f:
        p = f["prob"][()]
        p[0] *= 0.5
        del f["prob"]
        f["prob"] = p
    r = invoke("verify", tmp_path / "t.h5")
    assert r.exit_code == 1 and "content_sha256" in r.output and "prob sums to" in r.output
    r = invoke("verify", tmp_path / "t.h5", "--latents", made / "e.h5")
    assert r.exit_code == 1 and "dataset prob: 1 of" in r.output


def test_verify_fidelity(made, tmp_path):
    """The certificate's fidelity is recomputed; a tampered reconstruction PSNR (content hash
    recomputed too) or other training latents are reported."""
    import json

    from fscert.certificate import read_certificate, write_certificate

    c = read_certificate(made / "c.h5")
    assert json.loads(c.attrs["fidelity"])["status"] == "computed" and len(c.extra["recon_psnr"]) == 8
    assert json.loads(c.attrs["geometry"])["compared_hw"] == [28, 28]
    r = invoke("verify", made / "c.h5", "--model", made / "m.pt", "--train", "mnist", "--latents", made / "e.h5",
               "--train-latents", made / "l.h5")
    assert r.exit_code == 0 and "training latents" in r.output, r.output
    c.extra["recon_psnr"] = c.extra["recon_psnr"] + 0.25
    write_certificate(tmp_path / "t.h5", c)
    assert invoke("verify", tmp_path / "t.h5").exit_code == 0           # a consistent hash: only recomputing tells
    r = invoke("verify", tmp_path / "t.h5", "--model", made / "m.pt", "--train", "mnist")
    assert r.exit_code == 1 and "DIFFERS dataset recon_psnr: 8 of 8 rows differ" in r.output, r.output
    z = read_latents(made / "l.h5").latents.copy()
    z[0] *= -1
    write_latents(tmp_path / "l2.h5", z, {})
    r = invoke("verify", made / "c.h5", "--model", made / "m.pt", "--train", "mnist",
               "--train-latents", tmp_path / "l2.h5")
    assert r.exit_code == 1 and "DIFFERS dataset train_latents" in r.output and "recon_psnr" in r.output, r.output


def test_verify_bad_file(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    r = invoke("verify", tmp_path / "x.h5")
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1
