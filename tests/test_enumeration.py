"""The numba enumerator (fscert.enumeration) against the plain-Python/networkx references."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fscert.enumeration import (TooManyImages, build_tables, count_reachable, enumerate_reachable,
                                patch_graph)
from fscert.errors import FscertError
from tests.reference.enumeration_reference import (random_empirical, ref_brute, ref_count_networkx, ref_dfs)


def saturated(h: int, w: int) -> np.ndarray:
    """32 latents of 1×h×w whose every ρ=1 window (Pre ∪ cell, 5 cells) takes all 2^5 values.

    Cell (y, x) gets colour (x + 3y) mod 5; the five cells of every window have distinct
    colours, and latent n sets cell (y, x) to bit colour(y, x) of n.
    """
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    colour = (xx + 3 * yy) % 5
    bits = (np.arange(32)[:, None, None] >> colour[None]) & 1
    return (2 * bits - 1).astype(np.int8)[:, None]


def check_against_reference(E, counts, rho):
    brute = ref_brute(E, counts, rho)
    ref_list, ref_dead = ref_dfs(E, counts, rho)
    res = count_reachable(E, rho, counts)
    assert res.count == len(brute) == len(ref_list) == ref_count_networkx(E, counts, rho)
    assert res.dead_end_mass == pytest.approx(ref_dead, rel=1e-12, abs=1e-15)
    lst = enumerate_reachable(E, rho, counts, max_images=None)
    assert lst.count == res.count
    # same latents in the same (depth-first, tokens ascending) order
    assert [z.tobytes() for z in lst.latents] == [z.tobytes() for z, _ in ref_list]
    raw_ref = np.array([p for _, p in ref_list])
    np.testing.assert_allclose(lst.raw_prob, raw_ref, rtol=1e-13, atol=0)
    np.testing.assert_allclose(lst.raw_prob, [brute[z.tobytes()] for z in lst.latents], rtol=1e-13, atol=0)
    if lst.count:
        assert lst.prob.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(np.exp(lst.log_prob), lst.prob, rtol=1e-10)
        assert res.reachable_mass + res.dead_end_mass == pytest.approx(1.0, abs=1e-12)
    else:
        assert res.dead_end_mass == pytest.approx(1.0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), m=st.sampled_from([1, 2]), h=st.integers(1, 4), w=st.integers(1, 4),
       n_base=st.integers(1, 4), trials=st.integers(1, 4), flip=st.sampled_from([0.05, 0.2, 0.4]),
       rho=st.integers(0, 3), with_counts=st.booleans())
def test_numba_matches_reference(seed, m, h, w, n_base, trials, flip, rho, with_counts):
    if m * h * w > 11:
        h, w = min(h, 3), min(w, 2 if m == 2 else 3)
    E, counts = random_empirical(seed, m, h, w, n_base, trials, flip, with_counts)
    check_against_reference(E, counts, rho)


@pytest.mark.parametrize("shape,rho", [((3, 1, 3), 1), ((1, 3, 4), 1), ((1, 4, 3), 2), ((2, 2, 3), 1)])
def test_dead_ends_present(shape, rho):
    # many bases, few trials: many contexts go unseen → dead ends, checked against the reference
    E, counts = random_empirical(7, *shape, n_base=5, trials=2, flip=0.3, with_counts=True)
    check_against_reference(E, counts, rho)


def test_saturated_counts_are_exact_beyond_uint64():
    assert count_reachable(saturated(4, 4), 1).count == 2 ** 16
    assert count_reachable(saturated(8, 8), 1).count == 2 ** 64        # one past uint64
    res = count_reachable(saturated(12, 12), 1)
    assert res.count == 2 ** 144 and res.dead_end_mass == 0.0


def test_saturated_listing_is_uniform():
    lst = enumerate_reachable(saturated(3, 4), 1, max_images=None)
    assert lst.count == 2 ** 12 and len(np.unique(lst.latents.reshape(lst.count, -1), axis=0)) == 2 ** 12
    np.testing.assert_allclose(lst.prob, 2.0 ** -12, rtol=1e-12)


def test_rho_zero_is_product_of_per_cell_token_counts():
    E, _ = random_empirical(3, 2, 3, 3, 3, 3, 0.3, False)
    distinct = [len(np.unique(E[:, :, y, x], axis=0)) for y in range(3) for x in range(3)]
    assert count_reachable(E, 0).count == int(np.prod(distinct))


def test_large_rho_only_reproduces_the_empirical_set():
    E, counts = random_empirical(5, 2, 4, 4, 6, 3, 0.3, True)
    lst = enumerate_reachable(E, 4, counts)            # Pre covers every earlier cell: memorization
    assert lst.count == len(np.unique(E.reshape(len(E), -1), axis=0))
    assert lst.dead_end_mass == 0.0


def test_max_images_guard_reports_exact_count():
    with pytest.raises(TooManyImages) as err:
        enumerate_reachable(saturated(5, 5), 1, max_images=1000)
    assert err.value.count == 2 ** 25 and str(2 ** 25) in str(err.value) and "--count-only" in str(err.value)


def test_listing_is_deterministic():
    E, counts = random_empirical(11, 1, 5, 5, 6, 3, 0.1, True)
    a = enumerate_reachable(E, 1, counts)
    b = enumerate_reachable(E[::-1].copy(), 1, counts[::-1].copy())     # input order does not matter
    assert a.latents.tobytes() == b.latents.tobytes() and a.prob.tobytes() == b.prob.tobytes()


def test_bad_inputs():
    E, _ = random_empirical(0, 1, 3, 3, 2, 2, 0.2, False)
    with pytest.raises(FscertError, match="ρ"):
        build_tables(E, -1)
    with pytest.raises(FscertError, match="±1"):
        build_tables(E * 2, 1)
    with pytest.raises(FscertError, match="≥ 1"):
        build_tables(E, 1, np.zeros(len(E), np.int64))
    with pytest.raises(FscertError, match="shape"):
        build_tables(E, 1, np.ones(len(E) + 1, np.int64))


def test_patch_graph():
    E, counts = random_empirical(2, 1, 3, 3, 3, 3, 0.2, True)
    g = patch_graph(E, 1, counts)
    n_nodes = sum(len(np.unique(np.concatenate([E[:, 0, max(0, y - 1):y, max(0, x - 1):x + 2].reshape(len(E), -1),
                                               E[:, 0, y, max(0, x - 1):x + 1].reshape(len(E), -1)], 1), axis=0))
                  for y in range(3) for x in range(3))
    assert g.number_of_nodes() == n_nodes
    assert int(g.graph["reachable_count"]) == ref_count_networkx(E, counts, 1)
    # with ρ = 0 every path of the graph is a reachable latent
    import networkx as nx
    g0 = patch_graph(E, 0, counts)
    paths = {n: 1 for n, d in g0.nodes(data=True) if d["cell"] == 0}
    for n in nx.topological_sort(g0):
        for s in g0.successors(n):
            paths[s] = paths.get(s, 0) + paths.get(n, 0)
    assert sum(paths[n] for n, d in g0.nodes(data=True) if d["cell"] == 8) == count_reachable(E, 0, counts).count
