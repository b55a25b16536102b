"""Two-stage NFIG training: FR-VAE (pixel + VQ loss, Eq. 10 without LPIPS/GAN) then the
next-frequency transformer (cross-entropy over all scale blocks, Eq. 11)."""
from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import FscertError
from ..metrics.nearest import psnr_from_sqdist
from ..progress import Progress
from .config import NFIGConfig
from .model import NFIG


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR in dB of images in [0, 1], from the mean squared error over the whole set."""
    return float(psnr_from_sqdist(float(F.mse_loss(x.float(), y.float())), 1))


def load_labels(spec: str | os.PathLike, n: int, split: str = "train", limit: int | None = None) -> np.ndarray | None:
    """Labels stored next to the images in an npz (``labels`` or ``{split}_labels``), else None."""
    from ..data import resolve

    path = resolve(spec)
    if path.is_dir():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            key = "labels" if "labels" in z.files else f"{split}_labels"
            if key not in z.files:
                return None
            lab = np.asarray(z[key])
    except Exception:  # not an npz (npy, HDF5, IDX, ...): train unconditionally
        return None
    lab = lab.reshape(len(lab), -1)[:, 0] if lab.ndim > 1 else lab
    if limit is not None:
        lab = lab[:limit]
    if len(lab) != n or not np.issubdtype(lab.dtype, np.integer) or lab.min() < 0:
        return None
    return lab.astype(np.int64)


def _cosine_lr(opt: torch.optim.Optimizer, base: float, step: int, total: int, warmup: int) -> None:
    if step < warmup:
        lr = base * (step + 1) / warmup
    else:
        lr = base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    for g in opt.param_groups:
        g["lr"] = lr


def _batches(n: int, bs: int, gen: torch.Generator):
    perm = torch.randperm(n, generator=gen)
    return [perm[i:i + bs] for i in range(0, n, bs)]


def train_vae(model: NFIG, x_NCHW: torch.Tensor, gen: torch.Generator, progress: bool = False) -> dict[str, Any]:
    """Stage 1: FR-VAE on ‖x − x̂‖² + VQ loss; dead codes are re-seeded after every epoch but the last."""
    cfg, vae = model.cfg, model.vae
    vae.train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, betas=(0.9, 0.95), weight_decay=0.0)
    steps_per_epoch = math.ceil(len(x_NCHW) / cfg.vae_batch)
    total, step, last = cfg.vae_epochs * steps_per_epoch, 0, {}
    bar = Progress(total=total, desc="nfig stage 1/2: FR-VAE", show=progress, unit="step")
    for ep in range(cfg.vae_epochs):
        for idx in _batches(len(x_NCHW), cfg.vae_batch, gen):
            _cosine_lr(opt, cfg.vae_lr, step, total, warmup=min(100, total // 10 + 1))
            x = x_NCHW[idx]
            x_rec, vq_loss = vae(x)
            rec_loss = F.mse_loss(x_rec, x)
            loss = rec_loss + vq_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            last = {"rec": rec_loss.item(), "vq": vq_loss.item()}
            bar.update(1)
            bar.set_postfix(epoch=ep + 1, rec=f"{last['rec']:.4f}", vq=f"{last['vq']:.4f}")
        if ep + 1 < cfg.vae_epochs:
            vae.quantize.restart_dead_codes(gen)
    bar.close()
    vae.eval()
    return {"vae_rec_loss": last.get("rec", float("nan")), "vae_vq_loss": last.get("vq", float("nan"))}


@torch.no_grad()
def tokenize(model: NFIG, x_NCHW: torch.Tensor, bs: int = 250) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token targets (N×L), teacher-forcing inputs (N×(L−l_1)×Cvae) and reconstructions."""
    vae = model.vae.eval()
    idx_all, inp_all, rec_all = [], [], []
    for s in range(0, len(x_NCHW), bs):
        idx_list = vae.img_to_idx(x_NCHW[s:s + bs])
        idx_all.append(torch.cat(idx_list, dim=1))
        inp_all.append(vae.quantize.idx_to_var_input(idx_list))
        rec_all.append(vae.idx_to_img(idx_list))
    return torch.cat(idx_all), torch.cat(inp_all), torch.cat(rec_all)


