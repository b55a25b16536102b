"""Benchmarks of the enumerator (DESIGN §6.5). Run with `make bench` (prints timings; the
assertions check results, never wall-clock times)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fscert.enumeration import count_reachable, enumerate_reachable  # noqa: E402
from test_enumeration import saturated  # noqa: E402
from tests.reference.enumeration_reference import ref_dfs  # noqa: E402


def _timed(fn, *a, **k):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*a, **k)
    return out, time.perf_counter() - t0, time.process_time() - c0


def test_listing_vs_python_reference():
    """≥ 10^5 reachable latents: numba listing vs the plain-Python depth-first reference."""
    rng = np.random.default_rng(0)
    base = rng.choice(np.array([-1, 1], np.int8), size=(4, 1, 6, 6))
    E = np.concatenate([np.where(rng.random(base.shape) < 0.12, -base, base) for _ in range(6)]).astype(np.int8)
    enumerate_reachable(E[:2], 1, max_images=None)                     # compile outside the timing
    lst, wall_n, cpu_n = _timed(enumerate_reachable, E, 1, max_images=None)
    assert lst.count >= 100_000, lst.count
    (ref_list, ref_dead), wall_r, cpu_r = _timed(ref_dfs, E, None, 1)
    assert len(ref_list) == lst.count and ref_dead == pytest.approx(lst.dead_end_mass, rel=1e-12, abs=1e-15)
    assert ref_list[0][0].tobytes() == lst.latents[0].tobytes() and ref_list[-1][0].tobytes() == lst.latents[-1].tobytes()
    print(f"\nlisting {lst.count} latents (1×6×6, ρ=1, |E|={len(E)}): numba {wall_n:.3f} s wall / {cpu_n:.3f} s CPU, "
          f"Python reference {wall_r:.2f} s wall / {cpu_r:.2f} s CPU → ×{cpu_r / cpu_n:.0f} (CPU), "
          f"×{wall_r / wall_n:.0f} (wall); target ≥ ×100")


def test_saturated_count_2_pow_256():
    """Saturated 1×16×16 empirical set at ρ = 1: exactly 2^256 reachable latents (target < 10 s)."""
    E = saturated(16, 16)
    count_reachable(saturated(3, 3), 1)                                # compile outside the timing
    res, wall, cpu = _timed(count_reachable, E, 1)
    assert res.count == 2 ** 256 and res.dead_end_mass == 0.0
    print(f"\nsaturated 1×16×16 (32 samples): count = 2^256 exactly, {res.max_states} frontier states per layer, "
          f"{wall:.2f} s wall / {cpu:.2f} s CPU (target < 10 s)")


def test_decoding_throughput():
    """Decoded images per second of the certificate pipeline's decoder (default-size model, 7×8×8)."""
    torch = pytest.importorskip("torch")
    from fscert.autoencoder import AEConfig, LocalAutoencoder, decode_batched

    torch.manual_seed(0)
    model = LocalAutoencoder(AEConfig())
    z = np.random.default_rng(0).choice(np.array([-1, 1], np.int8), size=(2048, 7, 8, 8))
    decode_batched(model, z[:256])
    imgs, wall, cpu = _timed(decode_batched, model, z, batch=256)
    assert imgs.shape == (2048, 1, 32, 32)
    print(f"\ndecoding 2048 latents (7×8×8 → 1×32×32, hidden 256, {torch.get_num_threads()} threads): "
          f"{2048 / wall:.0f} images/s wall")
