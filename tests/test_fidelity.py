"""The decoder's fidelity floor and the near-copies of its reconstructions (issue 12 item 3).

Reconstruction PSNRs against decode → crop → compare written here; the statistics against
numpy; the decidability rule on hand-made PSNRs; the reconstruction flags against brute force
(list every reachable latent, decode, compare with every reconstruction); the searched figures
against the listing; verify against tampered files.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fscert.autoencoder import AEConfig, LocalAutoencoder
from fscert.blocks import decode_exact, generated_values
from fscert.certificate import attr_json, latents_sha256, read_certificate, write_certificate
from fscert.enumerate import EnumerateConfig, Inputs, certify, verify
from fscert.enumeration import enumerate_reachable
from fscert.errors import FscertError
from fscert.fidelity import QUANTILES, RULE, fidelity_record, quantile
from fscert.fit import Fit
from fscert.geometry import load_compared
from fscert.latents import LatentSet
from fscert.metrics import pairwise_psnr

pytestmark = pytest.mark.usefixtures("one_torch_thread")
GAMMAS = (31.0, 35.0)


def _model() -> LocalAutoencoder:
    torch.manual_seed(3)
    model = LocalAutoencoder(AEConfig(latent_channels=2, hidden=16)).eval()
    with torch.no_grad():                                   # spread the untrained outputs over [0, 1]
        model.decoder.cell[-1].bias.fill_(0.5)
        model.decoder.cell[-1].weight.mul_(3)
    return model


@pytest.fixture(scope="module")
def case():
    """6 MNIST images; their 'own' latents (two share one); E drawn from them, recording their hash."""
    rng = np.random.default_rng(1)
    base = np.where(rng.random((5, 2, 8, 8)) < 0.5, -1, 1).astype(np.int8)
    zt = base[[0, 1, 2, 2, 3, 4]]
    trials = [np.where(rng.random(zt.shape) < 0.01, -zt, zt) for _ in range(2)]
    E = LatentSet(np.concatenate([zt] + trials), attrs={"source_latents_sha256": latents_sha256(zt)})
    x, geom = load_compared("mnist", limit=6, fit=Fit(pad=True))     # the padded canvas, compared at 28×28
    return _model(), E, zt, x, geom


@pytest.fixture(scope="module")
def listed(case):
    model, E, zt, x, geom = case
    cert = certify(Inputs(E, model, x, train_latents=zt, geometry=geom), EnumerateConfig(rho=2, gammas=GAMMAS))
    assert cert.attrs["verdict_scope"] == "complete" and len(cert.latents) > 20
    return cert


def test_recon_psnr_is_decode_then_compare(case, listed):
    model, E, zt, x, geom = case
    rec = (decode_exact(model, zt).astype(np.float32) / 255.0)[:, :, 2:30, 2:30].astype(np.float64)
    d = rec - x[:, :, 2:30, 2:30].astype(np.float64)
    want = 10 * np.log10(784 / (d ** 2).reshape(6, -1).sum(1))
    np.testing.assert_allclose(listed.extra["recon_psnr"], want, rtol=1e-12)
    assert listed.extra["recon_psnr"].dtype == np.float64 and np.array_equal(listed.extra["train_latents"], zt)
    f = attr_json(listed, "fidelity")
    p = listed.extra["recon_psnr"]
    assert f["status"] == "computed" and f["n"] == 6 and f["reason"] is None
    assert f["psnr_mean"] == pytest.approx(p.mean(), rel=1e-12)
    assert f["psnr_median"] == pytest.approx(np.median(p), rel=1e-12)
    assert (f["psnr_min"], f["psnr_max"]) == (p.min(), p.max())
    for q in QUANTILES:
        assert f["psnr_quantiles"][str(q)] == pytest.approx(np.quantile(p, q / 100), rel=1e-12)
    for g in GAMMAS:
        k = str(int(g))
        assert f["reach"][k] == (p >= g).mean()
        assert f["decidable"][k] == (np.median(p) >= g)
    assert f["rule"] == RULE and f["latents_sha256"] == listed.attrs["train_latents_sha256"] == latents_sha256(zt)


def test_decidable_rule_and_quantiles():
    f = fidelity_record(np.array([30.0, 20.0, 26.0, 25.0, 24.0]), (25.0, 25.5))
    assert f["psnr_median"] == 25.0 and f["decidable"] == {"25": True, "25.5": False}
    assert f["reach"] == {"25": 0.6, "25.5": 0.4}
    f = fidelity_record(np.array([24.0, 26.0]), (25.0,))                  # even n: the mean of the middle two
    assert f["psnr_median"] == 25.0 and f["decidable"]["25"]
    f = fidelity_record(np.array([20.0, np.inf, np.inf]), (25.0,))       # exact reconstructions: +inf, never NaN
    assert f["psnr_median"] == np.inf and f["psnr_mean"] == np.inf and f["decidable"]["25"]
    assert not any(np.isnan(v) for v in f["psnr_quantiles"].values())
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 64):
        p = np.sort(rng.normal(20, 3, n))
        for q in (0.05, 0.25, 0.5, 0.75, 0.95):
            assert quantile(p, q) == np.quantile(p, q)
    with pytest.raises(FscertError):
        fidelity_record(np.array([]), (25.0,))


def test_recon_flags_equal_brute_force(case, listed):
    """Each listed image's flag per γ: PSNR to its nearest reconstruction ≥ γ, compared on the
    28×28 region; counts and exact masses over every reachable image."""
    model, E, zt, x, geom = case
    lst = enumerate_reachable(E.latents, 2, E.counts, max_images=None)
    assert np.array_equal(lst.latents, listed.latents)
    imgs = generated_values(decode_exact(model, lst.latents))[:, :, 2:30, 2:30].reshape(len(lst.latents), -1)
    rec = generated_values(decode_exact(model, zt))[:, :, 2:30, 2:30].reshape(len(zt), -1)
    best = pairwise_psnr(imgs, rec).max(1)
    flags = best[:, None] >= np.array(GAMMAS)[None, :]
    assert np.array_equal(listed.extra["recon_flags"], flags)
    assert 0 < flags[:, 1].sum() < flags[:, 0].sum() < len(flags)          # the thresholds split the listing
    assert attr_json(listed, "recon_near_copies") == {"31": int(flags[:, 0].sum()), "35": int(flags[:, 1].sum())}
    mass = attr_json(listed, "recon_memorization_mass")
    assert mass == {"31": float(lst.prob[flags[:, 0]].sum()), "35": float(lst.prob[flags[:, 1]].sum())}
    assert attr_json(listed, "recon_verdict")["scope"] == "complete"


def test_searched_recon_equals_the_listing(case, listed):
    """The near-copy search with the reconstructions as targets gives the listing's figures."""
    model, E, zt, x, geom = case
    s = certify(Inputs(E, model, x, train_latents=zt, geometry=geom),
                EnumerateConfig(rho=2, gammas=GAMMAS, near_copies_only=True, top_k=0))
    assert s.attrs["verdict_scope"] == "searched"
    assert attr_json(s, "recon_near_copies") == attr_json(listed, "recon_near_copies")
    for k, v in attr_json(listed, "recon_memorization_mass").items():
        assert attr_json(s, "recon_memorization_mass")[k] == pytest.approx(v, rel=1e-12)
    v = attr_json(s, "recon_verdict")
    assert v["scope"] == "searched" and v["targets"] == 5                  # one search per distinct latent
    assert np.array_equal(s.extra["recon_psnr"], listed.extra["recon_psnr"])
    off = certify(Inputs(E, model, x, train_latents=zt, geometry=geom),
                  EnumerateConfig(rho=2, gammas=GAMMAS, near_copies_only=True, top_k=0, recon_search=False))
    assert attr_json(off, "recon_near_copies") == {"31": None, "35": None}
    assert "turned off" in attr_json(off, "recon_verdict")["words"]


