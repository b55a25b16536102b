"""Speed and fidelity at every image and latent shape (issue 15 item 5). Run with `make bench`;
assertions check results, never times.

Per shape: training throughput (images/s through both phases) and the binarised
reconstruction PSNR after a short training on 256 images, with a reference measured in the
same run (the 32×32 / 8×8 shape of Tab. 2) so the ratios compare across machines; then the
exact direct sampler and the enumeration's counting pass on each latent grid.

Images: MNIST at its stored 28×28 (7×7 and 14×14 grids), padded to 32×32 (8×8, the paper's),
resized to 64×64 (16×16), the 25×25 LFW faces (5×5 grid of 5×5-pixel cells), and 24×40
images of two MNIST digits side by side (6×10 grid).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fscert.autoencoder import AEConfig, encode_batched
from fscert.data import load_images
from fscert.fit import Fit
from fscert.training import TrainConfig, evaluate, train

FACES = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "faces" / "lfw_subset.npy"
N = 256
EPOCHS = (30, 10)


def _images(name: str) -> np.ndarray:
    if name == "mnist28":
        return load_images("mnist", limit=N)
    if name == "mnist32":
        return load_images("mnist", limit=N, fit=Fit(pad=True))
    if name == "mnist64":
        return load_images("mnist", limit=N, fit=Fit(resize=(64, 64)))
    if name == "faces25":
        if not FACES.exists():
            pytest.skip("faces not in ../shared/datasets")
        return load_images(FACES, limit=100)
    x = load_images("mnist", limit=2 * N)[:, 0]
    return np.ascontiguousarray(np.concatenate([x[0::2, 2:26, 4:24], x[1::2, 2:26, 4:24]], axis=2)[:, None])


SHAPES = [("mnist32", (8, 8)), ("mnist28", (7, 7)), ("mnist28", (14, 14)), ("mnist64", (16, 16)),
          ("faces25", (5, 5)), ("rect24x40", (6, 10))]
_REF: dict[str, float] = {}


@pytest.mark.parametrize("name,grid", SHAPES, ids=[f"{n}-{g[0]}x{g[1]}" for n, g in SHAPES])
def test_shape_training_sampling_counting(name, grid):
    from fscert.empirical import DrawConfig, draw_samples
    from fscert.enumeration import count_reachable
    from fscert.latents import LatentSet
    from fscert.patch_bank import build_bank
    from fscert.sampling import sample_direct

    x = _images(name)
    cfg = AEConfig.for_images(x.shape[1:], grid, AEConfig(latent_channels=7))
    t0 = time.perf_counter()
    model, _ = train(x, cfg, TrainConfig(epochs=EPOCHS[0], finetune_epochs=EPOCHS[1], seed=0), progress=False)
    secs = time.perf_counter() - t0
    rate = len(x) * sum(EPOCHS) / secs
    _REF.setdefault("rate", rate)
    psnr = evaluate(model, torch.from_numpy(x))["psnr"]
    z = encode_batched(model, x)
    bank = build_bank(z, 1)
    t1 = time.perf_counter()
    s = sample_direct(bank, 64, q=0.004, seed=0)
    t_sample = time.perf_counter() - t1
    E = draw_samples(LatentSet(z[:64]), DrawConfig(trials=10))
    t2 = time.perf_counter()
    c = count_reachable(E.latents, 4, E.counts)
    t_count = time.perf_counter() - t2
    assert s.shape[1:] == cfg.latent_shape and np.isfinite(psnr) and c.count >= 1
    print(f"\n{name} {'×'.join(map(str, cfg.image_hw))}, grid {grid[0]}×{grid[1]} "
          f"({'×'.join(map(str, cfg.patch_hw))} px cells), M = 7: training {rate:.0f} images/s "
          f"(×{rate / _REF['rate']:.2f} of the 32×32/8×8 rate), binarised PSNR {psnr:.2f} dB after "
          f"{EPOCHS[0]}+{EPOCHS[1]} epochs on {len(x)} images; direct sampler 64 latents in {t_sample:.2f} s; "
          f"count at ρ = 4 of 64 images × 10 trials: {c.count:,} reachable in {t_count:.2f} s")
