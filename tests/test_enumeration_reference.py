"""Self-checks of the plain-Python / networkx reference enumerators of DESIGN §6
(tests/reference/enumeration_reference.py): they agree with each other and with DESIGN §4's Pre."""
from __future__ import annotations

from tests.reference.enumeration_reference import (random_empirical, ref_brute, ref_count_networkx, ref_dfs,
                                                   ref_pre_cells)


# ----------------------------------------------------------------------------- self-checks


def test_reference_enumerators_agree():
    for seed in range(6):
        E, counts = random_empirical(seed, 1, 3, 3, 3, 3, 0.25, seed % 2 == 0)
        for rho in (0, 1, 2):
            brute = ref_brute(E, counts, rho)
            listed, dead = ref_dfs(E, counts, rho)
            assert {z.tobytes() for z, _ in listed} == set(brute)
            assert ref_count_networkx(E, counts, rho) == len(brute)
            assert abs(sum(p for _, p in listed) + dead - 1.0) < 1e-12
            for z, p in listed:
                assert p == brute[z.tobytes()]


def test_reference_pre_matches_design():
    # 3×3 grid, ρ = 1, centre cell 4: Pre = cells 0, 1, 2 (row above) and 3 (left)
    assert ref_pre_cells(4, 3, 3, 1) == [0, 1, 2, 3]
    assert ref_pre_cells(0, 3, 3, 1) == [None, None, None, None]
    assert ref_pre_cells(5, 3, 3, 1) == [1, 2, None, 4]
