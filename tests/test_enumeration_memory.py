"""Counting under a memory limit (fscert.enumeration.count): the exact candidate-edge pre-pass, the
memory guard and the prefix split. Results of a split pass must equal the unsplit pass."""
from __future__ import annotations

import re
from unittest import mock

import numpy as np
import pytest

import fscert.enumeration.count as en
from fscert.enumeration import build_tables, count_prefixes, count_reachable, forward, list_from_tables
from fscert.enumeration.kernels import _step
from fscert.errors import FscertError
from tests.reference.enumeration_reference import random_empirical, ref_pre_cells, ref_tables

GUARD = re.compile(r"^(counting|listing) needs about [\d.]+ (B|KiB|MiB|GiB) at cell (\d+) of (\d+) "
                   r"\(([\d,]+) frontier states? so far(, even one prefix state at a time)?\) "
                   r"and --max-memory is [\d.]+ (B|KiB|MiB|GiB)$")


def emulated_trials(seed: int, m: int, h: int, w: int, n_base: int, trials: int, q: float) -> np.ndarray:
    """Random ±1 latents near a few prototypes, each repeated ``trials`` times with bits flipped at
    rate q: a stand-in for encoded images under sampling noise."""
    rng = np.random.default_rng(seed)
    proto = rng.choice(np.array([-1, 1], np.int8), size=(4, m, h, w))
    base = proto[rng.integers(0, 4, n_base)]
    base = np.where(rng.random(base.shape) < 0.02, -base, base)
    return np.concatenate([np.where(rng.random(base.shape) < q, -base, base) for _ in range(trials)]).astype(np.int8)


def split_runs(E, counts, rho, divisors, progress=False):
    """The unsplit result and, per limit (peak // d), the split result and the cells split."""
    ref = count_reachable(E, rho, counts)
    runs = []
    for d in divisors:
        limit = ref.peak_bytes // d
        with mock.patch.object(en, "_split_layer", wraps=en._split_layer) as spy:
            try:
                res = count_reachable(E, rho, counts, progress=progress, max_memory=limit)
            except FscertError as err:
                assert GUARD.match(str(err)), str(err)
                continue
        runs.append((limit, res, {c.args[1] for c in spy.call_args_list}))
    return ref, runs


def assert_same(ref, res, limit):
    assert res.count == ref.count
    assert res.dead_end_mass == pytest.approx(ref.dead_end_mass, rel=0, abs=1e-12)
    assert res.reachable_mass == pytest.approx(ref.reachable_mass, rel=1e-12, abs=1e-15)
    assert res.peak_bytes <= limit
    assert res.max_states <= ref.max_states


CASES = [(seed, m, hw, rho, seed % 2 == 0) for seed, (m, hw, rho) in enumerate(
    [(2, 4, 1), (2, 5, 1), (3, 5, 1), (3, 6, 1), (4, 4, 1), (4, 6, 1), (2, 6, 2), (3, 5, 2), (4, 6, 2), (3, 6, 1)])]


@pytest.mark.parametrize("seed,m,hw,rho,with_counts", CASES)
def test_split_counts_equal_unsplit(seed, m, hw, rho, with_counts):
    E, counts = random_empirical(seed, m, hw, hw, n_base=4, trials=5, flip=0.15, with_counts=with_counts)
    ref, runs = split_runs(E, counts, rho, (2, 3, 5))
    assert runs, "every limit was refused"
    for limit, res, cells in runs:
        assert res.splits >= 1 and cells
        assert_same(ref, res, limit)
    assert max(len(cells) for _, _, cells in runs) >= 2        # splits at several layers


def test_split_on_emulated_trials():
    """M = 7 on 8×8 at ρ = 1, 60 latents × 10 noisy trials: ~10^13 reachable latents."""
    E = emulated_trials(0, 7, 8, 8, n_base=60, trials=10, q=0.004)
    ref, runs = split_runs(E, None, 1, (2, 3), progress=True)
    assert ref.count > 10 ** 12 and len(runs) == 2
    for limit, res, cells in runs:
        assert res.splits >= 2 and len(cells) >= 2
        assert_same(ref, res, limit)