def test_unknown_is_null_never_zero(case):
    model, E, zt, x, geom = case
    for inputs, why in ((Inputs(E, model, x, geometry=geom), "latents were not given"),
                        (Inputs(E), "no decoder")):
        c = certify(inputs, EnumerateConfig(rho=2, gammas=GAMMAS))
        f = attr_json(c, "fidelity")
        assert f["status"] == "unknown" and why in f["reason"]
        assert all(f[k] is None for k in ("n", "psnr_mean", "psnr_median", "psnr_min", "psnr_max"))
        assert set(f["reach"].values()) == set(f["decidable"].values()) == {None}
        assert set(f["psnr_quantiles"].values()) == {None}
        assert attr_json(c, "recon_near_copies") == attr_json(c, "recon_memorization_mass") == {"31": None, "35": None}
        assert "recon_psnr" not in c.extra and "recon_flags" not in c.extra
    c = certify(Inputs(E, model, x, train_latents=zt, geometry=geom), EnumerateConfig(rho=2, gammas=GAMMAS,
                                                                                   count_only=True))
    assert attr_json(c, "fidelity")["status"] == "computed"                # the floor needs no listing
    assert attr_json(c, "recon_near_copies") == {"31": None, "35": None}


def test_training_latents_are_checked(case):
    model, E, zt, x, geom = case
    with pytest.raises(FscertError, match="not the latents E was drawn from"):
        certify(Inputs(E, model, x, train_latents=zt[::-1].copy(), geometry=geom), EnumerateConfig(rho=2))
    F = LatentSet(E.latents)
    with pytest.raises(FscertError, match="5 latents for 6 training images"):
        certify(Inputs(F, model, x, train_latents=zt[:5], geometry=geom), EnumerateConfig(rho=2))
    with pytest.raises(FscertError, match="±1"):
        certify(Inputs(F, model, x, train_latents=np.zeros_like(zt), geometry=geom), EnumerateConfig(rho=2))


