"""The most probable outputs (fscert.probable) against brute force and an independent reference.

Small cases: enumerate_reachable lists every reachable latent with its probability; the top k
must be its k largest (same latents, same order — ties in the listing's order — same float64
probabilities), the covered mass their correctly rounded sum, the ε set exactly {prob ≥ ε}.
Large cases (≥ 10^9 reachable latents, no listing possible): the top k are in decreasing
order, each probability equals the product of conditionals computed by the tiny reference
below straight from E, and draws of the empirical sampler agree (the most frequent draw is
among the top k; no draw is more probable than the k-th and missing from the top k).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from fscert.enumeration import build_tables, count_reachable, empirical_sampler, enumerate_reachable
from fscert.errors import FscertError
from fscert.patches import pre_offsets
from fscert.probable import most_probable
from fscert.probable_unlisted import max_excluding, top_after
from fscert.search import SearchTooLarge, make_layout, search
from fscert.search_paths import list_paths


# ----------------------------------------------------------------------------- reference


def reference_raw_prob(latents: np.ndarray, counts: np.ndarray, rho: int, query: np.ndarray) -> np.ndarray:
    """Product of the empirical conditionals (DESIGN §6.3) of each query latent, in raster order,
    counted straight from E: count(Pre_i = q's Pre_i, z_i = q_i) / count(Pre_i = q's Pre_i).
    0 where a pair never occurs (not reachable). Independent of the tables and the search."""
    z = np.asarray(latents, np.int8)
    q = np.asarray(query, np.int8)
    w = np.asarray(counts, np.int64)
    n, m, h, wd = z.shape
    both = np.concatenate([z, q])
    out = np.ones(len(q))
    for i in range(h * wd):
        y, x = divmod(i, wd)
        pre = [(y + dy, x + dx) for dy, dx in pre_offsets(rho) if 0 <= y + dy < h and 0 <= x + dx < wd]
        ctx = np.stack([both[:, :, yy, xx] for yy, xx in pre] or [np.zeros((len(both), 0), np.int8)], 1)
        ctx = ctx.reshape(len(both), -1)
        pair = np.concatenate([ctx, both[:, :, y, x]], 1)
        counted = []
        for rows in (ctx, pair):                      # weighted occurrences in E of each query's row
            bits = np.concatenate([np.ones((len(rows), 1), bool), rows > 0], 1)     # never zero-width
            packed = np.ascontiguousarray(np.packbits(bits, axis=1))
            _, inv = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).reshape(-1), return_inverse=True)
            inv = inv.reshape(-1)
            tally = np.bincount(inv[:n], weights=w, minlength=inv.max() + 1).astype(np.int64)
            counted.append(tally[inv[n:]])
        c_ctx, c_pair = counted
        cond = np.where(c_ctx > 0, c_pair.astype(np.float64) / np.maximum(c_ctx, 1).astype(np.float64), 0.0)
        out = out * cond
    return out


def _flipped(m: int, h: int, w: int, n_base: int, copies: int, flips: float, rng) -> tuple[np.ndarray, np.ndarray]:
    base = np.where(rng.random((n_base, m, h, w)) < 0.5, -1, 1).astype(np.int8)
    z = np.concatenate([base] + [np.where(rng.random(base.shape) < flips, -base, base) for _ in range(copies)])
    return z, rng.integers(1, 4, len(z))


def _small_case(seed: int, max_count: int = 3000):
    """A random listable empirical set: M 1–3, grids 3×3 to 6×6, ρ 0–3, flipped copies, counts
    ≥ 1 (all 1 when 3 divides the seed: conditionals like 1/2 and 1/3, many exact ties)."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 4))
    h, w = (int(v) for v in rng.integers(3, 7, 2))
    rho = int(rng.integers(0, 4))
    flips = 0.15
    for _ in range(60):
        z, cnt = _flipped(m, h, w, int(rng.integers(1, 4)), int(rng.integers(1, 6)), flips, rng)
        if seed % 3 == 0:
            cnt = np.ones_like(cnt)
        c = count_reachable(z, rho, cnt)
        if 1 < c.count <= max_count:
            return z, cnt, rho, c
        flips *= 0.8 if c.count > max_count else 1.1
    pytest.skip("no listable case drawn")


def _brute(z, cnt, rho):
    lst = enumerate_reachable(z, rho, cnt, max_images=None)
    order = np.argsort(-lst.prob, kind="stable")          # decreasing, ties in the listing's order
    return lst, order


