"""The NFIG model (FR-VAE + next-frequency transformer), sampling, and safe save/load.

Model files hold ``{"format": "fscert-nfig", "version": 1, "config": dict, "state_dict": ...,
"stats": dict}`` written with ``torch.save`` and read with ``torch.load(weights_only=True)``:
model files are untrusted, so no pickled code is ever executed.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..checkpoint import load_checkpoint, load_weights, save_checkpoint
from ..errors import FscertError
from ..fileio import atomic_path
from ..image_grid import write_png_grid
from ..progress import Progress
from .config import NFIGConfig
from .frvae import FRVAE
from .transformer import NextFrequencyTransformer

FORMAT = "fscert-nfig"
VERSION = 1


class NFIG(nn.Module):
    """Tokenizer (``vae``) and generator (``gpt``) with their shared config."""

    def __init__(self, cfg: NFIGConfig):
        super().__init__()
        self.cfg = cfg
        self.vae = FRVAE(cfg)
        self.gpt = NextFrequencyTransformer(cfg)
        self.stats: dict[str, Any] = {}


def _check_sampling(model: NFIG, n: int, cfg: float, top_k: int, top_p: float,
                    classes: int | Sequence[int] | None) -> torch.Tensor:
    if n < 1:
        raise FscertError(f"number of samples must be ≥ 1, got {n}")
    if not (cfg >= 0 and np.isfinite(cfg)):
        raise FscertError(f"cfg must be a number ≥ 0, got {cfg}")
    if top_k < 0:
        raise FscertError(f"top-k must be ≥ 0 (0 = off), got {top_k}")
    if not 0 <= top_p <= 1:
        raise FscertError(f"top-p must lie in [0, 1] (0 or 1 = off), got {top_p}")
    K = model.cfg.num_classes
    if classes is None:
        labels = torch.arange(n) % K  # balanced over the classes
    elif isinstance(classes, (int, np.integer)):
        labels = torch.full((n,), int(classes))
    else:
        labels = torch.as_tensor(np.asarray(classes, dtype=np.int64))
        if labels.shape != (n,):
            raise FscertError(f"classes must be one label or {n} labels, got shape {tuple(labels.shape)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= K):
        raise FscertError(f"class labels must lie in 0..{K - 1} for this model, got {labels.min()}..{labels.max()}")
    return labels.long()


@torch.no_grad()
def sample_nfig(model: NFIG, n: int, seed: int = 0, cfg: float = 1.5, top_k: int = 0, top_p: float = 0.0,
                classes: int | Sequence[int] | None = None, batch_size: int = 250,
                progress: bool = False, return_labels: bool = False):
    """Generate ``n`` images: uint8 array (n, C, 32, 32); with ``return_labels`` also the labels.

    ``classes``: None (balanced, i % num_classes), one class for all, or n labels. ``cfg`` is
    the final classifier-free guidance strength (ramped across scales); ``top_k = 0`` and
    ``top_p ∈ {0, 1}`` switch those filters off. Same seed (and n, batch_size) → same images.
    """
    labels = _check_sampling(model, n, cfg, top_k, top_p, classes)
    was = model.training
    model.eval()
    gen = torch.Generator().manual_seed(int(seed))
    out = []
    try:
        for s in Progress(range(0, n, batch_size), desc="nfig sample", show=progress, unit="batch"):
            label_B = labels[s:s + batch_size]
            f_hat = model.gpt.generate(model.vae.quantize, label_B, cfg=cfg, top_k=top_k, top_p=top_p,
                                       generator=gen)
            x = model.vae.decode(f_hat)
            out.append((x * 255).round().clamp(0, 255).to(torch.uint8).numpy())
    finally:
        model.train(was)
    images = np.concatenate(out)
    return (images, labels.numpy().astype(np.int64)) if return_labels else images


def save_nfig(model: NFIG, path: str | os.PathLike) -> None:
    """Write the model atomically (config dict + state_dict + training stats)."""
    stats = {k: v for k, v in model.stats.items() if isinstance(v, (int, float, str, bool))}
    save_checkpoint(path, FORMAT, VERSION, model.cfg.to_dict(), model, stats=stats)


def load_nfig(path: str | os.PathLike) -> NFIG:
    """Read a model written by :func:`save_nfig`; anything else → FscertError (never runs code)."""
    blob = load_checkpoint(path, FORMAT, VERSION, "NFIG model")
    model = load_weights(path, NFIG(NFIGConfig.from_dict(blob["config"])), blob["state_dict"])
    stats = blob.get("stats")
    model.stats = dict(stats) if isinstance(stats, dict) else {}
    return model


def write_samples(images: np.ndarray, labels: np.ndarray, npz_path: str | os.PathLike,
                  png_path: str | os.PathLike | None = None) -> None:
    """Write ``images``/``labels`` to an npz (atomically) and a PNG grid next to it."""
    with atomic_path(npz_path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, images=images, labels=labels)
    if png_path is not None:
        write_png_grid(png_path, images, max_images=256, pad=2)
