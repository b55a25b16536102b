"""The training objective as the paper and DESIGN §3 define it, checked inside the real loops of
fscert.training.train on a tiny model and a few real MNIST images.

Phase 1 (Eq. 2): loss = ‖d(z̃) − x‖² + β(t)·‖z̃‖², z̃ = tanh(e(x)) + τ(t)·ε, ε ~ Tri(κ) (Eq. 3),
β(t) linear from β₀ to 0 over phase 1, τ(t) ramped from 0 to τ over the first ``tau_warmup``
of phase 1 (fscert's addition; 0 gives the paper's fixed τ). Phase 2 (Eq. 4): the encoder is
frozen and the decoder learns to decode sign(z̃) ∈ {±1}.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fscert.training
from fscert.fit import Fit
from fscert.autoencoder import AEConfig, LocalAutoencoder
from fscert.data import load_images
from fscert.training import TrainConfig, beta_schedule, tau_schedule, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MCFG = AEConfig(latent_channels=1, latent_size=8, hidden=16)


@pytest.fixture(scope="module")
def x_NCHW():
    return load_images("mnist", limit=16, fit=Fit(pad=True))


class Recorder:
    """Every decoder call of a training run: the phase it belongs to, its input and output, the
    encoder output tanh(e(x)) it was made from, and the batch indices of the loops."""

    def __init__(self, monkeypatch):
        self.calls: list[dict] = []
        self.batches: list[torch.Tensor] = []
        rec = self

        class Recording(LocalAutoencoder):
            def encode_continuous(self, x):
                self._zc = super().encode_continuous(x)
                return self._zc

            def decode_raw(self, z):
                out = super().decode_raw(z)
                frozen = not any(p.requires_grad for p in self.encoder.parameters())
                phase = 0 if not self.decoder.training else (2 if frozen else 1)     # 0: evaluation
                rec.calls.append({"phase": phase, "z": z.detach().clone(), "out": out.detach().clone(),
                                  "zc": self._zc.detach().clone() if phase == 1 else None})
                return out

        real = fscert.training._batches

        def batches(n, size, gen):
            out = real(n, size, gen)
            rec.batches.extend(out)
            return out

        monkeypatch.setattr(fscert.training, "LocalAutoencoder", Recording)
        monkeypatch.setattr(fscert.training, "_batches", batches)

    def training_calls(self, phase: int) -> list[dict]:
        return [c for c in self.calls if c["phase"] == phase]


# ----------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("step,total,want", [(0, 100, 1e-3), (25, 100, 7.5e-4), (50, 100, 5e-4), (99, 100, 1e-5),
                                             (100, 100, 0.0), (130, 100, 0.0)])
def test_beta_anneals_linearly_from_beta0_to_zero(step, total, want):
    """β(t) = β₀·(1 − t/T), monotone from β₀ to 0 at the end of phase 1 (Eq. 2, DESIGN §3)."""
    assert beta_schedule(1e-3, step, total) == pytest.approx(want, abs=1e-15)


@pytest.mark.parametrize("step,warmup,want", [(0, 0.2, 0.0), (10, 0.2, 0.75), (20, 0.2, 1.5), (70, 0.2, 1.5),
                                              (0, 0.0, 1.5), (55, 0.0, 1.5), (50, 1.0, 0.75)])
def test_tau_ramps_over_the_warmup_then_stays(step, warmup, want):
    """τ(t) = τ·min(1, t / (warmup·T)); warm-up 0 is the paper's fixed τ (Eq. 2)."""
    assert tau_schedule(1.5, step, 100, warmup) == pytest.approx(want, abs=1e-15)


def test_train_uses_the_schedules_at_every_epoch(x_NCHW):
    """The β and τ each phase-1 epoch records (those of its last step) follow the formulas:
    16 images in batches of 8 give 2 steps per epoch, T = 5·2 steps; epoch e ends at step 2e − 1."""
    cfg = TrainConfig(epochs=5, finetune_epochs=1, batch_size=8, beta0=2e-3, tau=1.2, tau_warmup=0.4)
    _, history = train(x_NCHW, MCFG, cfg, progress=False)
    phase1 = [r for r in history if r["phase"] == 1]
    total = 5 * 2
    for e, row in enumerate(phase1, start=1):
        t = 2 * e - 1
        assert row["beta"] == pytest.approx(2e-3 * (1 - t / total), abs=1e-15)
        assert row["tau"] == pytest.approx(1.2 * min(1.0, t / (0.4 * total)), abs=1e-15)
    assert [r["phase"] for r in history] == [1] * 5 + [2] and history[-1]["beta"] == 0.0


# ----------------------------------------------------------------------------- the two losses


