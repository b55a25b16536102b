"""The merge's deduplication of listed near-copies (packed byte keys, sorted once) equals the
obviously-correct dict + lexsort reference, for ±1 latents and for general int8 values."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fscert.nearcopy import TrainResult
import pytest

from fscert.nearcopy_union import dedupe, latents_of_keys, overlap, token_keys
from tests.reference.dedupe_reference import dedupe_reference, overlap_reference


def _result(index, lat, rng):
    n = 0 if lat is None else len(lat)
    return TrainResult(index=index, listed=True, count_low=[n], count_high=[n], mass_low=[0.0],
                       mass_high=[0.0], best_psnr=0.0, best_exact=True, best_latent=None, best_raw_prob=0.0,
                       latents=lat, raw_prob=None if lat is None else rng.random(n),
                       psnr=None if lat is None else rng.random(n) * 40)


def _per(seed, shape, n_train, pool, signs):
    rng = np.random.default_rng(seed)
    vals = np.array([-1, 1], np.int8) if signs else np.array([-128, -3, -1, 0, 1, 2, 127], np.int8)
    base = rng.choice(vals, size=(pool, *shape))          # a small pool: training images share near-copies
    per = []
    for t in range(n_train):
        k = int(rng.integers(0, pool + 1))
        lat = base[rng.choice(pool, size=k, replace=False)] if k else None
        per.append(_result(t, lat, rng))
    for r in per:                                          # a shared latent has one probability, whoever lists it
        if r.latents is not None:
            r.raw_prob = np.array([hash(x.tobytes()) % 1000 / 1000 for x in r.latents])
    return per


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from([(1, 1, 1), (2, 3, 2), (7, 2, 2), (3, 1, 5)]), st.integers(0, 6),
       st.integers(1, 30), st.booleans())
def test_dedupe_equals_reference(seed, shape, n_train, pool, signs):
    per = _per(seed, shape, n_train, pool, signs)
    got, ref = dedupe(per, shape), dedupe_reference(per, shape)
    for a, b in zip(got, ref):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b)


def test_keys_round_trip_and_order():
    rng = np.random.default_rng(1)
    for packed, vals in ((True, [-1, 1]), (False, [-128, -1, 0, 1, 127])):
        lat = rng.choice(np.array(vals, np.int8), size=(500, 7, 8, 8))
        keys = token_keys(lat, packed)
        assert np.array_equal(latents_of_keys(keys, (7, 8, 8), packed, rows=64), lat)
        seq = lat.transpose(0, 2, 3, 1).reshape(len(lat), -1)
        by_key = sorted(range(len(lat)), key=lambda i: keys[i].tobytes())
        by_seq = sorted(range(len(lat)), key=lambda i: tuple(seq[i]))
        assert by_key == by_seq


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 300), st.integers(1, 12))
def test_overlap_equals_full_psnr_matrix(seed, n_gen, n_train):
    """The matrix-product pre-selection keeps every pair within γ: the same counts as the full
    exact PSNR matrix, and the same masses (to float64 summation order)."""
    rng = np.random.default_rng(seed)
    train = rng.random((n_train, 1, 8, 8)).astype(np.float32)
    # generated rows: noisy copies of training rows at many distances, so pairs straddle each γ
    src = rng.integers(0, max(n_train, 1), n_gen)
    base = train[src] if n_train else rng.random((n_gen, 1, 8, 8)).astype(np.float32)
    noise = rng.standard_normal(base.shape).astype(np.float32) * rng.choice([0.0, 0.01, 0.03, 0.06, 0.2], (n_gen, 1, 1, 1))
    gen = np.clip(base + noise, 0, 1).reshape(n_gen, -1).astype(np.float32)
    prob = rng.random(n_gen)
    gammas = (20.0, 25.0, 30.0)
    got = overlap(gen, train, prob, gammas, block=37)
    ref = overlap_reference(gen, train, prob, gammas)
    assert [[n for n, _ in row] for row in got] == [[n for n, _ in row] for row in ref]
    for row_g, row_r in zip(got, ref):
        for (_, m_g), (_, m_r) in zip(row_g, row_r):
            assert m_g == pytest.approx(m_r, rel=1e-12, abs=1e-300)
