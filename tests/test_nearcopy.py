"""The near-copy search (fscert.search, fscert.search_paths, fscert.nearcopy) against brute force.

Where full listing is possible, every figure must equal list → decode → compare
(tests/reference/nearcopy_bruteforce.py) exactly: the near-copy sets per training image and
γ, their probabilities, the union count and mass, the nearest training image and PSNR of
every near-copy, and the best reachable PSNR per training image. Where the sets are too
large to list, the certified intervals must contain the truth (small cases: the brute-force
value; larger ones: a Monte-Carlo estimate from the empirical sampler).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fscert.autoencoder import AEConfig, LocalAutoencoder
from fscert.blocks import decode_exact, generated_values
from fscert.enumeration import build_tables, count_reachable, empirical_sampler, enumerate_reachable
from fscert.geometry import Geometry, Targets
from fscert.nearcopy import NearCopyConfig, near_copy_search
from fscert.search import make_layout, search
from fscert.search_paths import count_binned, list_paths, tokens_to_latents
from tests.reference.nearcopy_bruteforce import brute_force

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(m: int, ls: int, r: int, transition: bool, seed: int) -> LocalAutoencoder:
    torch.manual_seed(seed)
    model = LocalAutoencoder(AEConfig(latent_size=ls, latent_channels=m, receptive_field=r, hidden=16,
                                      transition=transition)).eval()
    with torch.no_grad():                                   # spread the untrained outputs over [0, 1]
        model.decoder.cell[-1].bias.fill_(0.5)
        model.decoder.cell[-1].weight.mul_(3)
    return model


def _case(m: int, ls: int, rho: int, seed: int, flips: float = 0.01, max_count: int = 4000):
    """Three related source latents (shared background, two local edits) and bit-flipped trials."""
    rng = np.random.default_rng(seed)
    for _ in range(50):
        base = np.repeat(np.where(rng.random((1, m, ls, ls)) < 0.5, -1, 1).astype(np.int8), 3, 0)
        base[1, :, 2:4, 2:4] *= -1
        base[2, :, 5:7, 1:3] *= -1
        z = np.concatenate([base] + [np.where(rng.random(base.shape) < flips, -base, base) for _ in range(2)])
        cnt = rng.integers(1, 3, len(z))
        c = count_reachable(z, rho, cnt)
        if 1 < c.count <= max_count:
            return base, z, cnt, c
        if c.count > max_count:
            flips *= 0.7                                          # fewer flips, fewer stitchings
    pytest.skip("no listable case drawn")


def _check_against_brute_force(z, cnt, rho, model, train, gammas, max_listed=100_000, region=None):
    """``region`` = (top, left, h, w): the search compares in that geometry, the brute force
    crops every image to it first."""
    c = count_reachable(z, rho, cnt)
    targets = train if region is None else Targets(train, Geometry(region[2:], train.shape[2:], region[:2], "native"))
    res = near_copy_search(z, cnt, rho, model, targets, NearCopyConfig(gammas=gammas, max_listed=max_listed),
                           c.dead_end_mass)
    bf = brute_force(z, cnt, rho, model, train, gammas, region=region)
    lst = bf["listing"]
    for j, g in enumerate(gammas):
        ref = bf["per_gamma"][g]
        for t, r in enumerate(res.per_train):
            assert r.listed
            mine = {r.latents[k].tobytes(): r.raw_prob[k] / (1 - c.dead_end_mass)
                    for k in range(len(r.latents)) if r.psnr[k] >= g}
            assert set(mine) == set(ref["per_t"][t]), (g, t)
            assert all(mine[k] == ref["per_t"][t][k] for k in mine)              # same float64 products
            assert r.count_low[j] == r.count_high[j] == len(mine)
        u = res.union[str(int(g))]
        assert u["exact"] and int(u["count_low"]) == ref["union_count"]
        assert u["mass_low"] == pytest.approx(ref["union_mass"], rel=1e-12, abs=1e-15)
        # the stored near-copies are exactly the listing's flagged rows, in the listing's order
        rows = ref["union_rows"]
        want = lst.latents[rows]
        got = res.latents[res.flags[:, j]]
        assert np.array_equal(got, want)
        assert np.array_equal(res.prob[res.flags[:, j]], lst.prob[rows])
        nn = bf["psnr"][rows]
        assert np.array_equal(res.psnr[res.flags[:, j]], nn.max(1))
        assert np.array_equal(res.nearest_train[res.flags[:, j]], nn.argmax(1))
    for t, r in enumerate(res.per_train):
        best = bf["best"][t]
        if r.best_exact:
            assert r.best_psnr == best
            assert r.best_latent is not None
        else:
            assert best < r.best_psnr                          # the bound holds
    return res, bf


CASES = [  # (M, latent size, R, transition, ρ)
    (2, 8, 1, False, 1), (2, 8, 1, False, 3), (3, 8, 3, False, 1), (2, 8, 3, False, 2),
    (3, 8, 3, False, 3), (1, 8, 3, False, 4), (2, 16, 3, True, 1), (3, 16, 3, True, 3),
    (2, 16, 1, False, 2), (3, 8, 3, False, 2),
]


@pytest.mark.parametrize("m,ls,r,transition,rho", CASES)
def test_random_cases_equal_brute_force(m, ls, r, transition, rho):
    model = _model(m, ls, r, transition, seed=m + ls + r + rho)
    base, z, cnt, _ = _case(m, ls, rho, seed=10 * rho + m)
    rng = np.random.default_rng(rho)
    train = generated_values(decode_exact(model, base))
    train = np.clip(train + rng.normal(0, 0.02, train.shape), 0, 1).astype(np.float32)
    res, bf = _check_against_brute_force(z, cnt, rho, model, train, (25.0, 30.0, 33.0))
    assert res.flags[:, 0].sum() > 0                           # the case has near-copies to find


NATIVE_CASES = [  # (M, latent size, R, transition, ρ, region (top, left, h, w))
    (2, 8, 3, False, 2, (2, 2, 28, 28)), (3, 8, 3, False, 1, (2, 2, 28, 28)), (2, 16, 3, True, 1, (2, 2, 28, 28)),
    (2, 8, 1, False, 3, (2, 2, 28, 28)), (2, 8, 3, False, 3, (9, 5, 16, 22)),   # blocks wholly outside too
]


@pytest.mark.parametrize("m,ls,r,transition,rho,region", NATIVE_CASES)
def test_native_geometry_equals_brute_force(m, ls, r, transition, rho, region):
    """Compared at the stored size (a region of the canvas): the search equals crop-then-compare
    brute force, and the region changes the figures (the border is really left out)."""
    model = _model(m, ls, r, transition, seed=m + ls + r + rho + 7)
    base, z, cnt, _ = _case(m, ls, rho, seed=10 * rho + m + 1)
    rng = np.random.default_rng(rho + 1)
    train = generated_values(decode_exact(model, base))
    train = np.clip(train + rng.normal(0, 0.02, train.shape), 0, 1).astype(np.float32)
    top, left, h, w = region
    train[:, :, :top] = train[:, :, top + h:] = 0.0          # the border of a padded image
    train[:, :, :, :left] = train[:, :, :, left + w:] = 0.0
    res, bf = _check_against_brute_force(z, cnt, rho, model, train, (25.0, 30.0, 33.0), region=region)
    assert res.flags[:, 0].sum() > 0
    assert res.searcher.dim == h * w                          # one channel: D = h·w values
    whole = brute_force(z, cnt, rho, model, train, (25.0,))
    assert not np.array_equal(whole["psnr"], bf["psnr"])


def test_no_near_copy_best_is_exact_or_bounded():
    """Training images unlike every output: no near-copies; the best PSNR is still exact (ladder)
    or a bound that holds."""
    model = _model(2, 8, 3, False, seed=3)
    base, z, cnt, _ = _case(2, 8, 2, seed=5)
    rng = np.random.default_rng(0)
    train = rng.random((2, 1, 32, 32)).astype(np.float32)
    res, bf = _check_against_brute_force(z, cnt, 2, model, train, (25.0, 30.0))
    assert len(res.latents) == 0
    assert all(u["exact"] and u["count_low"] == "0" for u in res.union.values())


def real_mnist_case(n: int, epochs: int, finetune_epochs: int):
    """n MNIST images at their stored 28×28 (a 7×7 latent, M = 2), a model trained on them, and
    T = 3 draws of their latents: (images, model, E)."""
    from fscert.data import load_images
    from fscert.empirical import DrawConfig, draw_samples
    from fscert.latents import LatentSet
    from fscert.training import TrainConfig, train as train_model

    x = load_images("mnist", limit=n)
    cfg = AEConfig.for_images(x.shape[1:], base=AEConfig(latent_channels=2, hidden=32))
    model, _ = train_model(x, cfg, TrainConfig(epochs=epochs, finetune_epochs=finetune_epochs, batch_size=n, seed=0),
                           progress=False)
    model.eval()
    zt = model.encode(torch.from_numpy(x)).numpy()
    return x, model, draw_samples(LatentSet(zt), DrawConfig(trials=3, tau=1.02, kappa=0.5, seed=0))


def test_real_latents_equal_brute_force():
    """A model trained on real MNIST images, their encoded latents, drawn trials, ρ = 1…4."""
    x, model, E = real_mnist_case(6, 40, 5)
    checked = 0
    for rho in (1, 2, 3, 4):
        if count_reachable(E.latents, rho, E.counts).count > 20_000:
            continue
        res, _ = _check_against_brute_force(E.latents, E.counts, rho, model, x, (12.0, 15.0))
        checked += 1
    assert checked >= 3


def _search_and_brute_force(rho: int, model_seed: int, case_seed: int, gammas, **cfg):
    """A near-copy search with options ``cfg`` and the brute-force truth, on one _case."""
    model = _model(2, 8, 3, False, seed=model_seed)
    base, z, cnt, c = _case(2, 8, rho, seed=case_seed, flips=0.02)
    train = generated_values(decode_exact(model, base))
    res = near_copy_search(z, cnt, rho, model, train, NearCopyConfig(gammas=gammas, **cfg), c.dead_end_mass)
    return res, brute_force(z, cnt, rho, model, train, gammas), c


def test_intervals_contain_the_truth_when_not_listed():
    """max_listed = 2 forces the binned intervals: they must contain the brute-force values."""
    gammas = (22.0, 30.0)
    res, bf, c = _search_and_brute_force(2, 7, 11, gammas, max_listed=2)
    norm = 1 - c.dead_end_mass
    saw_interval = False
    for j, g in enumerate(gammas):
        for t, r in enumerate(res.per_train):
            truth = bf["per_gamma"][g]["per_t"][t]
            n, mass = len(truth), sum(truth.values())
            if r.listed:
                assert r.count_low[j] == n
                continue
            saw_interval = True
            assert r.count_low[j] <= n <= r.count_high[j]
            assert r.mass_low[j] / norm <= mass * (1 + 1e-12) and mass <= r.mass_high[j] / norm * (1 + 1e-12)
        u = res.union[str(int(g))]
        assert int(u["count_low"]) <= bf["per_gamma"][g]["union_count"] <= int(u["count_high"])
        assert u["mass_low"] <= bf["per_gamma"][g]["union_mass"] * (1 + 1e-12) <= u["mass_high"] * (1 + 2e-12)
    assert saw_interval


def test_binned_count_is_exact_for_integer_costs():
    """Costs on the bin grid: the floor and ceil passes agree, and equal the listed paths."""
    rng = np.random.default_rng(4)
    z = np.where(rng.random((6, 2, 4, 4)) < 0.5, -1, 1).astype(np.int8)
    z = np.concatenate([z, np.where(rng.random(z.shape) < 0.1, -z, z)])
    tables = build_tables(z, 1)
    lay = make_layout(tables, 0)
    cost = lambda i, parent, pair, child: (pair % 3).astype(float)            # noqa: E731
    budget = 8.0
    g = search(tables, lay, cost, budget)
    listed = list_paths(g, max_out=10 ** 6)
    bc = count_binned(g, budget, tables.n_limbs, bins=8)
    assert bc.count_low <= len(listed.cost) <= bc.count_high
    # brute force over the full listing
    full = enumerate_reachable(z, 1, max_images=None)
    g_all = search(tables, lay, cost, math.inf)
    every = list_paths(g_all, max_out=10 ** 6)
    assert np.array_equal(tokens_to_latents(every.tok, tables.shape), full.latents)
    assert len(listed.cost) == int((every.cost <= budget).sum())
    assert bc.count_low == bc.count_high == len(listed.cost)


def test_interval_contains_a_monte_carlo_estimate():
    """Too many near-copies to list: the certified mass interval contains the frequency of
    near-copies among outputs of the empirical sampler (within its 4-sigma band)."""
    model = _model(3, 8, 3, False, seed=2)
    base, z, cnt, c = _case(3, 8, 1, seed=21, flips=0.05, max_count=10 ** 15)
    train = generated_values(decode_exact(model, base[:1]))
    gamma = 20.0
    res = near_copy_search(z, cnt, 1, model, train, NearCopyConfig(gammas=(gamma,), max_listed=5), c.dead_end_mass)
    assert not res.per_train[0].listed                         # the interval path is what is tested
    u = res.union["20"]
    assert not u["exact"] and u["mass_high"] - u["mass_low"] < 0.01
    n = 20_000
    samples = empirical_sampler(z, 1, cnt)(n, seed=0)
    imgs = generated_values(decode_exact(model, samples, batch=2048)).reshape(n, -1)
    sq = ((imgs.astype(np.float64) - train.reshape(1, -1).astype(np.float64)) ** 2).sum(1)
    est = float((10 * np.log10(imgs.shape[1] / np.maximum(sq, 1e-300)) >= gamma).mean())
    band = 4 * math.sqrt(max(est * (1 - est), 1e-4) / n)
    assert u["mass_low"] - band <= est <= u["mass_high"] + band


def _small_random(rng: np.random.Generator, max_m: int, max_rho: int, flip: float) -> tuple[np.ndarray, int]:
    """Random ±1 latents on a grid of 3–5 × 3–5 cells: 3 prototypes, each repeated 3 times with
    bits flipped at rate ``flip``. Returns (latents int8 (9, m, h, w), ρ ≤ ``max_rho``)."""
    m, h, w = int(rng.integers(1, max_m + 1)), int(rng.integers(3, 6)), int(rng.integers(3, 6))
    rho = int(rng.integers(0, max_rho + 1))
    base = np.where(rng.random((3, m, h, w)) < 0.5, -1, 1).astype(np.int8)
    return np.concatenate([np.where(rng.random(base.shape) < flip, -base, base) for _ in range(3)]), rho


def test_survival_weights_sum_to_the_surviving_mass():
    """Σ over the states after any cell of forward mass × survival = 1 − dead_end_mass (the
    identity that makes a dropped state's weight the mass of the complete paths through it)."""
    from fscert.survival import Survival

    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(12):
        z, rho = _small_random(rng, 2, 2, 0.2)
        c = count_reachable(z, rho)
        if c.count > 200_000:
            continue
        tables = build_tables(z, rho)
        surv = Survival(tables)
        lay = make_layout(tables, 1)
        g = search(tables, lay, lambda i, p, pa, cc: np.zeros(len(p)), math.inf, keep_states=True)
        mass = np.ones(1)
        for i, layer in enumerate(g.layers):
            parent = np.repeat(np.arange(len(layer.row_ptr) - 1), np.diff(layer.row_ptr))
            mass = np.bincount(layer.child, weights=mass[parent] * layer.cond, minlength=layer.n_child)
            total = float((mass * surv.of(i, g.states[i + 1], lay)).sum())
            assert total == pytest.approx(1 - c.dead_end_mass, rel=1e-9, abs=1e-12)
        checked += 1
    assert checked >= 6


@pytest.mark.parametrize("chunk_edges", [1, 7, 10**6])
def test_survival_table_equals_the_whole_graph_reference(chunk_edges, tmp_path):
    """The bounded-memory table (chunks of a few edges, layers on disk) holds exactly the states
    and the S of the reference built from the whole in-memory graph, on random latents at ρ 0–3;
    its files are removed by close()."""
    from fscert.survival import Survival
    from tests.reference.survival_graph import survival_by_graph

    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(10):
        z, rho = _small_random(rng, 3, 3, 0.25)
        if count_reachable(z, rho).count > 100_000:
            continue
        tables = build_tables(z, rho)
        ref_states, ref_s = survival_by_graph(tables)
        surv = Survival(tables, chunk_edges=chunk_edges, workdir=tmp_path)
        for k in range(len(ref_states)):
            st, s = surv.layer(k)
            order = np.lexsort(ref_states[k].T[::-1])
            np.testing.assert_array_equal(st, ref_states[k][order])
            np.testing.assert_allclose(s, ref_s[k][order], rtol=1e-12, atol=1e-300)
        assert any(tmp_path.iterdir())
        surv.close()
        assert not any(tmp_path.iterdir())
        checked += 1
    assert checked >= 5


def test_survival_refuses_a_layer_above_the_memory_limit():
    """Above ``max_memory`` the table raises one clear error (the search then bounds by 1)."""
    from fscert.survival import Survival, SurvivalTooLarge

    rng = np.random.default_rng(3)
    z = np.where(rng.random((12, 2, 5, 5)) < 0.5, -1, 1).astype(np.int8)
    with pytest.raises(SurvivalTooLarge, match="survival table's layer after cell"):
        Survival(build_tables(z, 1), max_memory=1)


def test_capped_search_intervals_contain_the_truth():
    """A state cap far below the layer sizes: every figure becomes an interval that contains the
    brute-force value; the near-copies it lists are real ones."""
    gammas = (22.0, 28.0)
    res, bf, c = _search_and_brute_force(1, 4, 3, gammas, max_states=3)
    assert any(r.dropped_mass > 0 for r in res.per_train)
    norm = 1 - c.dead_end_mass
    for j, g in enumerate(gammas):
        for t, r in enumerate(res.per_train):
            truth = bf["per_gamma"][g]["per_t"][t]
            assert r.count_low[j] <= len(truth) and (r.count_high[j] < 0 or len(truth) <= r.count_high[j])
            assert r.mass_low[j] / norm <= sum(truth.values()) * (1 + 1e-12) <= r.mass_high[j] / norm * (1 + 2e-12)
            if r.latents is not None:
                assert {k.tobytes() for k, p in zip(r.latents, r.psnr) if p >= g} <= set(truth)
            if r.best_kind == "at least":
                assert r.best_psnr <= bf["best"][t]
        u = res.union[str(int(g))]
        assert u["mass_low"] <= bf["per_gamma"][g]["union_mass"] * (1 + 1e-12) <= u["mass_high"] * (1 + 2e-12)


@pytest.mark.parametrize("m,ls,r,transition", [(3, 8, 3, False), (2, 16, 3, True), (2, 8, 1, False), (7, 8, 3, False)])
def test_stitched_decode_equals_whole_latent_decode(m, ls, r, transition):
    """The certificate's stitched decode (each window decoded once) gives the float64 whole-latent images."""
    from fscert.blocks import decode_canonical

    model = _model(m, ls, r, transition, seed=1)
    rng = np.random.default_rng(m + ls)
    z = np.where(rng.random((300, m, ls, ls)) < 0.5, -1, 1).astype(np.int8)
    z[100:] = np.where(rng.random(z[100:].shape) < 0.05, -1, 1) * z[:100].repeat(2, 0)   # shared windows
    assert np.array_equal(decode_canonical(model, z), decode_exact(model, z))


def test_disjoint_groups_separate_images_farther_than_twice_the_radius():
    """Images in different groups are more than 2√B apart, so no output can be within B of both."""
    from fscert.nearcopy_union import disjoint_groups

    rng = np.random.default_rng(5)
    x = rng.random((40, 1, 4, 4)).astype(np.float32)
    x[20:] = np.clip(x[:20] + rng.normal(0, 0.05, x[:20].shape), 0, 1)            # close pairs
    for b, groups in zip((0.05, 0.5, 5.0), disjoint_groups(x, [0.05, 0.5, 5.0])):
        d = ((x.reshape(40, 1, -1).astype(np.float64) - x.reshape(1, 40, -1)) ** 2).sum(-1)
        apart = groups[:, None] != groups[None, :]
        assert (d[apart] > 4 * b).all()
    assert len(set(disjoint_groups(x, [1e-6])[0])) == 40 and len(set(disjoint_groups(x, [100.0])[0])) == 1
