"""fscert.enumeration.empirical_sampler: Fig. 15 (trials curve) and Fig. 19 (coverage) as library
functions."""
from __future__ import annotations

import numpy as np

from fscert.empirical import DrawConfig, draw_samples
from fscert.enumeration import coverage_curve, empirical_sampler, enumerate_reachable, trials_curve


def train_latents(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([-1, 1], np.int8), size=(n, 1, 4, 4))


def fake_decoder(z, trials):
    """'Images': each latent cell becomes a 2×2 block of 0 or 255."""
    return np.repeat(np.repeat(((z > 0) * 255).astype(np.uint8), 2, 2), 2, 3)


def test_trials_curve_monotone_with_copies():
    z = train_latents()
    rows = trials_curve(z, 2, 1.1, 2.0, trials=range(1, 5), decoder=fake_decoder)
    reach = [r["reachable"] for r in rows]
    assert reach == sorted(reach) and reach[-1] > reach[0]                 # E(T) ⊂ E(T+1)
    for r in rows:
        assert r["listed"] == r["reachable"] == r["training_copies"] + r["new"] == r["empirical_copies"] + r["stitched"]
        assert r["empirical_copies"] == r["empirical_rows"]          # every sample of E is reachable
        assert r["unique"] == r["new"]            # the fake decoder is injective: new latents are new images
        assert r["distinct_images"] == r["listed"]


def test_trials_curve_without_noise_memorizes():
    z = train_latents()
    rows = trials_curve(z, 3, 1.0, 2.0, trials=[1, 3])    # q = 0, Pre = all earlier cells: memorization
    for r in rows:
        assert r["reachable"] == r["training_copies"] == 16 and r["new"] == 0


def test_trials_curve_unique_by_psnr():
    z = train_latents()
    train = fake_decoder(z, 1).astype(np.float32) / 255.0
    rows = trials_curve(z, 2, 1.1, 2.0, trials=[2], decoder=fake_decoder, train_images=train, gamma=30.0)
    assert rows[0]["unique"] == rows[0]["new"]


def test_coverage_curve_and_sampler():
    z = train_latents()
    E = draw_samples(z, DrawConfig(trials=3, tau=1.1, kappa=2.0, seed=0))
    lst = enumerate_reachable(E.latents, 2, E.counts)
    sampler = empirical_sampler(E.latents, 2, E.counts)
    rows = coverage_curve(lst.latents, lst.prob, sampler, n_draws=(64, 640, 6400), seed=1)
    assert [r["n_draws"] for r in rows] == [64, 640, 6400]
    assert all(r["outside"] == 0 for r in rows)                           # the sampler never leaves the listing
    d = [r["distinct"] for r in rows]
    assert d == sorted(d) and rows[-1]["mass"] > 0.99
    # the sampler's frequencies follow the certificate's probabilities (chi-square, fixed seed)
    draws = sampler(20000, 7)
    keys = {x.tobytes(): k for k, x in enumerate(lst.latents)}
    freq = np.bincount([keys[x.tobytes()] for x in draws], minlength=lst.count)
    expected = lst.prob * len(draws)
    chi2 = ((freq - expected) ** 2 / expected).sum()
    dof = lst.count - 1
    assert chi2 < dof + 5 * np.sqrt(2 * dof)