# ----------------------------------------------------------------------------- small: equal brute force


@pytest.mark.parametrize("seed", range(12))
def test_top_k_and_eps_equal_brute_force(seed):
    z, cnt, rho, c = _small_case(seed)
    lst, order = _brute(z, cnt, rho)
    assert lst.dead_end_mass == c.dead_end_mass
    tables = build_tables(z, rho, cnt)
    rng = np.random.default_rng(1000 + seed)
    for k in sorted({1, 3, int(rng.integers(1, c.count + 1)), c.count}):
        r = most_probable(tables, k, c.dead_end_mass)
        sel = order[:k]
        assert r.exact and r.n_exact == len(sel) == min(k, c.count) and r.k_requested == k and not r.note
        assert r.latents.dtype == np.int8 and r.latents.shape == (len(sel),) + z.shape[1:]
        np.testing.assert_array_equal(r.latents, lst.latents[sel])
        np.testing.assert_array_equal(r.prob, lst.prob[sel])
        np.testing.assert_allclose(r.log_prob, lst.log_prob[sel], rtol=1e-12, atol=1e-12)
        assert r.covered_mass == math.fsum(lst.prob[sel].tolist())
        assert (np.diff(r.prob) <= 0).all()
    # ε: a random level, and levels equal to listed probabilities (the boundary is included)
    for eps in [float(rng.uniform(0.0, lst.prob.max())), float(lst.prob[order[0]]),
                float(lst.prob[order[min(len(order) - 1, 4)]]), float(lst.prob.min())]:
        r = most_probable(tables, 2, c.dead_end_mass, min_prob=eps)
        above = np.flatnonzero(lst.prob >= eps)
        sel = above[np.argsort(-lst.prob[above], kind="stable")]
        assert r.eps == eps and r.above_complete and r.n_above == r.n_above_high == len(sel)
        np.testing.assert_array_equal(r.above_latents, lst.latents[sel])
        np.testing.assert_array_equal(r.above_prob, lst.prob[sel])
        assert r.above_mass == r.above_mass_high == math.fsum(lst.prob[sel].tolist())
        np.testing.assert_array_equal(r.latents, lst.latents[order[:2]])      # top k unaffected
        np.testing.assert_array_equal(r.prob, lst.prob[order[:2]])


@pytest.mark.parametrize("seed", range(12, 20))
def test_small_listing_cap_still_exact(seed):
    """A listing cap far below the number of candidates forces the overflow paths (the exact
    lexicographic-tail bound and the re-listing at bisected budgets): every proven entry equals
    brute force; the ε part reports bounds instead of a set."""
    z, cnt, rho, c = _small_case(seed)
    lst, order = _brute(z, cnt, rho)
    tables = build_tables(z, rho, cnt)
    for k in (1, 2, 3):
        r = most_probable(tables, k, c.dead_end_mass, max_listed=4)
        n = r.n_exact
        np.testing.assert_array_equal(r.latents[:n], lst.latents[order[:n]])
        np.testing.assert_array_equal(r.prob[:n], lst.prob[order[:n]])
        if r.exact:
            assert n == min(k, c.count)
        else:
            assert r.note and n < k
    eps = float(lst.prob[order[min(c.count - 1, 10)]])
    truth = int((lst.prob >= eps).sum())
    r = most_probable(tables, 1, c.dead_end_mass, min_prob=eps, max_listed=4)
    if truth > 4:
        assert not r.above_complete and r.above_latents is None
        assert r.n_above <= truth and (r.n_above_high is None or truth <= r.n_above_high)
        mass = math.fsum(lst.prob[lst.prob >= eps].tolist())
        assert r.above_mass <= mass * (1 + 1e-9)
        assert r.above_mass_high is None or mass <= r.above_mass_high * (1 + 1e-9)
    else:
        assert r.above_complete and r.n_above == truth


def test_exact_tie_larger_than_the_cap_after_better_latents():
    """Three latents of probability p, then 27 exactly tied at p/2, the better ones late in
    lexicographic order and the listing cap (10) below the tie: still exact (the three better
    ones are carried as known paths, the tie is proven by the lexicographic-tail bound)."""
    z, cnt, rho, c = _small_case(25)
    lst, order = _brute(z, cnt, rho)
    p = lst.prob[order]
    assert p[0] == p[2] == 2 * p[3] and p[3] == p[29] > p[30]
    r = most_probable(build_tables(z, rho, cnt), 5, c.dead_end_mass, max_listed=4)
    assert r.exact and r.n_exact == 5
    np.testing.assert_array_equal(r.latents, lst.latents[order[:5]])
    np.testing.assert_array_equal(r.prob, p[:5])


