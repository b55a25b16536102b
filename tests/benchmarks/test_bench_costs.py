"""Per-unit costs of the time estimates (fscert/resources.py), measured on this machine.

The estimates are counts of work × per-unit costs. This benchmark runs the real kernels on a
few configurations (training loops of both phases, decoding and encoding, the nearest-neighbour
search, direct sampling), counts their work with the same functions the estimates use, and fits
the per-unit costs by non-negative least squares on relative errors. It prints the costs and,
for every run, measured / modelled seconds (how well the model fits its own measurements).

Costs are CPU seconds of one thread (torch and numba set to one thread, ``time.process_time``,
best of a few runs): they do not depend on what else the machine runs, so two measurements on
the same machine agree, and they are the wall time of a run on one idle core.

``make bench`` prints; ``FSCERT_WRITE_COSTS=1 make bench`` also writes them to
``fscert/costs.json``, the file the package ships (the machine it names is this one).
"""
from __future__ import annotations

import itertools
import json
import math
import os
import platform
import time
from datetime import date
from pathlib import Path

import numba
import numpy as np
import pytest
import torch

from fscert.autoencoder import AEConfig, LocalAutoencoder, decode_batched, encode_batched
from fscert.data import load_images
from fscert.fit import Fit
from fscert.metrics.nearest import nearest_train
from fscert.resources import (COSTS_FILE, FORWARD_BATCH, Costs, decode_work, encode_work, model_work,
                              parse_costs)
from fscert.sampling import build_bank, sample_direct
from fscert.training import TrainConfig, train

COSTS_PATH = Path(__file__).resolve().parents[2] / "fscert" / COSTS_FILE

#: (images, batch, hidden, latent size, latent channels): tiny test models up to the paper's width
TRAIN_CONFIGS = [(64, 64, 256, 8, 1), (64, 8, 16, 8, 1), (256, 64, 512, 8, 7), (128, 32, 64, 16, 2),
                 (128, 64, 128, 32, 1), (64, 16, 1024, 8, 4)]
#: (source latents, M, H = W, ρ, samples)
SAMPLING_CONFIGS = [(64, 1, 8, 4, 2000), (256, 7, 8, 1, 500), (128, 7, 8, 4, 300), (64, 1, 16, 2, 500)]


