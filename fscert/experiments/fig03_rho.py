"""Fig. 3 (§5.1): UIR and M-UIR vs the observation range ρ."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..autoencoder import decode_batched, encode_batched
from ..sampling import sample
from .common import (DEFAULT_KAPPA, DEFAULT_Q, DEFAULT_TAU, GAMMAS, TINY_AE, AESettings, Sizes, as_float, latent_copies,
                     mean_psnr, memorization, mnist, train_ae)
from .plotting import pyplot, save_figure

M = 7          # latent channels (8×8 latent, Tab. 1 architecture)


@dataclass(frozen=True)
class RhoSettings:
    ae: AESettings
    n_samples: int              # direct samples per ρ
    rhos: tuple[int, ...]


SIZES = Sizes(full=RhoSettings(AESettings(n_images=500, hidden=256, epochs=25, finetune_epochs=5), 5000,
                               tuple(range(6))),
              quick=RhoSettings(AESettings(n_images=32, hidden=32, epochs=2, finetune_epochs=1), 64, (0, 1, 2)),
              tiny=RhoSettings(TINY_AE, 32, (0, 1)))


def exp_rho(out: Path, seed: int = 0, quick: bool = False, tiny: bool = False) -> dict:
    """Fig. 3 (§5.1): UIR and M-UIR vs the observation range ρ = 0..5.

    CPU settings: 500 MNIST images (paper: 500 CIFAR-10), 8×8 latent with M = 7 (Tab. 1
    architecture, hidden 256) trained 25 + 5 epochs; direct sampling (Eq. 6–8) of 5,000 latents
    per ρ at the default q ≈ 0.0041 (τ = 1.1, κ = 0.5), decoded, then UIR (Eq. 9) and greedy M-UIR
    (Eq. 10) at γ = 25 and 30, against the training images and against the decoded training
    latents (package docstring). Also: the fraction of sampled latents equal to a training latent.
    Quick: 32 images, 64 samples, ρ = 0..2. Tiny: the tests' autoencoder (16 images), 32 samples, ρ = 0, 1.

    Paper: UIR and M-UIR fall as ρ grows and reach 0 at ρ = 5.
    """
    s = SIZES.pick(quick, tiny)
    x = mnist(s.ae)
    model, _, secs = train_ae(x, s.ae, M, seed)
    z = encode_batched(model, x)
    recon = as_float(decode_batched(model, z))
    recon_psnr = mean_psnr(recon, x)
    rows = []
    for rho in s.rhos:
        t0 = time.perf_counter()
        zs = sample(z, s.n_samples, rho, DEFAULT_Q, seed=seed)
        gen = as_float(decode_batched(model, zs))
        t_s = time.perf_counter() - t0
        rows.append({"rho": rho, "latent_copies": latent_copies(zs, z), "sample_seconds": t_s,
                     "vs_train": memorization(gen, x), "vs_recon": memorization(gen, recon)})
    plot_rho(rows, s, out / "rho.png")
    res = {
        "settings": {"data": "mnist", "n_images": s.ae.n_images, "latent": [M, 8, 8], "epochs": s.ae.epochs,
                     "finetune_epochs": s.ae.finetune_epochs, "n_samples": s.n_samples, "q": DEFAULT_Q,
                     "tau": DEFAULT_TAU, "kappa": DEFAULT_KAPPA, "rhos": list(s.rhos), "gammas": list(GAMMAS),
                     "m_uir": "greedy (strict also given)"},
        "paper": "Fig. 3: 500 CIFAR-10 images, 5,000 samples; UIR and M-UIR decrease with ρ and are 0 at ρ = 5",
        "recon_psnr_db": recon_psnr, "train_seconds": secs, "rows": rows,
    }
    res["summary"] = [f"ρ={r['rho']}: latent copies {r['latent_copies']:.3f}; "
                      f"vs train UIR25 {r['vs_train']['uir_25']:.3f} "
                      f"UIR30 {r['vs_train']['uir_30']:.3f}; vs recon UIR30 {r['vs_recon']['uir_30']:.3f} "
                      f"M-UIR30 {r['vs_recon']['m_uir_30']:.3f}" for r in rows]
    res["summary"].append(f"autoencoder recon PSNR {recon_psnr:.2f} dB")
    return res


def plot_rho(rows: list[dict], s: RhoSettings, path: Path) -> None:
    """Fig. 3: UIR and M-UIR at both γ against ρ, against the training images and the reconstructions."""
    plt = pyplot()
    rhos = list(s.rhos)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for ax, ref in zip(axes, ("vs_train", "vs_recon")):
        for g, st in zip(GAMMAS, ("-", "--")):
            k = f"{g:g}"
            ax.plot(rhos, [r[ref][f"uir_{k}"] for r in rows], "o" + st, color="C0", label=f"UIR γ={k}")
            ax.plot(rhos, [r[ref][f"m_uir_{k}"] for r in rows], "s" + st, color="C1", label=f"M-UIR γ={k}")
        ax.plot(rhos, [1 - r["latent_copies"] for r in rows], "k:", label="1 − latent copy rate")
        ax.set_xlabel("observation range ρ")
        ax.set_title(f"Fig. 3 (CPU), {ref.replace('_', ' ')} ({s.ae.n_images} MNIST, {s.n_samples} samples)",
                     fontsize=9)
        ax.set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=7)
    save_figure(fig, path)
