"""Quality and speed of the default autoencoder on the embedded MNIST-1000 (issue: foundation §6).

Prints: binarised reconstruction PSNR after the default two-phase training, the training wall
time, training throughput (images/s through phase 1) and decoding throughput (images/s), with
a reference measured in the same run: one forward pass of the decoder's widest 1×1 layer as a
plain matrix product, so the ratio is comparable across machines.
"""
import time

import numpy as np
import torch

from fscert.autoencoder import AEConfig, decode_batched
from fscert.data import load_images
from fscert.fit import Fit
from fscert.training import TrainConfig, evaluate, train



def test_default_training_quality_and_throughput():
    x = load_images("mnist", fit=Fit(pad=True))          # the 32×32 canvas (README figures); shapes: test_bench_shapes
    cfg = TrainConfig()
    t0 = time.perf_counter()
    model, history = train(x, AEConfig(image_channels=1), cfg, progress=False)
    seconds = time.perf_counter() - t0
    stats = evaluate(model, torch.from_numpy(x))
    z = model.encode(torch.from_numpy(x)).numpy()
    t1 = time.perf_counter()
    decode_batched(model, np.concatenate([z] * 4), batch=256)
    dec = time.perf_counter() - t1
    # reference: the decoder's hidden×hidden layer over the same number of cells, as one matmul
    ae = AEConfig()
    h = ae.hidden
    a, b = torch.randn(4 * len(z) * 64, h), torch.randn(h, h)
    t2 = time.perf_counter()
    a @ b
    ref = time.perf_counter() - t2
    n_steps = cfg.epochs + cfg.finetune_epochs
    print(f"\n[training] MNIST-1000, defaults (M={ae.latent_channels}, R={ae.receptive_field}, "
          f"hidden={h}, {cfg.epochs}+{cfg.finetune_epochs} epochs): binarised PSNR {stats['psnr']:.2f} dB "
          f"(target ≥ 28), binary rate {stats['binary_rate']:.3f}, train time {seconds:.0f} s (budget 600 s)")
    print(f"[training] throughput {len(x) * n_steps / seconds:.0f} images/s; decoding {4 * len(z) / dec:.0f} images/s; "
          f"decode time / one {h}×{h} matmul over the same cells = {dec / ref:.1f}×")
    assert np.isfinite(stats["psnr"])
