"""Fig. 15 (A.3.6): generated and unique generated images vs sampling trials T = 1..10."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..autoencoder import decode_batched
from ..empirical import DrawConfig, draw_samples
from ..enumeration import enumerate_reachable
from ..enumeration import trials_curve
from ..metrics import nearest_train
from ..noise import flip_probability
from .common import MNIST64, AESettings, Sizes, as_float, finetuned_on, mean_psnr, train_ae_mnist64_m1
from .plotting import pyplot, save_figure

#: A.3.6's setting (τ and κ are also the library's DrawConfig() defaults); γ of "unique"
RHO, TAU, KAPPA, GAMMA = 4, 1.1, 0.5, 30.0


@dataclass(frozen=True)
class TrialsSettings:
    ae: AESettings
    trials: tuple[int, ...]
    finetune_epochs: int        # decoder fine-tuning on E(max T)


SIZES = Sizes(full=TrialsSettings(MNIST64.full, tuple(range(1, 11)), 20),
              quick=TrialsSettings(MNIST64.quick, (1, 2, 3), 2),
              tiny=TrialsSettings(MNIST64.tiny, (1, 2, 3), 1))


def exp_trials(out: Path, seed: int = 0, quick: bool = False, tiny: bool = False) -> dict:
    """Fig. 15 (A.3.6): generated and unique generated images vs sampling trials T = 1..10.

    Settings (the paper's): 64 MNIST images, 1×8×8 latent (M = 1), ρ = 4, τ = 1.1, κ = 0.5
    (q = ½(1 − 1/τ)^(1/κ) ≈ 0.0041). CPU: the autoencoder trains 150 + 30 epochs (hidden 256).
    E(T) is drawn with one seed, so E(T) ⊂ E(T+1); the decoder is fine-tuned **once**, on E(10)
    (20 epochs), which contains every smaller E(T) — instead of once per T as in the paper.
    "unique" = listed images whose PSNR to every decoded training latent is < 30 dB (the
    reference is the fine-tuned decoder's reconstruction of the 64 training latents, see the
    package docstring); ``unique_vs_train_images`` uses the raw images instead.
    Quick: 16 images, T = 1..3, tiny model. Tiny: the tests' autoencoder.

    Paper: 69 images at T = 1 (64 training images + 5 new, all very close to training
    images), over 400 at T = 10.
    """
    s = SIZES.pick(quick, tiny)
    x, model, z, secs = train_ae_mnist64_m1(s.ae, seed)
    E = draw_samples(z, DrawConfig(trials=max(s.trials), tau=TAU, kappa=KAPPA, seed=seed))
    ft = finetuned_on(model, E, x, s.finetune_epochs, seed)
    recon = as_float(decode_batched(ft, z))
    recon_psnr = mean_psnr(recon, x)

    def decoder(lat: np.ndarray, t: int) -> np.ndarray:
        return decode_batched(ft, lat)

    rows = trials_curve(z, RHO, TAU, KAPPA, trials=s.trials, seed=seed, decoder=decoder, train_images=recon,
                        gamma=GAMMA)
    # the same count against the raw training images (the paper's reference)
    for r in rows:
        r["unique_vs_train_images"] = None
    if rows[-1]["listed"]:
        for r in rows:
            Et = draw_samples(z, DrawConfig(trials=r["trials"], tau=TAU, kappa=KAPPA, seed=seed))
            lst = enumerate_reachable(Et.latents, RHO, Et.counts)
            _, ps = nearest_train(as_float(decode_batched(ft, lst.latents)), x)
            r["unique_vs_train_images"] = int((ps < GAMMA).sum())
    plot_trials(rows, out / "trials.png", len(x))
    res = {
        "settings": {"data": "mnist", "n_images": len(x), "latent": [1, 8, 8], "rho": RHO, "tau": TAU, "kappa": KAPPA,
                     "q": flip_probability(TAU, KAPPA), "trials": list(s.trials), "gamma": GAMMA,
                     "decoder": f"fine-tuned once on E({max(s.trials)}) (contains every E(T), same seed)",
                     "unique_reference": "decoded training latents (fine-tuned decoder)"},
        "paper": "Fig. 15: 69 images at T = 1 (64 training + 5 new), over 400 at T = 10",
        "recon_psnr_db": recon_psnr, "train_seconds": secs, "rows": rows,
    }
    res["summary"] = [f"T={r['trials']:>2}: generated {r['reachable']}, training copies {r['training_copies']}, "
                      f"stitched {r['stitched']}, unique {r['unique']} (vs raw images {r['unique_vs_train_images']})"
                      for r in rows] + [f"decoder recon PSNR {recon_psnr:.2f} dB"]
    return res


def plot_trials(rows: list[dict], path: Path, n_images: int) -> None:
    """Fig. 15: generated, unique and stitched images against T."""
    plt = pyplot()
    fig, ax = plt.subplots(1, 1, figsize=(5.5, 3.6))
    ts = [r["trials"] for r in rows]
    ax.plot(ts, [r["reachable"] for r in rows], "o-", label="generated images (reachable)")
    ax.plot(ts, [r["unique"] or 0 for r in rows], "s-", label="unique (PSNR < 30 to decoded train latents)")
    ax.plot(ts, [r["stitched"] or 0 for r in rows], "^--", label="stitched (not a sample of E)")
    ax.set_xlabel("sampling trials T")
    ax.set_ylabel("images")
    ax.set_title(f"Fig. 15 (CPU): MNIST-{n_images}, 1×8×8, ρ={RHO}, τ={TAU}, κ={KAPPA}", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)