def test_canonical_split_is_the_same_on_every_machine():
    """Split by ``work`` alone (no memory pressure): the same count and the same float64 masses,
    bit for bit, whatever the memory limit; and the count equals the unsplit one."""
    E = emulated_trials(0, 7, 8, 8, n_base=60, trials=10, q=0.004)
    ref = count_reachable(E, 1, None)
    assert ref.splits == 0
    for work in (ref.peak_bytes // 4, ref.peak_bytes // 16):
        runs = [count_reachable(E, 1, None, work=work, max_memory=mem) for mem in (None, 1 << 40, 2 * ref.peak_bytes)]
        for r in runs:
            assert r.count == ref.count and r.splits >= 1 and r.memory_splits == 0
            assert_same(ref, r, 1 << 40)
            assert (r.dead_end_mass, r.reachable_mass, r.max_states, r.splits) == \
                   (runs[0].dead_end_mass, runs[0].reachable_mass, runs[0].max_states, runs[0].splits)


def test_one_state_chunks_terminate():
    """``work`` below one state's step: every chunk is a single prefix state, which advances
    without splitting at its own cell; the count is still exact."""
    E, counts = random_empirical(5, 2, 4, 4, n_base=3, trials=4, flip=0.2, with_counts=True)
    ref = count_reachable(E, 1, counts)
    res = count_reachable(E, 1, counts, work=1)
    assert res.splits >= 1 and res.memory_splits == 0
    assert_same(ref, res, 1 << 40)


def test_memory_cuts_are_reported():
    """A split forced by the memory limit (smaller than ``work``) is counted in ``memory_splits``."""
    E, counts = random_empirical(0, 2, 4, 4, n_base=4, trials=5, flip=0.15, with_counts=False)
    ref, runs = split_runs(E, counts, 1, (2, 3))
    assert ref.memory_splits == 0 and runs
    assert all(res.memory_splits >= 1 for _, res, _ in runs)


def test_prefix_chunks_add_up():
    """The Dask contract: count_prefixes over any partition of a layer sums to the whole."""
    E, counts = random_empirical(3, 3, 5, 5, n_base=4, trials=5, flip=0.15, with_counts=True)
    tables = build_tables(E, 1, counts)
    ref = forward(tables)
    states, limbs, mass = en._root(tables)
    dead = 0.0
    for i in range(9):
        ctx = en.layer_contexts(tables, i, states)
        states, limbs, mass, d, _ = en._advance(tables, i, states, limbs, mass, ctx, en.candidate_edges(tables, i, states), False)
        dead += d
    assert len(states) > 10
    parts_N = np.random.default_rng(0).integers(0, 3, len(states))
    parts = [count_prefixes(tables, 9, states[parts_N == k], limbs[parts_N == k], mass[parts_N == k]) for k in range(3)]
    assert sum(p.count for p in parts) == ref.count
    assert dead + sum(p.dead_end_mass for p in parts) == pytest.approx(ref.dead_end_mass, abs=1e-12)
    assert sum(p.reachable_mass for p in parts) == pytest.approx(ref.reachable_mass, abs=1e-12)


def test_impossible_limit_is_one_line_naming_the_cell():
    E, counts = random_empirical(1, 2, 4, 4, n_base=3, trials=3, flip=0.2, with_counts=False)
    with pytest.raises(FscertError) as err:
        count_reachable(E, 1, counts, max_memory=100)
    msg = str(err.value)
    assert "\n" not in msg
    g = GUARD.match(msg)
    assert g and g[1] == "counting" and g[3] == "1" and g[4] == "16" and g[6], msg


def test_listing_is_guarded_not_split():
    E, counts = random_empirical(2, 3, 5, 5, n_base=4, trials=5, flip=0.15, with_counts=True)
    tables = build_tables(E, 1, counts)
    peak = forward(tables, store=True).peak_bytes
    assert list_from_tables(tables, max_memory=peak).count == forward(tables).count
    with pytest.raises(FscertError) as err:
        list_from_tables(tables, max_memory=peak - 1)
    g = GUARD.match(str(err.value))
    assert g and g[1] == "listing" and 1 < int(g[3]) <= 25 and not g[6], str(err.value)


def test_default_limit_changes_nothing():
    E, counts = random_empirical(4, 2, 4, 4, n_base=3, trials=4, flip=0.2, with_counts=True)
    a, b = count_reachable(E, 1, counts), count_reachable(E, 1, counts, max_memory=1 << 40)
    assert (a.count, a.dead_end_mass, a.reachable_mass, a.max_states, a.splits) == \
           (b.count, b.dead_end_mass, b.reachable_mass, b.max_states, 0)


# ----------------------------------------------------------------------------- candidate edges


def brute_candidate_edges(tables, tabs, i: int, states_NW: np.ndarray) -> int:
    """Σ over states of the number of tokens E has after the state's Pre context at cell i,
    decoding each state's frontier slots by hand and looking the context up in dicts."""
    m, h, w = tables.shape
    total = 0
    for row in states_NW:
        ctx = []
        for j in ref_pre_cells(i, h, w, tables.rho):
            if j is None:
                ctx.append((0,) * m)
                continue
            s = j % tables.frontier
            tid = (int(row[s // tables.per_word]) >> ((s % tables.per_word) * m)) & ((1 << m) - 1)
            ctx.append(tuple(2 * ((tid >> (m - 1 - c)) & 1) - 1 for c in range(m)))
        total += len(tabs[i].get(tuple(ctx), {}))
    return total


@pytest.mark.parametrize("seed,m,hw,rho", [(0, 2, 4, 1), (1, 3, 5, 1), (2, 2, 5, 2), (3, 4, 4, 1)])
def test_candidate_edges_match_brute_force_and_size_the_buffers(seed, m, hw, rho):
    E, counts = random_empirical(seed, m, hw, hw, n_base=4, trials=4, flip=0.2, with_counts=True)
    tables = build_tables(E, rho, counts)
    tabs = ref_tables(E, counts, rho)
    states, limbs, mass = en._root(tables)
    for i in range(tables.n_cells):
        n_edges = en.candidate_edges(tables, i, states)
        assert n_edges == brute_candidate_edges(tables, tabs, i, states)
        ct = tables.cells[i]
        ctx = en.layer_contexts(tables, i, states)
        out = _step(states, limbs, mass, ctx, n_edges, int(tables.limbs_after()[i]), i % tables.frontier,
                    ct.ctx_ptr, ct.tok, ct.cond, tables.keep_masks[i], tables.per_word, m, True)
        assert len(out[0]) == len(out[1]) == len(out[2]) == n_edges        # child buffers: the exact count
        assert len(out[5]) == n_edges and out[3] <= n_edges                # every candidate edge stored
        states, limbs, mass, _, _ = en._advance(tables, i, states, limbs, mass, ctx, n_edges, False)
        if not len(states):
            break
