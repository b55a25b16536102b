"""Direct sampler (fscert.sampling, its patch bank, the full-support enumeration) against a
brute-force evaluation of Eq. 8 / Eq. 21."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fscert import sampling as S
from fscert.enumeration import full_support, full_support_index_to_latents
from fscert.errors import FscertError
from fscert.patch_bank import build_bank
from fscert.patches import contexts, padding_classes, token_to_index, tokens


# ----------------------------------------------------------------------------- brute force (Eq. 8)
def brute_conditional(src, rho, q, cell, z_prefix, counts=None, translation_invariant=False):
    """Eq. 8 written plainly: for every token value k and every patch n, the term
    q^η (1−q)^(λ−η) with η = ham(k, c_n) + ham(g_n, z°), λ = M + |z°|; then normalise over k."""
    n, m, h, w = src.shape
    counts = np.ones(n) if counts is None else np.asarray(counts, float)
    ctx_src = contexts(src, rho)                  # (N, L, D), padding 0
    tok_src = tokens(src)                         # (N, L, M)
    z = np.array(z_prefix, dtype=np.int8).copy()
    z.reshape(m, -1)[:, cell:] = 1                # cells from `cell` on are not part of z°
    z_ctx = contexts(z[None], rho)[0, cell]       # (D,)
    size = int((z_ctx != 0).sum())                # |z°|: padding excluded
    if translation_invariant:
        cls = padding_classes(h, w, rho)
        cells = np.flatnonzero(cls == cls[cell])
    else:
        cells = [cell]
    lam = m + size
    unnorm = np.zeros(2 ** m)
    for k in range(2 ** m):
        kbits = np.array([1 if (k >> (m - 1 - b)) & 1 else -1 for b in range(m)])
        total = 0.0
        for s in range(n):
            for c in cells:
                eta = int((kbits != tok_src[s, c]).sum()) + int((ctx_src[s, c] != z_ctx).sum())
                total += counts[s] * q ** eta * (1 - q) ** (lam - eta)
        unnorm[k] = total
    return unnorm / unnorm.sum()


def brute_joint(src, rho, q, counts=None):
    """Chain rule (Eq. 6) over every latent of a tiny grid, in full-support order."""
    n, m, h, w = src.shape
    L = h * w
    lat = full_support_index_to_latents(np.arange(2 ** (m * L)), m, h, w)
    prob = np.ones(len(lat))
    cache = {}
    for j, z in enumerate(lat):
        t = token_to_index(z.reshape(m, L).T)
        for i in range(L):
            key = (i, tuple(t[:i]))
            if key not in cache:
                cache[key] = brute_conditional(src, rho, q, i, z, counts)
            prob[j] *= cache[key][t[i]]
    return lat, prob


def chi2_sf(x: float, dof: int) -> float:
    """P(χ²_dof ≥ x) = Q(dof/2, x/2), the regularized upper incomplete gamma (series / continued fraction)."""
    a, x = dof / 2.0, x / 2.0
    if x <= 0:
        return 1.0
    gln = math.lgamma(a)
    if x < a + 1:                                  # series for P, then 1 − P
        term = s = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1
            term *= x / ap
            s += term
            if abs(term) < abs(s) * 1e-15:
                break
        return 1.0 - s * math.exp(-x + a * math.log(x) - gln)
    b = x + 1 - a                                  # Lentz continued fraction for Q
    c, d = 1e300, 1 / b
    f = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        f *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - gln) * f


def test_chi2_sf_known_values():
    assert chi2_sf(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-9)
    assert chi2_sf(18.307038053275146, 10) == pytest.approx(0.05, rel=1e-9)
    assert chi2_sf(2.0, 2) == pytest.approx(math.exp(-1), rel=1e-12)


def latent_ids(x):
    """Full-support row index of each latent (raster-order tokens as base-2^M digits)."""
    n, m, h, w = x.shape
    t = token_to_index(x.reshape(n, m, h * w).transpose(0, 2, 1))
    j = np.zeros(n, np.int64)
    for i in range(h * w):
        j = (j << m) | t[:, i]
    return j


def rand_latents(rng, n, m, h, w):
    return rng.choice(np.array([-1, 1], np.int8), size=(n, m, h, w))


# ----------------------------------------------------------------------------- exact conditionals
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(1, 6), m=st.integers(1, 3), h=st.integers(1, 4),
       w=st.integers(1, 4), rho=st.integers(0, 3), q=st.sampled_from([0.5, 0.3, 0.1, 0.02, 1e-3]),
       ti=st.booleans(), weighted=st.booleans())
def test_conditional_matches_brute_force(seed, n, m, h, w, rho, q, ti, weighted):
    rng = np.random.default_rng(seed)
    src = rand_latents(rng, n, m, h, w)
    counts = rng.integers(1, 4, n) if weighted else None
    z = rand_latents(rng, 1, m, h, w)[0]
    cell = int(rng.integers(0, h * w))
    got = S.conditional_probs(src, rho, q, cell, z, counts=counts, translation_invariant=ti)
    want = brute_conditional(src, rho, q, cell, z, counts, translation_invariant=ti)
    assert got.shape == (2 ** m,)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_duplicate_sources_equal_counts():
    rng = np.random.default_rng(3)
    src = rand_latents(rng, 4, 2, 3, 3)
    dup = np.concatenate([src, src[:1], src[:1]])
    z = rand_latents(rng, 1, 2, 3, 3)[0]
    for cell in range(9):
        a = S.conditional_probs(dup, 1, 0.2, cell, z)
        b = S.conditional_probs(src, 1, 0.2, cell, z, counts=[3, 1, 1, 1])
        np.testing.assert_allclose(a, b, rtol=1e-12)
    bank = build_bank(dup, 1)
    assert bank.n_patterns() <= 4 * 9


def test_cell0_is_multiplicity_weighted_mixture():
    src = np.array([[[[1]], [[1]]], [[[-1]], [[1]]]], np.int8)     # two 2×1×1 latents
    p = S.conditional_probs(src, 1, 0.0, 0, src[0], counts=[3, 1])
    np.testing.assert_allclose(p, [0, 0.25, 0, 0.75])            # tokens (-,+) = 1, (+,+) = 3
    p = S.conditional_probs(src, 1, 0.5, 0, src[0])
    np.testing.assert_allclose(p, np.full(4, 0.25))


def test_q0_is_the_limit_nearest_patches():
    """q = 0: uniform over the minimum-Hamming candidates, centres copied (the q → 0 limit)."""
    rng = np.random.default_rng(5)
    src = rand_latents(rng, 6, 2, 3, 3)
    for t in range(10):
        z = rand_latents(rng, 1, 2, 3, 3)[0]
        cell = int(rng.integers(1, 9))
        p0 = S.conditional_probs(src, 1, 0.0, cell, z)
        p_small = S.conditional_probs(src, 1, 1e-9, cell, z)
        np.testing.assert_allclose(p0, p_small, atol=1e-6)
        bank = build_bank(src, 1)
        _, centre, _ = bank.pool(cell)
        assert set(np.flatnonzero(p0 > 0)) <= set(centre.tolist())


def test_q0_exact_match_is_copied():
    src = np.array([[[[1, -1, 1], [-1, 1, -1], [1, 1, 1]]]], np.int8)
    x = S.sample(src, 20, rho=1, q=0.0, seed=0)
    assert (x == src[0]).all()


# ----------------------------------------------------------------------------- full support, sampling
def test_full_support_matches_brute_chain_rule():
    rng = np.random.default_rng(11)
    src = rand_latents(rng, 4, 1, 3, 3)
    counts = np.array([1, 2, 1, 3])
    lat, prob = full_support(src, 1, 0.15, counts=counts)
    blat, bprob = brute_joint(src, 1, 0.15, counts)
    assert lat.shape == (512, 1, 3, 3) and lat.dtype == np.int8
    np.testing.assert_array_equal(lat, blat)
    assert prob.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(prob, bprob, rtol=1e-9, atol=1e-15)
    assert len(np.unique(latent_ids(lat))) == 512


@pytest.mark.parametrize("shape,rho,q,ti", [((2, 2, 2), 1, 0.2, False), ((1, 2, 3), 2, 0.05, True),
                                            ((3, 1, 2), 0, 0.3, False), ((1, 4, 4), 1, 0.0, False)])
def test_full_support_sums_to_one_and_matches_log_prob(shape, rho, q, ti):
    rng = np.random.default_rng(2)
    src = rand_latents(rng, 5, *shape)
    lat, prob = full_support(src, rho, q, translation_invariant=ti)
    assert prob.sum() == pytest.approx(1.0, abs=1e-12)
    bank = build_bank(src, rho, translation_invariant=ti)
    sub = rng.choice(len(lat), 64, replace=False)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(np.exp(S.log_prob(bank, lat[sub], q)), prob[sub], rtol=1e-9, atol=1e-300)


def test_full_support_too_large():
    src = np.ones((1, 7, 2, 2), np.int8)
    with pytest.raises(FscertError, match="24 bits"):
        full_support(src, 1, 0.1)


def test_sampler_chi_square_against_brute_force():
    """N samples of a 1×3×3 grid against the exact probabilities of all 512 latents (Eq. 6, 8)."""
    rng = np.random.default_rng(7)
    src = rand_latents(rng, 5, 1, 3, 3)
    _, prob = brute_joint(src, 1, 0.1)
    n = 100_000
    x = S.sample(src, n, rho=1, q=0.1, seed=123)
    obs = np.bincount(latent_ids(x), minlength=512).astype(float)
    exp = prob * n
    big = exp >= 5                                    # pool the rare latents into one bin
    o = np.append(obs[big], obs[~big].sum())
    e = np.append(exp[big], exp[~big].sum())
    stat = float(((o - e) ** 2 / e).sum())
    p_value = chi2_sf(stat, len(o) - 1)
    assert p_value > 1e-3, (stat, len(o), p_value)
    assert 0.5 * np.abs(obs / n - prob).sum() < 0.03


def test_sampler_matches_full_support_translation_invariant():
    rng = np.random.default_rng(8)
    src = rand_latents(rng, 3, 2, 2, 2)
    lat, prob = full_support(src, 1, 0.2, translation_invariant=True, counts=[2, 1, 1])
    x = S.sample(src, 60_000, rho=1, q=0.2, seed=9, translation_invariant=True, counts=[2, 1, 1])
    freq = np.bincount(latent_ids(x), minlength=len(prob)) / len(x)
    assert 0.5 * np.abs(freq - prob).sum() < 0.03


def test_full_context_equals_large_rho():
    rng = np.random.default_rng(4)
    src = rand_latents(rng, 4, 1, 2, 3)
    _, p_full = full_support(src, 0, 0.1, full_context=True)
    _, p_big = full_support(src, 9, 0.1)
    np.testing.assert_allclose(p_full, p_big, rtol=1e-12)
    z = rand_latents(rng, 1, 1, 2, 3)[0]
    np.testing.assert_allclose(S.conditional_probs(src, 0, 0.1, 5, z, full_context=True),
                               brute_conditional(src, 2, 0.1, 5, z), rtol=1e-9)


def test_same_seed_same_samples():
    rng = np.random.default_rng(1)
    src = rand_latents(rng, 20, 3, 6, 6)
    a = S.sample(src, 50, rho=1, q=0.1, seed=42)
    b = S.sample(src, 50, rho=1, q=0.1, seed=42)
    c = S.sample(src, 50, rho=1, q=0.1, seed=43)
    assert a.dtype == np.int8 and a.shape == (50, 3, 6, 6)
    assert set(np.unique(a)) <= {-1, 1}
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_bad_inputs():
    src = np.ones((2, 1, 3, 3), np.int8)
    with pytest.raises(FscertError):
        S.sample(src, 3, rho=-1, q=0.1)
    with pytest.raises(FscertError):
        S.sample(src, 3, rho=1, q=1.5)
    with pytest.raises(FscertError):
        S.sample(src * 0, 3, rho=1, q=0.1)
    with pytest.raises(FscertError):
        build_bank(src, 1, translation_invariant=True, full_context=True)


def test_parallel_kernel_matches_serial():
    rng = np.random.default_rng(6)
    bank_words = S.pack_bits(rand_latents(rng, 300, 1, 1, 40).reshape(300, 40))
    gen = S.pack_bits(rand_latents(rng, 50, 1, 1, 40).reshape(50, 40))
    mult = rng.integers(1, 4, 300).astype(float)
    table, low = S.distance_table(0.2, 64)
    u = rng.random(50)
    a, b = np.empty(50, np.int64), np.empty(50, np.int64)
    S._draw_patches(gen, bank_words, mult, table, low, u, a)
    S._draw_patches_parallel(gen, bank_words, mult, table, low, u, b)
    np.testing.assert_array_equal(a, b)
    ctx = S.pack_bits(rand_latents(rng, 20, 1, 1, 40).reshape(20, 40))
    centre = rng.integers(0, 4, 300)
    ca, cb = np.zeros((20, 4)), np.zeros((20, 4))
    S._centre_weights(ctx, bank_words, centre, mult, table, low, ca)
    S._centre_weights_parallel(ctx, bank_words, centre, mult, table, low, cb)
    np.testing.assert_allclose(ca, cb, rtol=1e-12)