def _best_time(fn, repeat: int = 3) -> float:
    """Best CPU time of ``repeat`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


@pytest.fixture
def one_thread():
    """torch and numba on one thread, so that CPU time is the wall time of one idle core."""
    n_torch, n_numba = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(n_torch)
    numba.set_num_threads(n_numba)


def fit_nonnegative(A_RK: np.ndarray, t_R: np.ndarray) -> np.ndarray:
    """Costs c ≥ 0 minimising Σ_r ((A c)_r / t_r − 1)² (least squares on relative errors), exactly:
    the best unconstrained fit, over every subset of the K ≤ 5 units, whose costs are all ≥ 0."""
    W_RK, ones = A_RK / t_R[:, None], np.ones(len(t_R))
    best, best_c = np.inf, np.zeros(A_RK.shape[1])
    for r in range(1, A_RK.shape[1] + 1):
        for cols in itertools.combinations(range(A_RK.shape[1]), r):
            c, *_ = np.linalg.lstsq(W_RK[:, cols], ones, rcond=None)
            res = float(np.sum((W_RK[:, cols] @ c - ones) ** 2))
            if (c >= 0).all() and res < best:
                best, best_c = res, np.zeros(A_RK.shape[1])
                best_c[list(cols)] = c
    return best_c


def _model(hidden: int, size: int, channels: int) -> LocalAutoencoder:
    torch.manual_seed(0)
    return LocalAutoencoder(AEConfig(latent_size=size, latent_channels=channels, hidden=hidden))


def measure_forward() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows [batches, images·macs, images·pointwise macs, images·values] and CPU seconds of
    decode_batched and encode_batched."""
    rows, secs, names = [], [], []
    k = 2 * FORWARD_BATCH
    for _, _, hidden, size, ch in TRAIN_CONFIGS:
        model = _model(hidden, size, ch)
        z = np.where(np.random.default_rng(0).random((k, ch, size, size)) > 0.5, 1, -1).astype(np.int8)
        x = np.random.default_rng(1).random((k, 1, 32, 32)).astype(np.float32)
        for name, fn, work in (("decode", lambda: decode_batched(model, z), decode_work(model)),
                               ("encode", lambda: encode_batched(model, x), encode_work(model))):
            secs.append(_best_time(fn))
            rows.append([k // FORWARD_BATCH, k * work.macs, k * work.pointwise_macs, k * work.values])
            names.append(f"{name} {k} (hidden {hidden}, {ch}×{size}×{size})")
    return np.array(rows, float), np.array(secs), names


def measure_training() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows [steps, steps·params, images·macs, images·pointwise macs, images·values] and the best
    epoch CPU seconds of both phases of fscert.training.train: the time between the log calls of
    epochs 2–4 of 5 (the first one of a phase warms up or encodes, the last one evaluates)."""
    rows, secs, names = [], [], []
    for n, batch, hidden, size, ch in TRAIN_CONFIGS:
        x = load_images("mnist", limit=n, fit=Fit(pad=True))          # the 32×32 canvas the configs assume
        cfg = AEConfig(latent_size=size, latent_channels=ch, hidden=hidden)
        stamps: list[tuple[int, int, float]] = []
        train(x, cfg, TrainConfig(epochs=5, finetune_epochs=5, batch_size=batch, eval_points=1), progress=False,
              on_epoch=lambda row: stamps.append((row["phase"], row["epoch"], time.process_time())))
        w = model_work(LocalAutoencoder(cfg))
        steps = -(-n // batch)
        for phase, work, params in ((1, w.encoder + w.decoder, w.encoder_params + w.decoder_params),
                                    (2, w.decoder, w.decoder_params)):
            epoch_s = [t - stamps[i - 1][2] for i, (p, e, t) in enumerate(stamps) if p == phase and 2 <= e <= 4]
            secs.append(min(epoch_s))
            rows.append([steps, steps * params, n * work.macs, n * work.pointwise_macs, n * work.values])
            names.append(f"phase {phase} epoch: {n} images, batch {batch}, hidden {hidden}, {ch}×{size}×{size}")
    return np.array(rows, float), np.array(secs), names


def measure_search() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows [flops] and seconds of nearest_train over 784-value rows."""
    rows, secs, names = [], [], []
    rng = np.random.default_rng(0)
    for n, m in ((1024, 4096), (4096, 8192)):
        q, r = rng.random((n, 784), np.float32), rng.random((m, 784), np.float32)
        secs.append(_best_time(lambda: nearest_train(q, r), repeat=2))
        rows.append([2.0 * n * m * 784])
        names.append(f"search {n} among {m}")
    return np.array(rows, float), np.array(secs), names


def measure_sampling() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows [n·Σ candidates, n·Σ candidate words, n·cells] and seconds of sample_direct."""
    rows, secs, names = [], [], []
    for k, m, s, rho, n in SAMPLING_CONFIGS:
        z = np.where(np.random.default_rng(k).random((k, m, s, s)) > 0.5, 1, -1).astype(np.int8)
        bank = build_bank(z, rho)
        pools = [bank.pool(i)[0] for i in range(bank.n_cells)]
        secs.append(_best_time(lambda: sample_direct(bank, n, 0.01, seed=0), repeat=2))
        rows.append([n * sum(len(p) for p in pools), n * sum(p.size for p in pools), n * bank.n_cells])
        names.append(f"sample {n} from {k} latents {m}×{s}×{s}, ρ = {rho}")
    return np.array(rows, float), np.array(secs), names


def machine() -> str:
    """The reference machine in words: one thread of this CPU, and the torch build."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                   if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"one thread of an {cpu} CPU with {os.cpu_count()} cores, torch {torch.__version__}"


def test_measure_per_unit_costs(one_thread):
    groups = {
        "forward": (measure_forward(), ["forward_batch_s", "forward_mac_s", "forward_pointwise_mac_s",
                                        "forward_value_s"]),
        "train": (measure_training(), ["train_step_s", "train_param_s", "train_mac_s", "train_pointwise_mac_s",
                                       "train_value_s"]),
        "search": (measure_search(), ["search_flop_s"]),
        "sampling": (measure_sampling(), ["sample_candidate_s", "sample_word_s", "sample_cell_s"]),
    }
    costs: dict[str, float] = {}
    fit: dict[str, dict[str, float]] = {}
    print()
    for group, ((A, t, names), keys) in groups.items():
        c = fit_nonnegative(A, t)
        costs.update({k: float(v) for k, v in zip(keys, c)})
        ratios = t / (A @ c)
        fit[group] = {n: round(float(r), 3) for n, r in zip(names, ratios)}
        print(f"[costs] {group}: " + ", ".join(f"{k} = {v:.4g}" for k, v in zip(keys, c)))
        for n, s, r in zip(names, t, ratios):
            print(f"[costs]   {n}: {s:.4f} s measured, measured / modelled = {r:.2f}")
        assert len(c) == len(keys) and all(math.isfinite(v) and v >= 0 for v in c), (group, c)   # a cost per key
    blob = {"machine": machine(), "measured": date.today().isoformat(),
            "about": "seconds per unit of work; fitted by tests/benchmarks/test_bench_costs.py",
            "costs": costs, "measured_over_modelled": fit}
    parsed = parse_costs(json.dumps(blob))
    assert isinstance(parsed, Costs) and parsed.machine == blob["machine"]
    shipped = json.loads(COSTS_PATH.read_text())["costs"]
    print("[costs] measured now / shipped in fscert/costs.json: " + ", ".join(
        f"{k} ×{costs[k] / shipped[k]:.2f}" for k in sorted(costs) if shipped.get(k)))
    if os.environ.get("FSCERT_WRITE_COSTS") == "1":
        COSTS_PATH.write_text(json.dumps(blob, indent=1) + "\n")
        print(f"[costs] wrote {COSTS_PATH}")
