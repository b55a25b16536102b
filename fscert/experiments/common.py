"""What several experiments share: run sizes, the CPU-sized autoencoders, memorization numbers.

* :class:`Sizes` — every experiment has three sizes: ``full`` (the CPU-sized reproduction),
  ``quick`` (``fscert experiment --quick``: seconds, numbers not meaningful) and ``tiny`` (the
  tests: the smallest run that still takes every code path).
* :func:`train_ae` — two-phase training (Eq. 2, then Eq. 4) of an 8×8 autoencoder;
  :data:`MNIST64` and :func:`train_ae_mnist64_m1` — the A.3.6 model (64 MNIST images, 1×8×8);
  :func:`finetuned_on` — its decoder fine-tuned on an empirical set E.
* :func:`memorization` — UIR (Eq. 9) and greedy / strict M-UIR (Eq. 10) of decoded samples.

The experiments' sizes are constants of their modules, not the library defaults: those
(``TrainConfig()`` trains for hundreds of epochs) are for real models, the experiments are
sized to finish on a CPU in minutes. Sampling noise does come from ``DrawConfig()``.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from ..autoencoder import AEConfig, LocalAutoencoder, encode_batched
from ..blocks import generated_values
from ..data import load_images
from ..fit import Fit
from ..empirical import DrawConfig, Empirical
from ..metrics import m_uir_masks, nearest_train, passing_mask, psnr_from_sqdist
from ..training import TrainConfig, finetune_decoder, train

#: UIR / M-UIR thresholds γ (dB) reported by every memorization table (Eq. 9–10)
GAMMAS = (25.0, 30.0)
#: the library's sampling noise (``DrawConfig()``): τ = 1.1, κ = 0.5, q = ½(1 − 1/τ)^(1/κ) ≈ 0.0041
DEFAULT_TAU = DrawConfig().tau
DEFAULT_KAPPA = DrawConfig().kappa
DEFAULT_Q = DrawConfig().flip_prob

S = TypeVar("S")


@dataclass(frozen=True)
class Sizes(Generic[S]):
    """One experiment's settings at its three sizes."""

    full: S
    quick: S
    tiny: S

    def pick(self, quick: bool = False, tiny: bool = False) -> S:
        """``tiny`` wins over ``quick``; neither gives the full size."""
        return self.tiny if tiny else self.quick if quick else self.full


@dataclass(frozen=True)
class AESettings:
    """An autoencoder run: the first ``n_images`` MNIST images, hidden width, epochs of both phases."""

    n_images: int
    hidden: int
    epochs: int                 # phase 1 (Eq. 2)
    finetune_epochs: int        # phase 2 (Eq. 4, frozen encoder)
    batch_size: int = TrainConfig.batch_size


def mnist(s: AESettings) -> np.ndarray:
    """The first ``s.n_images`` MNIST training images, float32 N×1×32×32 in [0, 1]: zero-padded
    from 28×28 (the paper's MNIST set-up, which its figures are compared with)."""
    return load_images("mnist", s.n_images, fit=Fit(pad=True))


def train_ae(x_NCHW: np.ndarray, s: AESettings, latent_channels: int, seed: int,
             transition: bool = False) -> tuple[LocalAutoencoder, list[dict], float]:
    """Two-phase training (Eq. 2, Eq. 4) of an 8×8 autoencoder; returns (model, history, seconds)."""
    cfg = AEConfig(latent_size=8, latent_channels=latent_channels, hidden=s.hidden, transition=transition)
    tcfg = TrainConfig(epochs=s.epochs, finetune_epochs=s.finetune_epochs, seed=seed, batch_size=s.batch_size)
    t0 = time.perf_counter()
    model, hist = train(x_NCHW, cfg, tcfg, progress=False)
    return model, hist, time.perf_counter() - t0


#: the tests' autoencoder: 16 images in batches of 4 (40 + 8 steps, ≈ 0.6 s) give distinct latents
#: and a decoder above the 12 dB at which decoders output one image for every latent
TINY_AE = AESettings(n_images=16, hidden=32, epochs=10, finetune_epochs=2, batch_size=4)

