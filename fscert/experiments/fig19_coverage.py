"""Fig. 18 and Fig. 19 (A.3.6): how much of the enumerated set repeated sampling reaches."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..empirical import DrawConfig, draw_samples
from ..enumeration import coverage_curve, empirical_sampler, enumerate_reachable, full_support
from ..noise import flip_probability
from ..sampling import sample
from .common import MNIST64, AESettings, Sizes, train_ae_mnist64_m1
from .plotting import pyplot, save_figure

#: (τ, κ) of part A: the default q ≈ 0.0041 and q = 0.125
NOISES = ((1.1, 0.5), (2.0, 0.5))
#: part B: the certificate of Fig. 15's empirical generator (ρ = 4, τ = 1.1, κ = 0.5)
RHO, TAU, KAPPA = 4, 1.1, 0.5
CROP = (slice(3, 6), slice(3, 6))       # centre 3×3 cells of the 8×8 latent


@dataclass(frozen=True)
class CoverageSettings:
    ae: AESettings
    draws: tuple[int, ...]      # numbers of draws at which coverage is read
    trials: int                 # T of part B's E


SIZES = Sizes(full=CoverageSettings(MNIST64.full, (640, 6400, 64000), 10),
              quick=CoverageSettings(MNIST64.quick, (10, 100, 1000), 2),
              tiny=CoverageSettings(MNIST64.tiny, (10, 100, 1000), 2))


def exp_coverage(out: Path, seed: int = 0, quick: bool = False, tiny: bool = False) -> dict:
    """Fig. 18 and Fig. 19 (A.3.6): how much of the enumerated set repeated sampling reaches.

    Part A (Fig. 18/19, the paper's setting): the 1×3×3 latent. The autoencoder only builds
    8/16/32 grids, so this part works on latents alone: the centre 3×3 crops (rows/cols 3..5)
    of the 64 MNIST 1×8×8 training latents are the source latents; ``full_support`` lists all
    2^9 = 512 latents with their exact direct-sampling probabilities (ρ = 1), and direct
    sampling (``fscert.sampling.sample``) is drawn 640 / 6,400 / 64,000 times. Done at the
    default q ≈ 0.0041 (τ = 1.1, κ = 0.5) and at q = 0.125 (τ = 2, κ = 0.5).
    Part B: the certificate of the MNIST-64 1×8×8 empirical generator (E with T = 10, ρ = 4,
    as in Fig. 15's experiment): the listed latents and probabilities vs the empirical sampler.
    Quick: 16 images, 1,000 draws at most, T = 2. Tiny: the tests' autoencoder.

    Paper: at 640 draws many duplicates and mostly good images; at 64,000 draws (1,000× the
    training set) "almost all" of the 512 generated images appeared.
    """
    s = SIZES.pick(quick, tiny)
    _, _, z, secs = train_ae_mnist64_m1(s.ae, seed)
    crops = np.ascontiguousarray(z[:, :, CROP[0], CROP[1]])
    part_a = []
    for tau, kappa in NOISES:
        q = flip_probability(tau, kappa)
        lat, prob = full_support(crops, 1, q)

        def sampler(n: int, draw_seed: int, _q: float = q) -> np.ndarray:
            return sample(crops, n, 1, _q, seed=draw_seed)

        cov = coverage_curve(lat, prob, sampler, s.draws, seed)
        crop_keys = [c.tobytes() for c in crops]
        part_a.append({"tau": tau, "kappa": kappa, "q": q, "n_latents": len(lat), "prob_sum": float(prob.sum()),
                       "distinct_source_crops": int(len(set(crop_keys))),
                       "mass_of_source_crops": float(prob[np.isin([l.tobytes() for l in lat], crop_keys)].sum()),
                       "prob_sorted": np.sort(prob)[::-1], "coverage": cov})
    E = draw_samples(z, DrawConfig(trials=s.trials, tau=TAU, kappa=KAPPA, seed=seed))
    lst = enumerate_reachable(E.latents, RHO, E.counts)
    cov_b = coverage_curve(lst.latents, lst.prob, empirical_sampler(E.latents, RHO, E.counts), s.draws, seed)
    part_b = {"rho": RHO, "trials": s.trials, "listed": lst.count, "dead_end_mass": lst.dead_end_mass,
              "coverage": cov_b}
    plot_coverage(part_a, part_b, s.draws, out / "coverage.png")
    res = {
        "settings": {"data": "mnist", "n_images": len(z), "draws": list(s.draws), "crop": "rows 3..5, cols 3..5",
                     "rho_3x3": 1, "certificate": {"rho": RHO, "trials": s.trials, "tau": TAU, "kappa": KAPPA}},
        "paper": "Fig. 18/19: 512 latents of a 1×3×3 model; 640 draws show many duplicates of good images, "
                 "64,000 draws show almost all 512",
        "full_support_3x3": part_a, "certificate_8x8": part_b, "train_seconds": secs,
    }
    res["summary"] = []
    for a in part_a:
        res["summary"].append(f"3×3, q={a['q']:.4f}: " + ", ".join(
            f"{c['n_draws']} draws → {c['distinct']}/512 latents, mass {c['mass']:.4f}" for c in a["coverage"]))
    res["summary"].append(f"8×8 certificate ({lst.count} listed): " + ", ".join(
        f"{c['n_draws']} → {c['distinct']} ({c['fraction']:.2f}), mass {c['mass']:.4f}, outside {c['outside']}"
        for c in cov_b))
    return res


def plot_coverage(part_a: list[dict], part_b: dict, draws: tuple[int, ...], path: Path) -> None:
    """Fig. 18 (sorted exact probabilities of the 512 latents) and Fig. 19 (coverage vs draws)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for a in part_a:
        axes[0].semilogy(np.arange(1, len(a["prob_sorted"]) + 1), np.maximum(a["prob_sorted"], 1e-30),
                         label=f"q={a['q']:.4f}")
    for n in draws:
        axes[0].axhline(1.0 / n, color="0.7", lw=0.8, ls=":")
    axes[0].set_ylim(max(1e-30, min(float(a["prob_sorted"][-1]) for a in part_a) / 10), 1)
    axes[0].set_xlabel("rank of the 512 latents (1×3×3)")
    axes[0].set_ylabel("exact probability")
    axes[0].set_title("Fig. 18: full support, sorted (dotted: 1/draws)", fontsize=9)
    axes[0].legend(fontsize=7)
    for a in part_a:
        ns = [c["n_draws"] for c in a["coverage"]]
        axes[1].semilogx(ns, [c["fraction"] for c in a["coverage"]], "o-", label=f"3×3 q={a['q']:.4f}: fraction")
        axes[1].semilogx(ns, [c["mass"] for c in a["coverage"]], "o--", label=f"3×3 q={a['q']:.4f}: mass")
    cov_b = part_b["coverage"]
    ns = [c["n_draws"] for c in cov_b]
    axes[1].semilogx(ns, [c["fraction"] for c in cov_b], "s-", label=f"8×8 certificate ({part_b['listed']}): fraction")
    axes[1].semilogx(ns, [c["mass"] for c in cov_b], "s--", label="8×8 certificate: mass")
    axes[1].set_ylim(0, 1.02)
    axes[1].set_xlabel("draws")
    axes[1].set_title("Fig. 19: share of the listed images reached", fontsize=9)
    axes[1].legend(fontsize=6)
    save_figure(fig, path)
