"""The compiled sorting / hashing helpers against numpy (hypothesis-generated inputs)."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fscert.enumeration.kernels import dedupe_rows, radix_argsort
from fscert.survival import _gallop_sorted

# narrow and wide ranges: many duplicates, and keys whose high digits all agree (skipped passes)
u64 = st.one_of(st.integers(0, 7), st.integers(0, 2**64 - 1), st.integers(2**48, 2**48 + 70000))


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint64, st.integers(0, 300), elements=u64))
def test_radix_argsort_is_numpy_stable_argsort(keys):
    assert np.array_equal(radix_argsort(keys), np.argsort(keys, kind="stable"))


def test_radix_argsort_large_random():
    keys = np.random.default_rng(0).integers(0, 2**63, 200_000, dtype=np.int64).astype(np.uint64)
    keys[::7] = keys[3]                               # ties keep their order
    assert np.array_equal(radix_argsort(keys), np.argsort(keys, kind="stable"))


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint64, st.tuples(st.integers(0, 200), st.integers(1, 3)), elements=st.integers(0, 5)))
def test_dedupe_rows_is_unique_in_first_appearance_order(rows):
    uniq, inv = dedupe_rows(rows)
    assert np.array_equal(uniq[inv], rows)
    assert len(np.unique(uniq, axis=0)) == len(uniq)
    _, first = np.unique(rows, axis=0, return_index=True)
    assert np.array_equal(uniq, rows[np.sort(first)]) if len(rows) else len(uniq) == 0


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint64, st.integers(0, 200), elements=u64), arrays(np.uint64, st.integers(0, 200), elements=u64))
def test_gallop_finds_exactly_the_members(col, keys):
    col, keys = np.unique(col), np.sort(keys)
    pos = np.searchsorted(col, keys)
    want = np.where((pos < len(col)) & (col[np.minimum(pos, len(col) - 1)] == keys if len(col) else False),
                    pos, -1)
    assert np.array_equal(_gallop_sorted(col, keys), want)