def test_search_limits_never_truncate_silently():
    """A later search over its edge limit: only the proven prefix is claimed (and it is right);
    the first search over the limit raises."""
    rng = np.random.default_rng(0)
    z, cnt = _flipped(2, 8, 8, 1, 100, 0.02, rng)
    c = count_reachable(z, 1, cnt)
    tables = build_tables(z, 1, cnt)
    full = most_probable(tables, 300, c.dead_end_mass)
    assert full.exact and full.n_exact == 300
    r = most_probable(tables, 300, c.dead_end_mass, max_edges=100)
    assert not r.exact and 0 < r.n_exact < 300 and "too large" in r.note
    np.testing.assert_array_equal(r.latents[:r.n_exact], full.latents[:r.n_exact])
    np.testing.assert_array_equal(r.prob[:r.n_exact], full.prob[:r.n_exact])
    with pytest.raises(SearchTooLarge):
        most_probable(tables, 300, c.dead_end_mass, max_edges=1)


def test_k_beyond_the_reachable_set_returns_everything():
    z, cnt, rho, c = _small_case(3, max_count=200)
    lst, order = _brute(z, cnt, rho)
    r = most_probable(build_tables(z, rho, cnt), c.count + 50, c.dead_end_mass)
    assert r.exact and len(r.prob) == r.n_exact == c.count and r.k_requested == c.count + 50
    np.testing.assert_array_equal(r.latents, lst.latents[order])
    np.testing.assert_array_equal(r.prob, lst.prob[order])
    assert r.covered_mass == math.fsum(lst.prob.tolist())
    assert r.covered_mass == pytest.approx(1.0, abs=1e-12)
    r = most_probable(build_tables(z, rho, cnt), 5, c.dead_end_mass, min_prob=1e-300)
    assert r.above_complete and r.n_above == c.count


def test_zero_k_and_bad_arguments():
    z, cnt, rho, c = _small_case(4, max_count=200)
    t = build_tables(z, rho, cnt)
    r = most_probable(t, 0, c.dead_end_mass)
    assert r.exact and r.latents.shape == (0,) + z.shape[1:] and r.covered_mass == 0.0 and r.eps is None
    for bad in (dict(k=-1), dict(k=1.5), dict(min_prob=0.0), dict(min_prob=2.0), dict(dead_end_mass=1.5),
                dict(max_listed=0)):
        args = dict(k=1, dead_end_mass=c.dead_end_mass) | bad
        with pytest.raises(FscertError):
            most_probable(t, **args)


def test_eps_above_every_latent_is_empty():
    z, cnt, rho, c = _small_case(5, max_count=200)
    r = most_probable(build_tables(z, rho, cnt), 1, c.dead_end_mass, min_prob=1.0)
    lst, _ = _brute(z, cnt, rho)
    truth = int((lst.prob >= 1.0).sum())
    assert r.above_complete and r.n_above == truth and r.above_mass == math.fsum(lst.prob[lst.prob >= 1.0].tolist())


# ----------------------------------------------------------------------------- exact ties, lexicographic tail


def test_two_to_the_64_exact_ties():
    """E = {all −1, all +1} at ρ = 0: 2^64 latents, each of probability 2^−64. The top k are the
    lexicographically first (binary counting over the raster cells), proven exactly although
    far more than the listing cap tie; the ε set is bracketed, not listed."""
    z = np.stack([-np.ones((1, 8, 8), np.int8), np.ones((1, 8, 8), np.int8)])
    cnt = np.array([1, 1])
    c = count_reachable(z, 0, cnt)
    assert c.count == 2 ** 64 and c.dead_end_mass == 0.0
    r = most_probable(build_tables(z, 0, cnt), 5, 0.0, min_prob=2.0 ** -64, max_listed=16)
    assert r.exact and r.n_exact == 5
    assert (r.prob == 2.0 ** -64).all()
    for j in range(5):
        bits = [(j >> (63 - i)) & 1 for i in range(64)]
        np.testing.assert_array_equal(r.latents[j, 0].reshape(-1), 2 * np.array(bits) - 1)
    assert not r.above_complete and r.above_latents is None
    assert r.n_above <= 2 ** 64 and (r.n_above_high is None or r.n_above_high >= 2 ** 64)