#: the A.3.6 autoencoder (64 MNIST images, 1×8×8 latent; Fig. 15, 18/19, 11) at the three sizes
MNIST64 = Sizes(full=AESettings(n_images=64, hidden=256, epochs=150, finetune_epochs=30, batch_size=16),
                quick=AESettings(n_images=16, hidden=32, epochs=3, finetune_epochs=1, batch_size=16),
                tiny=TINY_AE)


def train_ae_mnist64_m1(s: AESettings, seed: int) -> tuple[np.ndarray, LocalAutoencoder, np.ndarray, float]:
    """The A.3.6 setting (Fig. 15, 18/19, 11): MNIST images, 1×8×8 latent (M = 1).

    Returns (images, model, latents z_NMhw, seconds)."""
    x_NCHW = mnist(s)
    model, _, secs = train_ae(x_NCHW, s, 1, seed)
    return x_NCHW, model, encode_batched(model, x_NCHW), secs


def finetuned_on(model: LocalAutoencoder, E: Empirical, x_NCHW: np.ndarray, epochs: int,
                 seed: int) -> LocalAutoencoder:
    """A copy of ``model`` whose decoder is fine-tuned on the empirical set E (DESIGN §6.2)."""
    m = copy.deepcopy(model)
    finetune_decoder(m, E.latents, x_NCHW[E.source_index], epochs=epochs, batch_size=64, seed=seed,
                     counts=E.counts, progress=False)
    return m


def as_float(images_u8: np.ndarray) -> np.ndarray:
    """Decoded uint8 images as the metrics see them: float32 in [0, 1]."""
    return generated_values(images_u8)


def paired_psnr(a_N: np.ndarray, b_N: np.ndarray) -> np.ndarray:
    """PSNR (peak 1) of row n of ``a_N`` to row n of ``b_N`` (same shapes, floats in [0, 1])."""
    d_ND = a_N.reshape(len(a_N), -1).astype(np.float64) - b_N.reshape(len(b_N), -1)
    return psnr_from_sqdist((d_ND * d_ND).sum(1), d_ND.shape[1])


def mean_psnr(a_N: np.ndarray, b_N: np.ndarray) -> float:
    """Mean of :func:`paired_psnr` (e.g. the reconstruction PSNR of a decoder)."""
    return float(np.mean(paired_psnr(a_N, b_N)))


def memorization_of(gen_N: np.ndarray, psnr_N: np.ndarray, gammas=GAMMAS) -> dict:
    """UIR (Eq. 9) and greedy / strict M-UIR (Eq. 10) of ``gen_N`` given each one's PSNR to its
    nearest reference image (``psnr_N``); also the exact copies and the median PSNR."""
    out: dict = {"n": int(len(gen_N)), "copies": int(np.isinf(psnr_N).sum()),
                 "median_psnr": float(np.median(psnr_N)) if len(psnr_N) else None}
    for g in gammas:
        pas = passing_mask(psnr_N, g)
        greedy, strict = m_uir_masks(gen_N, pas, g)
        k = f"{g:g}"
        out[f"uir_{k}"] = float(pas.mean())
        out[f"m_uir_{k}"] = float(greedy.mean())
        out[f"m_uir_strict_{k}"] = float(strict.mean())
    return out


def memorization(gen_N: np.ndarray, ref_N: np.ndarray, gammas=GAMMAS) -> dict:
    """:func:`memorization_of` ``gen_N`` against the reference images ``ref_N`` (floats in [0, 1])."""
    _, psnr_N = nearest_train(gen_N, ref_N)
    return memorization_of(gen_N, psnr_N, gammas)


def latent_copies(z_NMhw: np.ndarray, ref_KMhw: np.ndarray) -> float:
    """Fraction of the latents ``z_NMhw`` equal to one of the ``ref_KMhw`` latents (0 for none)."""
    keys = {r.tobytes() for r in np.asarray(ref_KMhw, np.int8)}
    z = np.asarray(z_NMhw, np.int8)
    return float(np.mean([r.tobytes() in keys for r in z])) if len(z) else 0.0
