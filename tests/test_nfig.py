"""NFIG peer generator: frequency bands, block-causal attention, residual quantizer, training,
sampling determinism, safe model files and the CLI. Tiny models only (fast on 2 cores)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fscert.fit import Fit
from fscert.errors import FscertError
from fscert.nfig import (NFIGConfig, band_edges, band_masks, block_causal_mask, compose, decompose,
                         load_nfig, sample_nfig, save_nfig, train_nfig)
from fscert.nfig.model import NFIG
from fscert.nfig.quant import FRQuantizer
from fscert.nfig.train import psnr, train_vae

SCALES = (1, 2, 3, 4, 6, 8)


def tiny_config(**kw) -> NFIGConfig:
    base = dict(vae_channels=(8, 16, 16), latent_dim=8, codebook_size=64, width=32, depth=1, heads=2,
                vae_epochs=1, gpt_epochs=1, vae_batch=8, gpt_batch=8, num_classes=3)
    base.update(kw)
    return NFIGConfig(**base)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_images(n: int = 8) -> np.ndarray:
    from fscert.data import load_images

    return load_images("mnist", limit=n, fit=Fit(pad=True))


@pytest.fixture(scope="module")
def tiny_model() -> NFIG:
    x = tiny_images(12)
    model, _ = train_nfig(x, np.arange(12) % 3, tiny_config(), progress=False)
    return model


# -- frequency decomposer / composer (Eq. 1, 2, 7) ------------------------------------------

@pytest.mark.parametrize("H,scales", [(8, SCALES), (8, (2, 4, 8)), (16, (1, 2, 4, 8, 16)), (7, (1, 3, 7))])
def test_band_masks_partition_the_spectrum(H, scales):
    masks = band_masks(H, H, scales)
    assert masks.shape == (len(scales), H, H)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(masks.sum(0), torch.ones(H, H))  # every frequency in exactly one band
    # Hermitian symmetry: M(−u, −v) = M(u, v), so every band component is real
    flipped = torch.roll(torch.flip(masks, dims=(1, 2)), shifts=(1, 1), dims=(1, 2))
    assert torch.equal(masks, flipped)
    assert masks[0, 0, 0] == 1  # DC lies in the first (lowest) band


@pytest.mark.parametrize("H,scales", [(8, SCALES), (16, (1, 2, 4, 8, 16))])
def test_decompose_then_compose_is_identity(H, scales):
    f = torch.randn(3, 5, H, H, generator=torch.Generator().manual_seed(1))
    parts = decompose(f, band_masks(H, H, scales))
    assert len(parts) == len(scales) and all(p.shape == f.shape and p.dtype == f.dtype for p in parts)
    torch.testing.assert_close(compose(parts, H, H), f, atol=1e-5, rtol=1e-5)
    # the bands are orthogonal components of f (Parseval): energies add up
    total = sum(float(p.pow(2).sum()) for p in parts)
    assert total == pytest.approx(float(f.pow(2).sum()), rel=1e-4)


def test_band_edges_follow_eq7():
    edges = band_edges(SCALES, 1.0)
    areas = np.array([s * s for s in SCALES], dtype=float)
    np.testing.assert_allclose(np.diff([0.0] + edges), areas / areas.sum(), rtol=1e-12)
    assert edges[-1] == 1.0


# -- block-causal attention -------------------------------------------------------------------

def brute_force_block_causal(scales):
    owner = []
    for i, s in enumerate(scales):
        owner += [i] * (s * s)
    L = len(owner)
    m = torch.zeros(L, L, dtype=torch.bool)
    for q in range(L):
        for k in range(L):
            m[q, k] = owner[k] <= owner[q]  # full within a scale, causal across scales
    return m


@pytest.mark.parametrize("scales", [SCALES, (1, 2, 4), (2, 3, 5, 8)])
def test_attention_mask_is_block_causal(scales):
    assert torch.equal(block_causal_mask(scales), brute_force_block_causal(scales))


def test_transformer_logits_ignore_later_scales():
    cfg = tiny_config(num_classes=2)
    gpt = NFIG(cfg).gpt.eval()
    allowed = torch.isfinite(gpt.attn_bias_LL)
    assert torch.equal(allowed, brute_force_block_causal(cfg.scales))
    g = torch.Generator().manual_seed(0)
    lab = torch.tensor([0, 1])
    inp = torch.randn(2, gpt.L - 1, cfg.latent_dim, generator=g)
    inp2 = inp.clone()
    b4, e4 = gpt.begin_ends[4]
    inp2[:, b4 - 1:] += torch.randn_like(inp2[:, b4 - 1:])  # change the inputs of scales ≥ 5
    with torch.no_grad():
        out1, out2 = gpt(lab, inp), gpt(lab, inp2)
    torch.testing.assert_close(out1[:, :b4], out2[:, :b4])
    assert not torch.allclose(out1[:, b4:e4], out2[:, b4:e4])


# -- frequency-guided residual quantizer ------------------------------------------------------

@pytest.mark.parametrize("order", ["frequency", "scale"])
def test_quantizer_residual_shrinks_scale_by_scale(order):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    f = F.interpolate(torch.randn(8, 4, 4, 4, generator=g), size=(8, 8), mode="bicubic")
    f = f + 0.3 * torch.randn(8, 4, 8, 8, generator=g)
    q = FRQuantizer(128, 4, SCALES, order)
    opt = torch.optim.Adam(q.parameters(), lr=1e-2)
    q.train()
    for it in range(100):
        _, loss, _ = q(f)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % 20 == 19:
            q.restart_dead_codes(g)
    q.eval()
    r = q.residual_norms(f)
    assert all(b <= a + 2e-3 for a, b in zip(r, r[1:])), r  # never grows (empty bands: plateaus)
    assert r[-1] < 0.3 * r[0], r
    assert sum(b < a - 1e-3 for a, b in zip(r, r[1:])) >= 3, r  # and really shrinks at most steps


def test_quantizer_targets_per_order():
    f = torch.randn(2, 3, 8, 8)
    qf, qs = FRQuantizer(16, 3, SCALES, "frequency"), FRQuantizer(16, 3, SCALES, "scale")
    tf, ts = qf.targets(f), qs.targets(f)
    assert all(t is f for t in ts)
    torch.testing.assert_close(tf[0], f.mean(dim=(2, 3), keepdim=True).expand_as(f), atol=1e-5, rtol=0)
    assert tf[-1] is f
    idx = qf.f_to_idx(f)
    assert [i.shape for i in idx] == [torch.Size([2, s * s]) for s in SCALES]
    assert qf.idx_to_var_input(idx).shape == (2, sum(s * s for s in SCALES) - 1, 3)


# -- training ---------------------------------------------------------------------------------

def test_tiny_model_overfits_a_handful_of_images():
    torch.manual_seed(0)
    x = torch.as_tensor(tiny_images(8))
    model = NFIG(tiny_config(vae_epochs=60, vae_lr=3e-3))
    before = F.mse_loss(model.vae.reconstruct(x), x).item()
    train_vae(model, x, torch.Generator().manual_seed(0))
    after = F.mse_loss(model.vae.reconstruct(x), x).item()
    assert after < 0.1 * before, (before, after)
    assert psnr(model.vae.reconstruct(x), x) > 16.0  # dB, through the quantizer


def test_train_nfig_stats_and_validation(tiny_model):
    st = tiny_model.stats
    for k in ("recon_psnr", "train_seconds", "vae_seconds", "gpt_seconds", "codebook_usage", "gpt_ce_loss"):
        assert k in st and np.isfinite(st[k])
    with pytest.raises(FscertError):
        train_nfig(np.zeros((2, 1, 28, 28), np.float32), None, tiny_config(), progress=False)
    with pytest.raises(FscertError):
        train_nfig(np.full((2, 1, 32, 32), 2.0, np.float32), None, tiny_config(), progress=False)
    with pytest.raises(FscertError):
        train_nfig(tiny_images(4), np.array([0, 1]), tiny_config(), progress=False)
    with pytest.raises(FscertError):
        NFIGConfig(order="raster")


# -- sampling -----------------------------------------------------------------------------------

def test_sampling_is_deterministic_for_a_seed(tiny_model):
    kw = dict(cfg=2.0, top_k=20, top_p=0.9)
    a = sample_nfig(tiny_model, 6, seed=3, **kw)
    b = sample_nfig(tiny_model, 6, seed=3, **kw)
    c = sample_nfig(tiny_model, 6, seed=4, **kw)
    assert a.dtype == np.uint8 and a.shape == (6, 1, 32, 32)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    imgs, labels = sample_nfig(tiny_model, 5, seed=0, classes=2, cfg=0.0, return_labels=True)
    assert imgs.shape == (5, 1, 32, 32) and labels.tolist() == [2] * 5
    _, labels = sample_nfig(tiny_model, 5, seed=0, return_labels=True)
    assert labels.tolist() == [0, 1, 2, 0, 1]


@pytest.mark.parametrize("kw", [dict(classes=3), dict(cfg=-1.0), dict(top_k=-1), dict(top_p=1.5), dict(n=0)])
def test_sampling_rejects_bad_options(tiny_model, kw):
    args = dict(n=2, seed=0)
    args.update(kw)
    n = args.pop("n")
    with pytest.raises(FscertError):
        sample_nfig(tiny_model, n, **args)


# -- model files ------------------------------------------------------------------------------

def test_save_load_round_trip(tiny_model, tmp_path):
    p = tmp_path / "nfig.pt"
    save_nfig(tiny_model, p)
    m2 = load_nfig(p)
    assert m2.cfg == tiny_model.cfg
    sd1, sd2 = tiny_model.state_dict(), m2.state_dict()
    assert sd1.keys() == sd2.keys() and all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    assert m2.stats["recon_psnr"] == pytest.approx(tiny_model.stats["recon_psnr"])
    assert np.array_equal(sample_nfig(tiny_model, 4, seed=7, top_k=10), sample_nfig(m2, 4, seed=7, top_k=10))
    assert [q.name for q in tmp_path.iterdir()] == ["nfig.pt"]  # no temporary files left behind


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))  # unpickling this would create the marker file


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, writer):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.pt"
    payload = {"format": "fscert-nfig", "version": 1, "config": {}, "state_dict": {}, "x": _Evil(marker)}
    if writer == "torch":
        torch.save(payload, p)
    else:
        p.write_bytes(pickle.dumps(payload))
    with pytest.raises(FscertError) as e:
        load_nfig(p)
    assert "\n" not in str(e.value)
    assert not marker.exists()
    # control: the payload is live, an unsafe loader would have run it
    live = tmp_path / "live"
    pickle.loads(pickle.dumps(_Evil(live))).close()
    assert live.exists()


def test_foreign_or_corrupt_files_are_refused(tiny_model, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model at all" * 10)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    good = tmp_path / "good.pt"
    save_nfig(tiny_model, good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for p in (junk, other, cut, tmp_path / "missing.pt"):
        with pytest.raises(FscertError) as e:
            load_nfig(p)
        assert "\n" not in str(e.value)
    bad = torch.load(good, weights_only=True)
    bad["config"]["width"] = 64
    torch.save(bad, other)
    with pytest.raises(FscertError, match="do not match"):
        load_nfig(other)


# -- CLI --------------------------------------------------------------------------------------

def test_cli_train_and_sample(tmp_path):
    from click.testing import CliRunner

    from fscert.data import load_images
    from fscert_cli.nfig import COMMANDS, nfig

    assert COMMANDS == [nfig] and set(nfig.commands) == {"train", "sample"}
    r = CliRunner()
    model = tmp_path / "nfig.pt"
    res = r.invoke(nfig, ["train", "mnist", "--out", str(model), "--epochs", "1", "--limit", "16"])
    assert res.exit_code == 0, res.output
    assert "PSNR" in res.output and model.exists()
    res = r.invoke(nfig, ["train", "mnist", "--out", str(model), "--epochs", "1", "--limit", "16"])
    assert res.exit_code != 0 and "--force" in res.output
    out = tmp_path / "samples.npz"
    args = ["sample", str(model), "-n", "6", "--class", "7", "--cfg", "1.0", "--top-k", "50",
            "--top-p", "0.95", "--seed", "1", "--out", str(out)]
    res = r.invoke(nfig, args)
    assert res.exit_code == 0, res.output
    with np.load(out) as z:
        assert z["images"].dtype == np.uint8 and z["images"].shape == (6, 1, 32, 32)
        assert z["labels"].tolist() == [7] * 6
        first = z["images"].copy()
    assert (tmp_path / "samples.png").exists()
    assert load_images(out).shape == (6, 1, 32, 32)  # what `fscert audit --generated` reads
    res = r.invoke(nfig, args)
    assert res.exit_code != 0 and "--force" in res.output
    res = r.invoke(nfig, args + ["--force"])
    assert res.exit_code == 0, res.output
    with np.load(out) as z:
        assert np.array_equal(z["images"], first)  # same seed, same samples
    res = r.invoke(nfig, ["sample", str(model), "-n", "2", "--class", "10", "--out", str(tmp_path / "x.npz")])
    assert res.exit_code != 0 and "class" in res.output and not (tmp_path / "x.npz").exists()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 64)
    res = r.invoke(nfig, ["sample", str(junk), "--out", str(tmp_path / "y.npz")])
    assert res.exit_code != 0 and "error:" in res.output and "Traceback" not in res.output


def test_scale_order_pipeline_runs():
    m, st = train_nfig(tiny_images(4), None, tiny_config(order="scale"), progress=False)
    assert m.cfg.order == "scale" and m.cfg.num_classes == 1 and np.isfinite(st["recon_psnr"])
    imgs = sample_nfig(m, 3, seed=0, cfg=1.0, top_k=5)
    assert imgs.shape == (3, 1, 32, 32) and imgs.dtype == np.uint8
