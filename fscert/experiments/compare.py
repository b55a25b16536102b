"""FS-LAR direct sampling vs NFIG vs the full-context AR baseline on the same MNIST images (no paper figure)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..autoencoder import decode_batched, encode_batched
from ..network import sample_network, train_network
from ..nfig import NFIGConfig, load_labels, sample_nfig, train_nfig
from ..sampling import sample
from .common import DEFAULT_Q, GAMMAS, TINY_AE, AESettings, Sizes, as_float, mean_psnr, memorization, mnist, train_ae
from .plotting import labelled_mosaics, pyplot, save_figure

M = 7                   # FS-LAR latent channels (8×8 latent)
FSLAR_RHO = 1
NFIG_CFG = 1.5          # classifier-free guidance of NFIG's samples
SHOWN = 16              # samples per generator in the figure
#: NFIG (next-frequency residuals) and its VAR-order ablation (plain next-scale residuals)
NFIG_VARIANTS = (("nfig", "frequency", "NFIG"), ("nfig_var_order", "scale", "NFIG, VAR order"))
#: a much smaller NFIG for the tests (the quick NFIG alone takes ≈ 8 s); full and quick keep NFIGConfig's sizes
TINY_NFIG = (("vae_channels", (8, 16, 32)), ("latent_dim", 8), ("codebook_size", 32), ("depth", 1),
             ("width", 32), ("heads", 2))


@dataclass(frozen=True)
class CompareSettings:
    ae: AESettings
    n_samples: int                      # samples per generator
    net_epochs: int                     # full-context AR network
    vae_epochs: int                     # NFIG's FR-VAE
    gpt_epochs: int                     # NFIG's transformer
    nfig_model: tuple[tuple[str, object], ...] = ()     # NFIGConfig architecture overrides


SIZES = Sizes(full=CompareSettings(AESettings(n_images=1000, hidden=256, epochs=10, finetune_epochs=3), 1000,
                                   20, 4, 6),
              quick=CompareSettings(AESettings(n_images=64, hidden=32, epochs=1, finetune_epochs=1), 64, 1, 1, 1),
              tiny=CompareSettings(TINY_AE, 16, 1, 1, 1,
                                   TINY_NFIG))


def exp_compare(out: Path, seed: int = 0, quick: bool = False, tiny: bool = False) -> dict:
    """FS-LAR direct sampling vs NFIG vs the full-context AR baseline on the same MNIST images.

    CPU settings: 1,000 MNIST images (the issue's setting) and 1,000 samples per generator.
    FS-LAR: 8×8, M = 7 autoencoder, 10 + 3 epochs, direct sampling at ρ = 1, q ≈ 0.0041.
    Full-context AR: ``train_network(full_context=True)`` (MLP over every earlier cell, A.1.6)
    on the same latents, 20 epochs, decoded by the same autoencoder. NFIG: ``train_nfig`` with
    reduced epochs (FR-VAE 4, transformer 6; the CPU defaults of 20/30 take ≈ 15 min), class
    conditional, cfg 1.5. Table: UIR / M-UIR at γ = 25, 30 against the training images,
    reconstruction PSNR, train and sample seconds; a 16-image sample grid per generator.
    Quick: 64 images, 64 samples, 1-epoch models. Tiny: the tests' autoencoder (16 images), 16 samples, a small NFIG.

    Paper: no direct counterpart (FS-LAR reports FIDs and UIR against other generators); this
    is the project's own comparison (issue text: 1,000 MNIST images, 1,000 samples each).
    """
    s = SIZES.pick(quick, tiny)
    n, n_gen = s.ae.n_images, s.n_samples
    x = mnist(s.ae)
    rows, shown = {}, {}

    model, _, t_ae = train_ae(x, s.ae, M, seed)
    z = encode_batched(model, x)
    recon_psnr = mean_psnr(as_float(decode_batched(model, z)), x)
    t0 = time.perf_counter()
    g = decode_batched(model, sample(z, n_gen, FSLAR_RHO, DEFAULT_Q, seed=seed))
    rows["fslar_direct_rho1"] = {"train_seconds": t_ae, "sample_seconds": time.perf_counter() - t0,
                                 "recon_psnr_db": recon_psnr, **memorization(as_float(g), x)}
    shown["FS-LAR direct ρ=1"] = g[:SHOWN]

    t0 = time.perf_counter()
    net, _ = train_network(z, 7, DEFAULT_Q, epochs=s.net_epochs, seed=seed, full_context=True)
    t_net = time.perf_counter() - t0
    t0 = time.perf_counter()
    g = decode_batched(model, sample_network(net, n_gen, seed=seed))
    rows["full_context_ar"] = {"train_seconds": t_ae + t_net, "sample_seconds": time.perf_counter() - t0,
                               "recon_psnr_db": recon_psnr, **memorization(as_float(g), x)}
    shown["full-context AR"] = g[:SHOWN]

    labels = load_labels("mnist", n, limit=n)
    for key, order, label in NFIG_VARIANTS:
        cfg = NFIGConfig(order=order, vae_epochs=s.vae_epochs, gpt_epochs=s.gpt_epochs, seed=seed,
                         **dict(s.nfig_model))
        t0 = time.perf_counter()
        nf, stats = train_nfig(x, labels, cfg, progress=False)
        t_nf = time.perf_counter() - t0
        t0 = time.perf_counter()
        g = sample_nfig(nf, n_gen, seed=seed, cfg=NFIG_CFG)
        rows[key] = {"train_seconds": t_nf, "sample_seconds": time.perf_counter() - t0,
                     "recon_psnr_db": float(stats["recon_psnr"]), **memorization(as_float(g), x)}
        shown[label] = g[:SHOWN]

    plot_compare(shown, out / "compare.png", n, n_gen)
    nfig_settings = {"vae_epochs": s.vae_epochs, "gpt_epochs": s.gpt_epochs, "cfg": NFIG_CFG}
    if s.nfig_model:
        nfig_settings["model"] = dict(s.nfig_model)
    res = {
        "settings": {"data": "mnist", "n_images": n, "n_samples": n_gen,
                     "fslar": {"latent": [M, 8, 8], "epochs": s.ae.epochs, "finetune_epochs": s.ae.finetune_epochs,
                               "rho": FSLAR_RHO, "q": DEFAULT_Q},
                     "ar_epochs": s.net_epochs, "nfig": nfig_settings, "gammas": list(GAMMAS),
                     "reference": "training images"},
        "paper": "no direct counterpart; issue: 1,000 MNIST images, 1,000 samples per generator",
        "rows": rows, "nfig": "trained",
    }
    res["summary"] = [f"{k}: UIR25 {v['uir_25']:.3f} M-UIR25 {v['m_uir_25']:.3f} UIR30 {v['uir_30']:.3f} "
                      f"M-UIR30 {v['m_uir_30']:.3f}, recon {v['recon_psnr_db']:.1f} dB, "
                      f"train {v['train_seconds']:.0f} s, "
                      f"sample {v['sample_seconds']:.1f} s" for k, v in rows.items()]
    return res


def plot_compare(shown: dict[str, np.ndarray], path: Path, n_images: int, n_samples: int) -> None:
    """The first samples of every generator, one labelled row each."""
    plt = pyplot()
    fig, ax = plt.subplots(1, 1, figsize=(7, 0.9 * len(shown) + 0.6))
    labelled_mosaics(ax, list(shown.items()))
    ax.set_title(f"{n_images} MNIST training images, first {SHOWN} of {n_samples} samples each", fontsize=9)
    save_figure(fig, path)
