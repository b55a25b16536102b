"""`fscert enumerate` and fscert.enumerate: certificates, metrics, full support, bad input."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from fscert.fit import Fit
from fscert.certificate import attr_json, content_hash, latents_sha256, read_certificate
from fscert.enumerate import EnumerateConfig, Inputs, certify
from fscert.errors import FscertError
from fscert.latents import LatentSet, write_latents
from fscert_cli.main import COMMANDS
from fscert_cli.common import FscertGroup

N_TRAIN = 12


def group() -> FscertGroup:
    g = FscertGroup("fscert-test")
    for c in COMMANDS:
        g.add_command(c)
    return g


def invoke(*args):
    return CliRunner().invoke(group(), [str(a) for a in args])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny untrained 1×8×8 model, 12 MNIST images, their 'latents' and a drawn E."""
    import torch

    from fscert.autoencoder import AEConfig, LocalAutoencoder, save_model

    d = tmp_path_factory.mktemp("cert")
    torch.manual_seed(0)
    save_model(LocalAutoencoder(AEConfig(latent_channels=1, hidden=8)), d / "m.pt")
    torch.manual_seed(1)
    save_model(LocalAutoencoder(AEConfig(latent_channels=1, hidden=8)), d / "other.pt")
    rng = np.random.default_rng(0)
    base = rng.choice(np.array([-1, 1], np.int8), size=(3, 1, 8, 8))
    z = base[rng.integers(0, 3, N_TRAIN)]
    write_latents(d / "l.h5", z, {"data": "mnist", "limit": N_TRAIN})
    r = invoke("draw", "--latents", d / "l.h5", "--trials", 2, "--tau", 1.02, "--seed", 0, "--out", d / "e.h5")
    assert r.exit_code == 0, r.output
    return d


def test_latent_only_certificate(setup, tmp_path):
    r = invoke("enumerate", "--latents", setup / "e.h5", "--rho", 2, "--out", tmp_path / "c.h5")
    assert r.exit_code == 0, r.output
    c = read_certificate(tmp_path / "c.h5")
    assert c.attrs["mode"] == "empirical" and c.reachable_count == len(c.latents) == c.attrs["listed_count"]
    assert c.prob.sum() == pytest.approx(1.0) and c.images is None and c.attrs["model_sha256"] == ""
    assert c.attrs["content_sha256"] == content_hash(c)
    assert np.allclose(np.exp(c.log_prob), c.prob)
    assert c.attrs["tau"] == pytest.approx(1.02)                          # recorded by draw
    for key in ("format", "format_version", "fscert_version", "count_only", "dead_end_mass", "rho", "kappa",
                "anchoring", "latents_sha256", "train_sha256", "gammas", "config"):
        assert key in c.attrs, key


def test_count_only(setup, tmp_path):
    full = invoke("enumerate", "--latents", setup / "e.h5", "--rho", 2, "--out", tmp_path / "a.h5")
    r = invoke("enumerate", "--latents", setup / "e.h5", "--rho", 2, "--count-only", "--out", tmp_path / "b.h5")
    assert full.exit_code == 0 and r.exit_code == 0, r.output
    a, b = read_certificate(tmp_path / "a.h5"), read_certificate(tmp_path / "b.h5")
    assert len(b.latents) == 0 and len(b.prob) == 0 and b.attrs["count_only"]
    assert b.attrs["reachable_count"] == a.attrs["reachable_count"] and b.attrs["dead_end_mass"] == a.attrs["dead_end_mass"]


def test_max_images_guard(setup, tmp_path):
    r = invoke("enumerate", "--latents", setup / "e.h5", "--rho", 2, "--max-images", 1, "--out", tmp_path / "c.h5")
    assert r.exit_code != 0 and "--count-only" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "c.h5").exists()