@pytest.mark.parametrize("seed", range(4))
def test_top_after_equals_brute_force(seed):
    """The exact largest products over the paths lexicographically after a given one, with and
    without known paths taken out."""
    z, cnt, rho, c = _small_case(40 + seed, max_count=2000)
    lst, _ = _brute(z, cnt, rho)
    tables = build_tables(z, rho, cnt)
    costs = [-np.log(ct.cond) for ct in tables.cells]
    graph = search(tables, make_layout(tables, 0), lambda i, p, e, ch: costs[i][e], math.inf)
    paths = list_paths(graph, max_out=10 ** 6)
    assert len(paths.tok) == c.count
    np.testing.assert_array_equal(paths.raw_prob, lst.raw_prob)
    rng = np.random.default_rng(seed)
    for j in sorted(set(rng.integers(0, c.count, 6).tolist()) | {0, c.count - 1}):
        tail = np.sort(lst.raw_prob[j + 1:])[::-1]
        for kk in (1, 2, 5):
            np.testing.assert_array_equal(top_after(graph, paths.tok[j], kk), tail[:kk])
        if len(tail) > 2:                         # take out two known paths after j
            pick = rng.choice(np.arange(j + 1, c.count), 2, replace=False)
            rest = np.delete(lst.raw_prob[j + 1:], pick - j - 1)
            got = max_excluding(top_after(graph, paths.tok[j], 3), lst.raw_prob[pick])
            assert got == rest.max()


# ----------------------------------------------------------------------------- large: beyond brute force


@pytest.mark.parametrize("m, copies, flips, seed, k, n_draws", [
    (2, 100, 0.02, 0, 40, 20_000),      # 7.7e9 reachable, a sharp mode: one search
    (1, 60, 0.12, 1, 60, 5_000),        # 9.1e10, flat: the budget grows over several searches
    (2, 40, 0.1, 3, 60, 1_000),         # 1.8e11, flat, dead-end mass 0.94
])
def test_large_case_against_reference_and_sampler(m, copies, flips, seed, k, n_draws):
    rng = np.random.default_rng(seed)
    z, cnt = _flipped(m, 8, 8, 1, copies, flips, rng)
    rho = 1
    c = count_reachable(z, rho, cnt)
    assert c.count >= 10 ** 9
    tables = build_tables(z, rho, cnt)
    r = most_probable(tables, k, c.dead_end_mass, min_prob=1e-3)
    assert r.exact and r.n_exact == k == len(r.prob)
    assert (np.diff(r.prob) <= 0).all()
    assert len({x.tobytes() for x in r.latents}) == k
    norm = 1.0 - c.dead_end_mass
    np.testing.assert_array_equal(r.prob, reference_raw_prob(z, cnt, rho, r.latents) / norm)
    np.testing.assert_allclose(r.log_prob, np.log(r.prob), rtol=1e-12)
    assert r.covered_mass == math.fsum(r.prob.tolist())
    # the ε set: exact probabilities, all ≥ ε, the top k agree with it
    assert r.above_complete
    assert (r.above_prob >= 1e-3).all()
    np.testing.assert_array_equal(r.above_prob, reference_raw_prob(z, cnt, rho, r.above_latents) / norm)
    n = min(k, r.n_above)
    np.testing.assert_array_equal(r.above_latents[:n], r.latents[:n])
    if r.n_above < k:
        assert r.prob[r.n_above] < 1e-3
    # the empirical sampler: its draws never beat the k-th without being listed
    draws = empirical_sampler(z, rho, cnt)(n_draws, seed)
    uniq, freq = np.unique(draws, axis=0, return_counts=True)
    listed = {x.tobytes(): j for j, x in enumerate(r.latents)}
    if freq.max() >= 20:                                    # a mode the draws can tell apart
        assert uniq[freq.argmax()].tobytes() in listed
    p_draw = reference_raw_prob(z, cnt, rho, uniq) / norm
    assert (p_draw > 0).all()
    better = p_draw > r.prob[-1]
    assert all(uniq[j].tobytes() in listed for j in np.flatnonzero(better))
    for j in np.flatnonzero(better):
        assert r.prob[listed[uniq[j].tobytes()]] == p_draw[j]
    for j, x in enumerate(r.latents[:3]):                   # frequencies of the most probable
        f = freq[np.flatnonzero((uniq == x).all((1, 2, 3)))].sum() / len(draws)
        p = r.prob[j]
        assert abs(f - p) <= 5 * math.sqrt(p * (1 - p) / len(draws)) + 1e-4
