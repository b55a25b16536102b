"""Benchmark of the audit on a Dask cluster (issue 14 item 6). Run with `make bench`; the
assertions check results (identical audits), never wall-clock times.

The audit of 10,000 generated images (the CIFAR-10 test set) against 200,000 training images
(the 50,000 CIFAR-10 training images decoded from `../shared/datasets/cifar10/`, four times,
each copy but the first with a small deterministic perturbation: ±1/255 on 1 % of the values),
in one process (torch's default threads) and on a LocalCluster of 2 workers (one thread each),
as a ratio measured in the same run, with the peak resident memory of each worker; then the
scaling law: the 2-worker audit at 25k / 50k / 100k / 200k training images, fitted to
time = a + b·N, from which the time for 10^6 training images on W workers is projected
(b·10^6·2/W + a: a lower bound, as if all of the work split evenly over workers; the
client's replay of the float32 merge does not; stated as a projection, not a measurement).

``FSCERT_BENCH_CACHE=DIR`` keeps the 200,000-row training file (uint8, 614 MB) in DIR.
``FSCERT_BENCH_SIZES=25000,50000`` measures other sizes (the largest one is also run in one
process).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10"
SIZES = tuple(int(v) for v in os.environ.get("FSCERT_BENCH_SIZES", "25000,50000,100000,200000").split(","))
N_GEN = 10_000


def _decode_train() -> np.ndarray:
    """The 50,000 CIFAR-10 training JPEGs decoded (uint8 N×3×32×32)."""
    import io

    from PIL import Image

    z = np.load(CIFAR / "cifar10_jpegq75_bytes.npz")
    data, off = z["train_jpeg"], z["train_offsets"]
    out = np.empty((len(off) - 1, 3, 32, 32), np.uint8)
    for i in range(len(off) - 1):
        im = Image.open(io.BytesIO(data[off[i]:off[i + 1]].tobytes())).convert("RGB")
        out[i] = np.asarray(im).transpose(2, 0, 1)
    return out


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> Path:
    if not (CIFAR / "cifar10_jpegq75_bytes.npz").exists():
        pytest.skip("CIFAR-10 not in ../shared/datasets")
    cache = os.environ.get("FSCERT_BENCH_CACHE")
    d = Path(cache) / "cifar200k" if cache else tmp_path_factory.mktemp("cifar200k")
    path = d / "train.npy"
    if not path.exists():
        d.mkdir(parents=True, exist_ok=True)
        base = _decode_train()
        rng = np.random.default_rng(0)
        copies = [base]
        for _ in range(3):
            c = base.astype(np.int16)
            hit = rng.random(c.shape) < 0.01
            c[hit] += rng.choice(np.array([-1, 1], np.int16), size=int(hit.sum()))
            copies.append(np.clip(c, 0, 255).astype(np.uint8))
        np.save(path, np.concatenate(copies))
    return path


def _gen() -> np.ndarray:
    x = np.load(CIFAR / "cifar10_test_jpegq75_decoded.npz")["images"][:N_GEN]
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32) / 255.0


class PeakRSS:
    """Peak resident memory of this process and of each child process (the workers), sampled."""

    def __init__(self, every: float = 0.5):
        import psutil

        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._me = psutil.Process()
        self._t = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._t.start()

    def _run(self, every: float) -> None:
        import psutil

        while not self._stop.is_set():
            for p in [self._me] + self._me.children(recursive=True):
                try:
                    self.peak[p.pid] = max(self.peak.get(p.pid, 0), p.memory_info().rss)
                except psutil.Error:
                    pass
            self._stop.wait(every)

    def stop(self) -> tuple[float, list[float]]:
        """(this process's peak GiB, the children's peaks GiB, largest first)."""
        self._stop.set()
        self._t.join()
        me = self.peak.pop(self._me.pid, 0)
        return me / 2**30, sorted((v / 2**30 for v in self.peak.values()), reverse=True)


def _audit(train: np.ndarray, gen: np.ndarray, client=None) -> tuple[dict, float]:
    from fscert.audit import audit, report_json

    t0 = time.perf_counter()
    res = audit(train, gen, client=client)
    return report_json(res, per_image=False), time.perf_counter() - t0


def test_audit_200k_single_vs_workers_and_scaling(train_file):
    """Identical audits single vs 2 workers at the largest size; time ratio, peak memory per
    worker; 2-worker times at every size and the linear fit."""
    from fscert.cluster import client_for

    rows = np.load(train_file, mmap_mode="r")
    gen = _gen()
    times: dict[int, float] = {}
    largest = max(SIZES)
    with client_for(None, 2) as client:
        for n in sorted(SIZES):
            train = np.asarray(rows[:n], np.float32) / 255.0
            mon = PeakRSS()
            got, times[n] = _audit(train, gen, client)
            main_gib, workers_gib = mon.stop()
            print(f"\n{n:,} training images, 2 workers: {times[n]:.1f} s; peak RSS per worker "
                  + ", ".join(f"{v:.2f}" for v in workers_gib[:2]) + f" GiB (client {main_gib:.2f} GiB)", flush=True)
            if n == largest:
                cluster_json = got
            del train
    train = np.asarray(rows[:largest], np.float32) / 255.0
    mon = PeakRSS()
    want, t_single = _audit(train, gen)
    main_gib, _ = mon.stop()
    assert json.dumps(want, sort_keys=True, default=str) == json.dumps(cluster_json, sort_keys=True, default=str)
    print(f"{largest:,} training images, one process: {t_single:.1f} s (peak RSS {main_gib:.2f} GiB); "
          f"2 workers ×{t_single / times[largest]:.2f} faster; audits identical")
    if len(times) >= 2:
        n_ = np.array(sorted(times), float)
        t_ = np.array([times[int(v)] for v in n_])
        b, a = np.polyfit(n_, t_, 1)
        print(f"fit (2 workers): time ≈ {a:.1f} s + {b * 1e5:.2f} s per 100,000 training images "
              f"(max residual {np.abs(a + b * n_ - t_).max():.1f} s)")
        for w in (2, 8, 32):
            print(f"  projection, 10^6 training images on {w} workers: at least {a + b * 1e6 * 2 / w:.0f} s "
                  "(not measured: assumes all of the time divides over the workers, which the client's merge "
                  "does not)")