def test_with_model_metrics_and_determinism(setup, tmp_path):
    args = ["enumerate", "--latents", setup / "e.h5", "--rho", 2, "--model", setup / "m.pt", "--train", "mnist",
            "--gamma", 10, "--gamma", 30]
    r1 = invoke(*args, "--out", tmp_path / "c1.h5", "--graph", tmp_path / "g.graphml")
    r2 = invoke(*args, "--out", tmp_path / "c2.h5")
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    c1, c2 = read_certificate(tmp_path / "c1.h5"), read_certificate(tmp_path / "c2.h5")
    for name, arr in c1.datasets().items():
        assert arr.tobytes() == c2.datasets()[name].tobytes(), name
    assert c1.attrs["content_sha256"] == c2.attrs["content_sha256"]
    k = len(c1.latents)
    assert c1.images.shape == (k, 1, 32, 32) and c1.flags.shape == (k, 2) and c1.m_uir.shape == (k, 2)
    assert (c1.nearest_train < N_TRAIN).all() and c1.gammas == [10.0, 30.0]
    assert (c1.flags == (c1.psnr[:, None] >= np.array([10.0, 30.0]))).all()
    assert not (c1.m_uir & c1.flags).any()                           # members pass UIR
    mass = attr_json(c1, "memorization_mass")
    uw = attr_json(c1, "uir_weighted")
    for j, g in enumerate(("10", "30")):
        assert mass[g] == pytest.approx(c1.prob[c1.flags[:, j]].sum())
        assert mass[g] + uw[g] == pytest.approx(1.0)
        assert attr_json(c1, "uir")[g] == pytest.approx(1 - c1.flags[:, j].mean())
        assert attr_json(c1, "m_uir")[g] == pytest.approx(c1.m_uir[:, j].mean())
        assert attr_json(c1, "m_uir_weighted")[g] == pytest.approx(c1.prob[c1.m_uir[:, j]].sum())
    from fscert.autoencoder import load_model
    from fscert.data import data_sha256, load_images
    from fscert.hashing import sha256_state_dict
    from fscert.latents import read_latents

    assert c1.attrs["model_sha256"] == sha256_state_dict(load_model(setup / "m.pt").state_dict())
    assert c1.attrs["train_sha256"] == data_sha256(load_images("mnist", limit=N_TRAIN, fit=Fit(pad=True)))
    E = read_latents(setup / "e.h5")
    assert c1.attrs["latents_sha256"] == latents_sha256(E.latents, E.counts)
    assert json.loads(c1.attrs["config"])["train_limit"] == N_TRAIN
    import networkx as nx

    g = nx.read_graphml(tmp_path / "g.graphml")
    assert g.number_of_nodes() > 0 and g.graph["reachable_count"] == c1.attrs["reachable_count"]


def test_full_support(tmp_path):
    rng = np.random.default_rng(0)
    src = rng.choice(np.array([-1, 1], np.int8), size=(4, 1, 3, 3))
    write_latents(tmp_path / "s.h5", src)
    r = invoke("enumerate", "--latents", tmp_path / "s.h5", "--rho", 1, "--full-support", "--tau", 1.5,
               "--kappa", 2, "--out", tmp_path / "c.h5")
    assert r.exit_code == 0, r.output
    c = read_certificate(tmp_path / "c.h5")
    assert c.attrs["mode"] == "full-support" and len(c.latents) == 512 == c.attrs["listed_count"]
    assert len(np.unique(c.latents.reshape(512, -1), axis=0)) == 512
    assert c.prob.sum() == pytest.approx(1.0) and c.attrs["dead_end_mass"] == 0.0
    # the probabilities are the direct sampler's (Eq. 6): compare with fscert.sampling.log_prob
    from fscert.noise import flip_probability
    from fscert.sampling import build_bank, log_prob

    lp = log_prob(build_bank(src, 1), c.latents, flip_probability(1.5, 2.0))
    np.testing.assert_allclose(np.exp(lp), c.prob, rtol=1e-9)
    # needs τ and κ; refuses above 24 bits
    r = invoke("enumerate", "--latents", tmp_path / "s.h5", "--full-support", "--out", tmp_path / "d.h5")
    assert r.exit_code != 0 and "--tau" in r.output
    write_latents(tmp_path / "big.h5", rng.choice(np.array([-1, 1], np.int8), size=(2, 1, 5, 5)))
    r = invoke("enumerate", "--latents", tmp_path / "big.h5", "--full-support", "--tau", 1.5, "--kappa", 2,
               "--out", tmp_path / "d.h5")
    assert r.exit_code != 0 and "25 bits" in r.output and not (tmp_path / "d.h5").exists()