def train_gpt(model: NFIG, idx_NL: torch.Tensor, inp_NLC: torch.Tensor, labels_N: torch.Tensor,
              gen: torch.Generator, progress: bool = False) -> dict[str, Any]:
    """Stage 2: next-frequency transformer, cross-entropy over every token of every scale (Eq. 11)."""
    cfg, gpt = model.cfg, model.gpt
    gpt.train()
    decay = [p for n, p in gpt.named_parameters() if p.ndim >= 2 and "pos" not in n and "emb" not in n]
    no_decay = [p for n, p in gpt.named_parameters() if not (p.ndim >= 2 and "pos" not in n and "emb" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.gpt_lr, betas=(0.9, 0.95))
    steps_per_epoch = math.ceil(len(idx_NL) / cfg.gpt_batch)
    total, step, last = cfg.gpt_epochs * steps_per_epoch, 0, float("nan")
    bar = Progress(total=total, desc="nfig stage 2/2: transformer", show=progress, unit="step")
    for ep in range(cfg.gpt_epochs):
        for b in _batches(len(idx_NL), cfg.gpt_batch, gen):
            _cosine_lr(opt, cfg.gpt_lr, step, total, warmup=min(200, total // 10 + 1))
            logits_BLV = gpt(labels_N[b], inp_NLC[b])
            loss = F.cross_entropy(logits_BLV.reshape(-1, logits_BLV.shape[-1]), idx_NL[b].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(gpt.parameters(), 2.0)
            opt.step()
            step += 1
            last = loss.item()
            bar.update(1)
            bar.set_postfix(epoch=ep + 1, ce=f"{last:.3f}")
    bar.close()
    gpt.eval()
    return {"gpt_ce_loss": last}


def train_nfig(images: np.ndarray | torch.Tensor, labels: np.ndarray | None = None,
               config: NFIGConfig | None = None, progress: bool = True) -> tuple[NFIG, dict[str, Any]]:
    """Train both NFIG stages on float images N×C×32×32 in [0, 1].

    ``labels`` (N ints) make the model class-conditional; without them it trains with a single
    class. Returns the model (in eval mode) and stats: ``recon_psnr`` (dB, FR-VAE on the
    training images), ``codebook_usage``, losses, ``vae_seconds``, ``gpt_seconds``,
    ``train_seconds``. Deterministic for a fixed ``config.seed``.
    """
    cfg = config or NFIGConfig()
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim != 4 or tuple(x.shape[2:]) != (32, 32) or x.shape[1] not in (1, 3) or len(x) == 0:
        raise FscertError(f"NFIG trains on N×C×32×32 images (C = 1 or 3), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise FscertError("NFIG training images must be finite floats in [0, 1]")
    if labels is None:
        lab = torch.zeros(len(x), dtype=torch.long)
        num_classes = 1
    else:
        lab_np = np.asarray(labels)
        if lab_np.shape != (len(x),) or not np.issubdtype(lab_np.dtype, np.integer) or lab_np.min() < 0:
            raise FscertError(f"labels must be {len(x)} non-negative integers, got shape {lab_np.shape}")
        lab = torch.as_tensor(lab_np.astype(np.int64))
        num_classes = max(int(lab.max()) + 1, cfg.num_classes)
    cfg = NFIGConfig.from_dict({**cfg.to_dict(), "in_channels": int(x.shape[1]), "num_classes": num_classes})

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = NFIG(cfg)
    t0 = time.perf_counter()
    stats: dict[str, Any] = {"n_images": len(x), "order": cfg.order}
    stats.update(train_vae(model, x, gen, progress))
    idx_NL, inp_NLC, rec = tokenize(model, x)
    stats["recon_psnr"] = psnr(rec, x)
    stats["codebook_usage"] = float(torch.unique(idx_NL).numel()) / cfg.codebook_size
    t1 = time.perf_counter()
    stats.update(train_gpt(model, idx_NL, inp_NLC, lab, gen, progress))
    t2 = time.perf_counter()
    stats.update({"vae_seconds": t1 - t0, "gpt_seconds": t2 - t1, "train_seconds": t2 - t0})
    model.stats = stats
    model.eval()
    return model, stats
