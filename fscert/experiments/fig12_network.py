"""A.3.3 / Fig. 12: a network approximation of the sampling distribution vs direct sampling, per ρ."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..autoencoder import decode_batched, encode_batched
from ..metrics import nearest_train
from ..network import sample_network, train_network
from ..sampling import sample
from .common import (DEFAULT_Q, TINY_AE, AESettings, Sizes, as_float, latent_copies, mean_psnr, memorization,
                     memorization_of, mnist, train_ae)
from .plotting import labelled_mosaics, pyplot, save_figure

M = 7                       # latent channels (8×8 latent)
FULL_CONTEXT_RHO = 7        # on the 8×8 grid ρ = 7 is the whole past (``full_context``)
NET_HIDDEN, NET_LAYERS = 256, 2
SHOWN = 16                  # samples per sampler in the figure


@dataclass(frozen=True)
class NetworkSettings:
    ae: AESettings
    n_samples: int              # samples from each sampler
    rhos: tuple[int, ...]
    net_epochs: int


SIZES = Sizes(full=NetworkSettings(AESettings(n_images=500, hidden=256, epochs=25, finetune_epochs=5), 500,
                                   (1, 3, 5, 7), 40),
              quick=NetworkSettings(AESettings(n_images=32, hidden=32, epochs=2, finetune_epochs=1), 32, (1, 7), 2),
              tiny=NetworkSettings(TINY_AE, 16, (1, 7), 1))


def exp_network(out: Path, seed: int = 0, quick: bool = False, tiny: bool = False) -> dict:
    """A.3.3 / Fig. 12: network approximation vs direct sampling at ρ = 1, 3, 5 and 7 (= full context).

    CPU settings: 500 MNIST images (paper: 1,000), 8×8 latent M = 7 trained 25 + 5 epochs; per
    ρ an MLP (``fscert.network.train_network``, hidden 256, 2 layers, cross-entropy) trained 40
    epochs on flipped training latents at the default q ≈ 0.0041; ρ = 7 on the 8×8 grid is the
    whole past (``full_context``). 500 samples from each sampler. Reported: the fraction of
    sampled latents equal to a training latent, the fraction of decoded samples with PSNR ≥ 30
    to the nearest decoded training latent (near copies), and UIR / M-UIR at γ = 25, 30.
    Quick: 32 images, ρ = 1 and 7, 2 epochs, 32 samples. Tiny: the tests'
    autoencoder (16 images), 1 epoch, 16 samples.

    Paper: at ρ = 1 the network gives barely any training images, direct sampling a few; at
    ρ = 3, 5 some training images appear; at ρ = 7 the network is still imperfect while direct
    sampling gives almost only training images.
    """
    s = SIZES.pick(quick, tiny)
    x = mnist(s.ae)
    model, _, secs = train_ae(x, s.ae, M, seed)
    z = encode_batched(model, x)
    recon = as_float(decode_batched(model, z))
    rows, shown = [], []
    for rho in s.rhos:
        full = rho >= FULL_CONTEXT_RHO
        t0 = time.perf_counter()
        net, losses = train_network(z, rho, DEFAULT_Q, epochs=s.net_epochs, seed=seed, full_context=full,
                                    hidden=NET_HIDDEN, layers=NET_LAYERS)
        row: dict = {"rho": rho, "full_context": full, "net_final_loss": losses[-1],
                     "net_train_seconds": time.perf_counter() - t0}
        for name, zs in (("network", sample_network(net, s.n_samples, seed=seed)),
                         ("direct", sample(z, s.n_samples, rho, DEFAULT_Q, seed=seed, full_context=full))):
            gen_u8 = decode_batched(model, zs)
            gen = as_float(gen_u8)
            _, ps = nearest_train(gen, recon)
            row[name] = {"latent_copies": latent_copies(zs, z), "near_copies_30": float((ps >= 30).mean()),
                         "vs_recon": memorization_of(gen, ps), "vs_train": memorization(gen, x)}
            shown.append((f"{name} ρ={rho}", gen_u8[:SHOWN]))
        rows.append(row)
    plot_network(rows, shown, s, out / "network.png")
    res = {
        "settings": {"data": "mnist", "n_images": s.ae.n_images, "latent": [M, 8, 8], "epochs": s.ae.epochs,
                     "finetune_epochs": s.ae.finetune_epochs, "net_epochs": s.net_epochs, "net_hidden": NET_HIDDEN,
                     "net_layers": NET_LAYERS, "q": DEFAULT_Q, "rhos": list(s.rhos), "n_samples": s.n_samples},
        "paper": "A.3.3 / Fig. 12 (1,000 MNIST, MLP): ρ = 1 network gives barely any training images, direct a few; "
                 "ρ = 3, 5 some; ρ = 7 (global) network still imperfect, direct almost only training images",
        "recon_psnr_db": mean_psnr(recon, x), "train_seconds": secs, "rows": rows,
    }
    res["summary"] = [f"ρ={r['rho']}: network latent copies {r['network']['latent_copies']:.3f}, near copies "
                      f"{r['network']['near_copies_30']:.3f}, UIR30 {r['network']['vs_recon']['uir_30']:.3f} | direct "
                      f"{r['direct']['latent_copies']:.3f}, {r['direct']['near_copies_30']:.3f}, "
                      f"{r['direct']['vs_recon']['uir_30']:.3f}" for r in rows]
    return res


def plot_network(rows: list[dict], shown: list[tuple[str, np.ndarray]], s: NetworkSettings, path: Path) -> None:
    """Latent copies and UIR(30) against ρ per sampler, and the first samples of each (Fig. 12)."""
    plt = pyplot()
    fig = plt.figure(figsize=(11, 3.6 + 0.5 * len(s.rhos)))
    gs = fig.add_gridspec(1, 2, width_ratios=[1, 1.3])
    ax = fig.add_subplot(gs[0])
    for name, c in (("network", "C0"), ("direct", "C1")):
        ax.plot(s.rhos, [r[name]["latent_copies"] for r in rows], "o-", color=c, label=f"{name}: latent copies")
        ax.plot(s.rhos, [r[name]["vs_recon"]["uir_30"] for r in rows], "s--", color=c, label=f"{name}: UIR γ=30")
    ax.set_xlabel("observation range ρ (7 = full context)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    ax.set_title(f"A.3.3 (CPU): {s.ae.n_images} MNIST, {s.n_samples} samples each", fontsize=9)
    ax2 = fig.add_subplot(gs[1])
    labelled_mosaics(ax2, shown)
    ax2.set_title("Fig. 12: first 16 samples per sampler", fontsize=9)
    save_figure(fig, path)