def _one_line_failure(r, out):
    assert r.exit_code != 0, r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert not out.exists()


def test_bad_inputs(setup, tmp_path):
    out = tmp_path / "c.h5"
    with h5py.File(tmp_path / "notpm1.h5", "w") as f:
        f["latents"] = np.zeros((2, 1, 8, 8), np.int8)
    _one_line_failure(invoke("enumerate", "--latents", tmp_path / "notpm1.h5", "--out", out), out)
    with h5py.File(tmp_path / "counts.h5", "w") as f:
        f["latents"] = np.ones((2, 1, 8, 8), np.int8)
        f["counts"] = np.array([1, 0])
    _one_line_failure(invoke("enumerate", "--latents", tmp_path / "counts.h5", "--out", out), out)
    data = (setup / "e.h5").read_bytes()
    (tmp_path / "trunc.h5").write_bytes(data[: len(data) // 2])
    _one_line_failure(invoke("enumerate", "--latents", tmp_path / "trunc.h5", "--out", out), out)
    _one_line_failure(invoke("enumerate", "--latents", setup / "e.h5", "--rho", -1, "--out", out), out)
    # latents of the wrong shape for the model
    write_latents(tmp_path / "m2.h5", np.ones((2, 2, 8, 8), np.int8))
    _one_line_failure(invoke("enumerate", "--latents", tmp_path / "m2.h5", "--model", setup / "m.pt", "--out", out), out)
    # training images of the wrong shape for the model (RGB vs. grayscale)
    np.save(tmp_path / "rgb.npy", np.zeros((4, 32, 32, 3), np.uint8))
    _one_line_failure(invoke("enumerate", "--latents", setup / "e.h5", "--model", setup / "m.pt",
                             "--train", tmp_path / "rgb.npy", "--limit", 4, "--out", out), out)
    _one_line_failure(invoke("enumerate", "--latents", setup / "e.h5", "--train", "mnist", "--out", out), out)


def test_certify_library_errors():
    E = LatentSet(np.ones((2, 1, 3, 3), np.int8))
    with pytest.raises(FscertError):
        certify(Inputs(E), EnumerateConfig(rho=-2))
    with pytest.raises(FscertError):
        certify(Inputs(E), EnumerateConfig(max_images=0))
    cert = certify(Inputs(E), EnumerateConfig(rho=1))
    assert cert.reachable_count == 1 and cert.prob.tolist() == [1.0]


def test_memory_guard_refuses_before_listing(tmp_path):
    """The estimate is checked after counting and before listing: no certificate is written."""
    from fscert.enumerate import EnumerateConfig, list_latents, plan_listing
    from fscert.errors import FscertError
    from fscert.latents import LatentSet

    z = np.where(np.random.default_rng(3).random((6, 1, 4, 4)) > 0.5, 1, -1).astype(np.int8)
    E = LatentSet(z)
    full = list_latents(E, EnumerateConfig(rho=1))
    need = plan_listing(len(full.latents), (1, 4, 4)).bytes
    assert need == len(full.latents) * (2 * 16 + 16)
    assert need >= full.latents.nbytes + full.prob.nbytes + full.log_prob.nbytes
    with pytest.raises(FscertError, match="max-memory"):
        list_latents(E, EnumerateConfig(rho=1, max_memory=need - 1))
    assert len(list_latents(E, EnumerateConfig(rho=1, max_memory=need)).latents) == len(full.latents)


def test_interrupted_enumeration_resumes_to_an_identical_certificate(setup, tmp_path, monkeypatch):
    """Kill decoding midway, then `enumerate --resume`: same certificate as an uninterrupted run."""
    import fscert.blocks

    args = ["enumerate", "--latents", setup / "e.h5", "--rho", 2, "--model", setup / "m.pt", "--train", "mnist",
            "--limit", N_TRAIN, "--batch", 1]               # checkpoint every 4 rows
    assert invoke(*args, "--out", tmp_path / "full.h5").exit_code == 0
    full = read_certificate(tmp_path / "full.h5")
    assert len(full.latents) > 4                       # at least two decode chunks

    real, calls = fscert.blocks.decode_canonical, []

    def dying(model, z, batch=256, progress=False):
        calls.append(len(z))
        if len(calls) == 2:
            raise KeyboardInterrupt                   # Ctrl-C during the second chunk
        return real(model, z, batch=batch, progress=progress)

    monkeypatch.setattr(fscert.blocks, "decode_canonical", dying)
    r = invoke(*args, "--out", tmp_path / "c.h5")
    assert r.exit_code != 0 and not (tmp_path / "c.h5").exists()
    assert (tmp_path / "c.h5.partial.h5").exists()
    monkeypatch.setattr(fscert.blocks, "decode_canonical", lambda *a, **k: calls.append(-1) or real(*a, **k))
    r = invoke(*args, "--out", tmp_path / "c.h5", "--resume")
    assert r.exit_code == 0, r.output
    resumed = read_certificate(tmp_path / "c.h5")
    assert resumed.attrs["content_sha256"] == full.attrs["content_sha256"]
    for name, arr in full.datasets().items():
        assert arr.tobytes() == resumed.datasets()[name].tobytes(), name
    assert calls.count(-1) == -(-(len(full.latents) - 4) // 4)     # only the missing chunks were decoded again
    assert not (tmp_path / "c.h5.partial.h5").exists()


def test_enumerate_records_geometry_and_fidelity(setup, tmp_path):
    """With --train the images are compared at their stored 28×28; with --train-latents the
    decoder's fidelity and the reconstructions' near-copies are recorded (else: unknown, null)."""
    base = ["enumerate", "--latents", setup / "e.h5", "--rho", 2, "--model", setup / "m.pt", "--train", "mnist"]
    r = invoke(*base, "--train-latents", setup / "l.h5", "--out", tmp_path / "c.h5")
    assert r.exit_code == 0, r.output
    c = read_certificate(tmp_path / "c.h5")
    geo = attr_json(c, "geometry")
    assert (geo["compared_hw"], geo["canvas_hw"], geo["offset"], geo["how"]) == ([28, 28], [32, 32], [2, 2], "native")
    f = attr_json(c, "fidelity")
    assert f["status"] == "computed" and f["n"] == N_TRAIN and len(c.extra["recon_psnr"]) == N_TRAIN
    assert c.extra["recon_flags"].shape == c.flags.shape
    assert set(attr_json(c, "recon_near_copies")) == {"25", "30"}
    r = invoke(*base, "--out", tmp_path / "u.h5")
    assert r.exit_code == 0, r.output
    u = read_certificate(tmp_path / "u.h5")
    assert attr_json(u, "fidelity")["status"] == "unknown" and attr_json(u, "fidelity")["psnr_median"] is None
    assert attr_json(u, "recon_near_copies") == {"25": None, "30": None} and "recon_psnr" not in u.extra
    r = invoke(*base, "--train-latents", setup / "l.h5", "--near-copies-only", "--no-recon-search",
               "--out", tmp_path / "s.h5")
    assert r.exit_code == 0, r.output
    s = read_certificate(tmp_path / "s.h5")
    assert attr_json(s, "recon_near_copies") == {"25": None, "30": None}
    assert "turned off" in attr_json(s, "recon_verdict")["words"] and attr_json(s, "fidelity")["status"] == "computed"


def test_enumerate_train_latents_bad_input(setup, tmp_path):
    out = tmp_path / "c.h5"
    _one_line_failure(invoke("enumerate", "--latents", setup / "e.h5", "--train-latents", setup / "l.h5",
                             "--out", out), out)
    rng = np.random.default_rng(9)
    write_latents(tmp_path / "other.h5", rng.choice(np.array([-1, 1], np.int8), size=(N_TRAIN, 1, 8, 8)))
    _one_line_failure(invoke("enumerate", "--latents", setup / "e.h5", "--model", setup / "m.pt", "--train", "mnist",
                             "--train-latents", tmp_path / "other.h5", "--out", out), out)
