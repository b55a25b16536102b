"""The empirical set E of exhaustive search (DESIGN §6.1; paper §4.2 "Exhaustive searching", A.3.6).

For every training latent and every trial, one Rademacher sample of the whole latent: each
bit flipped independently with probability q = flip_probability(τ, κ) (Eq. 5, Eq. 26). The
S·T samples are merged into one row per distinct (sample, source image) pair with its
multiplicity ``counts``; ``source_index`` names the training image it came from (the target
when the decoder is fine-tuned on E, DESIGN §6.2).

Order is deterministic: rows sorted by source image, then by the trial in which the sample
first appeared. The random stream is a torch generator seeded with ``seed``; trial t draws
the flips of every source latent at once, trials in order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import FscertError
from .latents import LatentSet, validate_latents
from .noise import flip_probability, rademacher_flip


@dataclass
class DrawConfig:
    """Options of the draws (A.3.6): T Rademacher samples per training latent at noise (τ, κ).

    q = ½(1 − 1/1.1)^(1/0.5) ≈ 0.0041 flips per bit, the regime in which the paper's MNIST-64
    certification lists hundreds of images (A.3.6); `fscert sample` reads the same τ and κ."""

    trials: int = 10
    tau: float = 1.1
    kappa: float = 0.5
    seed: int = 0

    def validate(self) -> "DrawConfig":
        if not isinstance(self.trials, (int, np.integer)) or self.trials < 1:
            raise FscertError(f"--trials must be ≥ 1, got {self.trials}")
        flip_probability(self.tau, self.kappa)      # validates τ, κ
        return self

    @property
    def flip_prob(self) -> float:
        return flip_probability(self.tau, self.kappa)


@dataclass
class Empirical:
    """E: distinct (sample, source) rows with multiplicities (what `fscert draw` writes)."""

    latents: np.ndarray         # int8 (K, M, H, W)
    counts: np.ndarray          # int64 (K,) ≥ 1, Σ = S·T (times the input multiplicities)
    source_index: np.ndarray    # int64 (K,) index of the source training image


def draw_samples(source: LatentSet | np.ndarray, cfg: DrawConfig) -> Empirical:
    """T Rademacher samples of every source latent, merged per (sample, source) pair (DESIGN §6.1).

    ``source`` may carry ``counts`` (each row stands for that many identical training images:
    it is sampled T·count times) and ``source_index`` (kept as the rows' image indices;
    otherwise the row number is the image index).
    """
    cfg.validate()
    if isinstance(source, LatentSet):
        z, in_counts, in_src = source.latents, source.counts, source.source_index
    else:
        z, in_counts, in_src = source, None, None
    z = validate_latents(z, "source latents")
    n = len(z)
    reps = np.ones(n, np.int64) if in_counts is None else np.asarray(in_counts, np.int64)
    src_of_row = np.arange(n, dtype=np.int64) if in_src is None else np.asarray(in_src, np.int64)
    q = cfg.flip_prob
    gen = torch.Generator().manual_seed(int(cfg.seed))
    zt = torch.from_numpy(np.repeat(z, reps, axis=0))                 # one row per image
    row_of = np.repeat(np.arange(n), reps)
    samples = [rademacher_flip(zt, q, generator=gen).numpy().astype(np.int8) for _ in range(cfg.trials)]
    all_z = np.concatenate(samples)                                    # trial-major
    all_src = np.tile(src_of_row[row_of], cfg.trials)
    flat = np.packbits(all_z.reshape(len(all_z), -1) > 0, axis=1)
    key = np.concatenate([all_src[:, None].view(np.uint8).reshape(len(all_src), 8)[:, ::-1], flat], axis=1)
    _, first, inverse, cnt = np.unique(key, axis=0, return_index=True, return_inverse=True, return_counts=True)
    order = np.lexsort((first, all_src[first]))                       # by source, then first trial
    first, cnt = first[order], cnt[order]
    return Empirical(np.ascontiguousarray(all_z[first]), cnt.astype(np.int64), all_src[first].astype(np.int64))


def plan_draws(source: LatentSet, cfg: DrawConfig) -> "Plan":
    """Estimated memory and time of :func:`draw_samples`: T rows per source image, int8 and
    packed, with the sort keys of the merge; time from drawing one trial of a few rows."""
    import time

    from .resources import CALIBRATION_ROWS, Plan, Step

    rows = int(source.weights.sum()) * cfg.trials
    cells = int(source.latents[0].size)
    k = min(len(source.latents), CALIBRATION_ROWS)
    probe = LatentSet(source.latents[:k])
    t = time.perf_counter()
    draw_samples(probe, DrawConfig(trials=1, tau=cfg.tau, kappa=cfg.kappa, seed=cfg.seed))
    sec = (time.perf_counter() - t) / k * rows
    return Plan().add(Step(f"draw {rows:,} latents", rows * (3 * cells + 64), sec))


def draw_attrs(cfg: DrawConfig, source_attrs: dict, latents_sha256: str) -> dict:
    """Provenance attributes written with E."""
    keep = ("data", "data_sha256", "limit", "model_sha256", "split")
    attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in source_attrs.items() if k in keep}
    attrs.update(kind="empirical", trials=int(cfg.trials), tau=float(cfg.tau), kappa=float(cfg.kappa),
                 seed=int(cfg.seed), flip_prob=float(cfg.flip_prob), source_latents_sha256=latents_sha256)
    return attrs


def finetune_targets(source_index: np.ndarray | None, images_NCHW: np.ndarray, path: str = "empirical set") -> np.ndarray:
    """Each sample's target image (DESIGN §6.2); clear errors when E cannot be matched to DATA."""
    if source_index is None:
        raise FscertError(f"{path} has no 'source_index' dataset: it does not say which training image each "
                          "sample came from (write it with `fscert draw`)")
    if len(source_index) and int(source_index.max()) >= len(images_NCHW):
        raise FscertError(f"{path} refers to training image {int(source_index.max())}, but the data holds "
                          f"{len(images_NCHW)} images (use the same DATA and --limit as for encoding)")
    return images_NCHW[source_index]