def test_phase_one_loss_is_eq2_and_phase_two_loss_is_eq4(x_NCHW, monkeypatch):
    """Recomputed from what the decoder saw: phase 1 minimises MSE(d(z̃), x) + β(t)·mean(z̃²) on
    continuous z̃; phase 2 minimises MSE(d(z), x) on z ∈ {±1} (one batch per epoch here, so each
    epoch's recorded loss is one step's loss)."""
    rec = Recorder(monkeypatch)
    cfg = TrainConfig(epochs=3, finetune_epochs=2, batch_size=16, beta0=0.05)
    _, history = train(x_NCHW, MCFG, cfg, progress=False)
    x = torch.from_numpy(x_NCHW)
    p1, p2 = rec.training_calls(1), rec.training_calls(2)
    assert len(p1) == 3 and len(p2) == 2 and len(rec.batches) == 5
    for e, (call, idx) in enumerate(zip(p1, rec.batches[:3])):
        want = F.mse_loss(call["out"], x[idx]) + beta_schedule(0.05, e, 3) * call["z"].pow(2).mean()
        assert history[e]["loss"] == pytest.approx(float(want), rel=1e-5)
        assert not set(call["z"].unique().tolist()) <= {-1.0, 1.0}            # continuous z̃
    for e, (call, idx) in enumerate(zip(p2, rec.batches[3:])):
        assert set(call["z"].unique().tolist()) == {-1.0, 1.0}                # ±1 latents (Eq. 4)
        assert history[3 + e]["loss"] == pytest.approx(float(F.mse_loss(call["out"], x[idx])), rel=1e-5)


def test_phase_two_freezes_the_encoder_and_trains_the_decoder(x_NCHW):
    """Same seed, same phase 1: one phase-2 epoch leaves every encoder weight as phase 1 left it
    and changes the decoder's."""
    cfg = dict(epochs=2, batch_size=8)
    after1, _ = train(x_NCHW, MCFG, TrainConfig(**cfg, finetune_epochs=0), progress=False)
    after2, _ = train(x_NCHW, MCFG, TrainConfig(**cfg, finetune_epochs=1), progress=False)
    for (name, p1), p2 in zip(after1.encoder.named_parameters(), after2.encoder.parameters()):
        assert torch.equal(p1, p2), name
    changed = [not torch.equal(p1, p2) for p1, p2 in zip(after1.decoder.parameters(), after2.decoder.parameters())]
    assert all(changed)
    assert all(p.requires_grad for p in after2.parameters())               # unfrozen again after training


def test_the_loss_decreases_over_a_few_epochs(x_NCHW):
    """8 phase-1 and 4 phase-2 epochs of a tiny model on 16 MNIST images: each phase ends lower
    than it starts, and the binarised reconstruction improves."""
    _, history = train(x_NCHW, MCFG, TrainConfig(epochs=8, finetune_epochs=4, batch_size=8, lr=5e-3),
                       progress=False)
    p1 = [r for r in history if r["phase"] == 1]
    p2 = [r for r in history if r["phase"] == 2]
    assert p1[-1]["loss"] < 0.7 * p1[0]["loss"]
    assert p2[-1]["loss"] < p2[0]["loss"]
    assert p2[-1]["mse"] < p1[0]["mse"]


# ----------------------------------------------------------------------------- the noise of phase 1


def _tri_cdf(t: np.ndarray, kappa: float) -> np.ndarray:
    """CDF of Tri(κ) (Eq. 3): ε = sign(u)·(1 − |u|^κ), u ~ U(−1, 1), so P(ε > t) = ½(1 − t)^(1/κ)
    for t ∈ [0, 1) and the law is symmetric."""
    a = 0.5 * (1 - np.abs(t)) ** (1 / kappa)
    return np.where(t >= 0, 1 - a, a)


def _normal_cdf(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.vectorize(math.erf)(t / math.sqrt(2)))


@pytest.mark.parametrize("noise,kappa", [("triangular", 2.0), ("triangular", 0.5), ("gaussian", 2.0)])
def test_phase_one_noise_is_the_defined_law(x_NCHW, monkeypatch, noise, kappa):
    """z̃ − tanh(e(x)) divided by τ, over every latent bit of every phase-1 step, follows Tri(κ)
    (or N(0, 1) for ``--noise gaussian``): Kolmogorov–Smirnov distance to the closed-form CDF
    below the 99.9% critical value; Tri(κ) samples lie in (−1, 1)."""
    rec = Recorder(monkeypatch)
    tau = 0.8
    cfg = TrainConfig(epochs=4, finetune_epochs=1, batch_size=16, tau=tau, kappa=kappa, noise=noise, tau_warmup=0.0)
    train(x_NCHW, MCFG, cfg, progress=False)
    eps = torch.cat([((c["z"] - c["zc"]) / tau).flatten() for c in rec.training_calls(1)]).double().numpy()
    assert len(eps) == 4 * 16 * 64
    cdf = (lambda t: _tri_cdf(t, kappa)) if noise == "triangular" else _normal_cdf
    s = np.sort(eps)
    n = len(s)
    ks = max(np.max(np.arange(1, n + 1) / n - cdf(s)), np.max(cdf(s) - np.arange(n) / n))
    assert ks < 1.95 / math.sqrt(n), ks
    if noise == "triangular":
        assert np.abs(eps).max() < 1 + 1e-6
    else:
        assert np.abs(eps).max() > 1                       # a Gaussian leaves (−1, 1), Tri(κ) never does
