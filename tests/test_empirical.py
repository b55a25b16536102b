"""`fscert draw` / `fscert finetune` and fscert.empirical (DESIGN §6.1–6.2)."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from fscert.empirical import DrawConfig, draw_samples, finetune_targets
from fscert.errors import FscertError
from fscert.latents import LatentSet, read_latents, write_latents
from fscert_cli.main import COMMANDS
from fscert_cli.common import FscertGroup


def group() -> FscertGroup:
    g = FscertGroup("fscert-test")
    for c in COMMANDS:
        g.add_command(c)
    return g


def source(n=6, shape=(2, 4, 4), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([-1, 1], np.int8), size=(n,) + shape)


def test_draw_counts_sources_and_determinism():
    z = source()
    cfg = DrawConfig(trials=5, tau=1.5, kappa=2.0, seed=3)
    a = draw_samples(z, cfg)
    b = draw_samples(z, cfg)
    assert a.latents.tobytes() == b.latents.tobytes() and (a.counts == b.counts).all()
    assert int(a.counts.sum()) == 6 * 5
    assert (np.diff(a.source_index) >= 0).all()                       # sorted by source
    for s in range(6):                                                  # rows are distinct per source
        rows = a.latents[a.source_index == s].reshape(-1, 32)
        assert len(np.unique(rows, axis=0)) == len(rows)
        assert a.counts[a.source_index == s].sum() == 5
    c = draw_samples(z, DrawConfig(trials=5, tau=1.5, kappa=2.0, seed=4))
    assert c.latents.tobytes() != a.latents.tobytes()


def test_draw_flip_rate_matches_q():
    z = source(n=200, shape=(2, 8, 8), seed=1)
    cfg = DrawConfig(trials=4, tau=2.0, kappa=1.0, seed=0)
    e = draw_samples(z, cfg)
    flips = ((e.latents != z[e.source_index]).reshape(len(e.latents), -1).sum(1) * e.counts).sum()
    rate = flips / (e.counts.sum() * 128)
    assert abs(rate - cfg.flip_prob) < 0.01                             # q = ½(1 − ½)^1 = 0.25


def test_draw_without_noise_copies_each_source_once():
    z = source()
    e = draw_samples(z, DrawConfig(trials=7, tau=1.0, kappa=2.0))       # τ ≤ 1: q = 0
    assert (e.counts == 7).all() and (e.latents == z).all() and (e.source_index == np.arange(6)).all()


def test_draw_respects_input_counts_and_source_index():
    z = source(n=3)
    ls = LatentSet(z, counts=np.array([1, 2, 1]), source_index=np.array([10, 11, 12]))
    e = draw_samples(ls, DrawConfig(trials=2, tau=1.0, kappa=2.0))
    assert list(e.source_index) == [10, 11, 12] and list(e.counts) == [2, 4, 2]


def test_draw_bad_config():
    with pytest.raises(FscertError):
        draw_samples(source(), DrawConfig(trials=0))
    with pytest.raises(FscertError):
        draw_samples(source(), DrawConfig(kappa=-1.0))
    with pytest.raises(FscertError, match="±1"):
        draw_samples(source() * 0, DrawConfig())


def test_finetune_targets_errors():
    imgs = np.zeros((4, 1, 32, 32), np.float32)
    with pytest.raises(FscertError, match="source_index"):
        finetune_targets(None, imgs)
    with pytest.raises(FscertError, match="training image 9"):
        finetune_targets(np.array([0, 9]), imgs)
    assert finetune_targets(np.array([3, 0]), imgs).shape == (2, 1, 32, 32)


def test_draw_cli(tmp_path):
    write_latents(tmp_path / "l.h5", source(), {"data": "mnist", "limit": 6})
    r = CliRunner().invoke(group(), ["draw", "--latents", str(tmp_path / "l.h5"), "--trials", "3", "--tau", "1.3",
                                     "--seed", "1", "--out", str(tmp_path / "e.h5")])
    assert r.exit_code == 0, r.output
    e = read_latents(tmp_path / "e.h5")
    assert e.counts.sum() == 18 and e.source_index is not None and e.attrs["trials"] == 3
    assert e.attrs["limit"] == 6 and e.attrs["kind"] == "empirical"
    # refuses to overwrite; bad input gives one line and no output
    r = CliRunner().invoke(group(), ["draw", "--latents", str(tmp_path / "l.h5"), "--out", str(tmp_path / "e.h5")])
    assert r.exit_code != 0 and "already exists" in r.output
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 10)
    r = CliRunner().invoke(group(), ["draw", "--latents", str(tmp_path / "bad.h5"), "--out", str(tmp_path / "x.h5")])
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1 and not (tmp_path / "x.h5").exists()


def test_finetune_cli(tmp_path):
    import torch

    from fscert.autoencoder import AEConfig, LocalAutoencoder, load_model, save_model

    torch.manual_seed(0)
    save_model(LocalAutoencoder(AEConfig(latent_channels=1, hidden=8)), tmp_path / "m.pt")
    z = source(n=8, shape=(1, 8, 8))
    write_latents(tmp_path / "l.h5", z, {"limit": 8})
    g = group()
    r = CliRunner().invoke(g, ["draw", "--latents", str(tmp_path / "l.h5"), "--trials", "2", "--out", str(tmp_path / "e.h5")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(g, ["finetune", str(tmp_path / "m.pt"), str(tmp_path / "e.h5"), "--data", "mnist",
                               "--epochs", "1", "--out", str(tmp_path / "ft.pt")])
    assert r.exit_code == 0, r.output
    ft = load_model(tmp_path / "ft.pt")
    assert ft.extra["finetune_epochs"] == 1
    # an empirical set without source_index cannot be matched to its targets
    write_latents(tmp_path / "nosrc.h5", z)
    r = CliRunner().invoke(g, ["finetune", str(tmp_path / "m.pt"), str(tmp_path / "nosrc.h5"), "--data", "mnist",
                               "--limit", "8", "--out", str(tmp_path / "ft2.pt")])
    assert r.exit_code != 0 and "source_index" in r.output and not (tmp_path / "ft2.pt").exists()