def test_certificate_round_trip_and_verify_detects_tampering(case, listed, tmp_path):
    import h5py

    model, E, zt, x, geom = case
    write_certificate(tmp_path / "c.h5", listed)
    c = read_certificate(tmp_path / "c.h5")
    for name in ("recon_psnr", "train_latents", "recon_flags"):
        assert np.array_equal(c.extra[name], listed.extra[name]), name
    for key in ("geometry", "fidelity", "recon_near_copies", "recon_memorization_mass", "recon_verdict"):
        assert attr_json(c, key) == attr_json(listed, key), key
    assert verify(c, E, model, x, train_latents=zt, geometry=geom) == []
    assert verify(c, None, model, x) == []                                  # from the stored training latents
    # a tampered reconstruction PSNR, with the content hash recomputed: only the recomputation sees it
    c2 = read_certificate(tmp_path / "c.h5")
    c2.extra["recon_psnr"] = c2.extra["recon_psnr"].copy()
    c2.extra["recon_psnr"][2] += 0.5
    write_certificate(tmp_path / "t.h5", c2)
    t = read_certificate(tmp_path / "t.h5")
    assert verify(t) == []                                                  # the hash alone cannot tell
    for diffs in (verify(t, None, model, x), verify(t, E, model, x)):
        assert any(d.startswith("dataset recon_psnr: 1 of 6 rows differ") for d in diffs), diffs
    # a tampered fidelity attribute
    with h5py.File(tmp_path / "t.h5", "r+") as f:
        fid = json.loads(f.attrs["fidelity"])
        fid["psnr_median"] = 40.0
        f.attrs["fidelity"] = json.dumps(fid)
    assert any(d.startswith("fidelity:") for d in verify(read_certificate(tmp_path / "t.h5"), None, model, x))
    # other training latents, other geometry
    other = zt.copy()
    other[0] *= -1
    diffs = verify(c, E, model, x, train_latents=other)
    assert any(d.startswith("dataset train_latents") for d in diffs)
    assert any(d.startswith("train_latents: sha256") for d in diffs)
    from fscert.geometry import Geometry

    assert any(d.startswith("geometry:") for d in verify(c, None, model, x, geometry=Geometry.whole((32, 32))))


def test_reading_refuses_mismatched_recon_flags(listed, tmp_path):
    import h5py

    write_certificate(tmp_path / "c.h5", listed)
    with h5py.File(tmp_path / "c.h5", "r+") as f:
        flags = f["recon_flags"][()]
        del f["recon_flags"]
        f["recon_flags"] = flags[:-1]
    with pytest.raises(FscertError, match="recon_flags"):
        read_certificate(tmp_path / "c.h5")


def test_certify_no_recon_search_records_unknown(tmp_path):
    """`fscert certify --no-recon-search` reaches the search: the reconstructions' figures are
    recorded as unknown with the reason, never 0."""
    from fscert.certificate import attr_json, read_certificate
    from fscert.certify import CertifyConfig, run_certify

    job = CertifyConfig(n_train=8, epochs=3, finetune_epochs=1, draw_finetune_epochs=1, hidden=16, trials=2, rho=4,
                     near_copies_only=True, recon_search=False)
    run_certify(job, tmp_path / "run", progress=False)
    cert = read_certificate(tmp_path / "run" / "cert.h5")
    assert "turned off" in attr_json(cert, "recon_verdict")["words"]
    assert all(v is None for v in (attr_json(cert, "recon_memorization_mass") or {"x": None}).values())
