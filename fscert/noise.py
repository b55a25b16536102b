"""Noise that turns latents into finite-support random variables (Eq. 3, 5, 26; DESIGN §2).

ε ~ Tri(κ): draw u ~ U(−1, 1) and set ε = sign(u)·(1 − |u|^κ) (Eq. 3). With z̃ = z + τ·ε and
z̃^± = sign(z̃), a bit z = ±1 flips iff ε crosses 1/τ, so the flip probability is

    q(τ, κ) = ½ · (1 − 1/τ)^(1/κ)   for τ > 1,   and 0 for τ ≤ 1          (Eq. 26)

The main text prints the exponent as κ (after Eq. 5); the appendix derivation (Eq. 26) and
the definition of Tri(κ) give 1/κ, since P(ε > t) = ½(1 − t)^(1/κ). fscert uses 1/κ.

Gaussian noise ε ~ N(0, 1) scaled by σ is an option (what the paper's official code uses);
its flip probability is q = 1 − Φ(1/σ). In the paper's notation π = 1 − q (Eq. 5).
"""
from __future__ import annotations

import math

import torch

from .errors import FscertError

NOISE_KINDS = ("triangular", "gaussian")


def triangular(shape, kappa: float, generator: torch.Generator | None = None,
               dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> torch.Tensor:
    """Samples of Tri(κ) (Eq. 3): ε = sign(u)·(1 − |u|^κ), u ~ U(−1, 1). Support (−1, 1)."""
    if not kappa > 0:
        raise FscertError(f"κ must be positive, got {kappa}")
    u = torch.rand(shape, generator=generator, dtype=dtype, device=device) * 2 - 1
    return torch.sign(u) * (1 - u.abs().pow(kappa))


def gaussian(shape, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
             device: str | torch.device = "cpu") -> torch.Tensor:
    """Standard normal samples (scaled by σ where used)."""
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)


def check_tau_kappa(tau: float, kappa: float) -> None:
    if not (math.isfinite(tau) and tau >= 0):
        raise FscertError(f"τ must be a finite number ≥ 0, got {tau}")
    if not (math.isfinite(kappa) and kappa > 0):
        raise FscertError(f"κ must be a finite positive number, got {kappa}")


def flip_probability(tau: float, kappa: float) -> float:
    """q = ½(1 − 1/τ)^(1/κ) for τ > 1, else 0 (Eq. 26 with DESIGN §2's exponent 1/κ)."""
    check_tau_kappa(tau, kappa)
    if tau <= 1:
        return 0.0
    return 0.5 * (1.0 - 1.0 / tau) ** (1.0 / kappa)


def flip_probability_gaussian(sigma: float) -> float:
    """q = 1 − Φ(1/σ) for z̃ = z + σ·ε, ε ~ N(0, 1); 0 for σ = 0."""
    if not (math.isfinite(sigma) and sigma >= 0):
        raise FscertError(f"σ must be a finite number ≥ 0, got {sigma}")
    if sigma == 0:
        return 0.0
    return 0.5 * math.erfc((1.0 / sigma) / math.sqrt(2.0))


def perturb(z: torch.Tensor, tau: float, kappa: float = 2.0, kind: str = "triangular",
            generator: torch.Generator | None = None) -> torch.Tensor:
    """z̃ = z + τ·ε with ε ~ Tri(κ) (or τ·N(0,1) for ``kind='gaussian'``), Eq. 2."""
    if kind == "triangular":
        eps = triangular(z.shape, kappa, generator=generator, dtype=z.dtype, device=z.device)
    elif kind == "gaussian":
        eps = gaussian(z.shape, generator=generator, dtype=z.dtype, device=z.device)
    else:
        raise FscertError(f"noise must be one of {', '.join(NOISE_KINDS)}, got '{kind}'")
    return z + tau * eps


def rademacher_flip(z, q: float, generator: torch.Generator | None = None):
    """One Rademacher sample per latent: each ±1 bit flipped independently with probability q (Eq. 5)."""
    zt = torch.as_tensor(z)
    flips = torch.rand(zt.shape, generator=generator) < q
    return torch.where(flips, -zt, zt)
