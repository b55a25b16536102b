"""Two-phase training of the local autoencoder (Eq. 2 and Eq. 4; DESIGN §3) and the decoder
fine-tune on empirical draws (A.3.6).

Phase 1 (Eq. 2): loss = ‖d(z̃) − x‖² + β(t)·‖z̃‖², z̃ = tanh(e(x)) + τ(t)·ε, ε ~ Tri(κ), with β(t)
annealed linearly from β₀ to 0 and τ(t) ramped up from 0 over the first 20% (fscert's addition,
:func:`tau_schedule`). Phase 2 (Eq. 4): the encoder is frozen and the decoder learns
to decode sign(tanh(e(x)) + τ·ε), the ±1 Rademacher latents it will see at sampling time.

Per epoch we record the curves of Fig. 9: MSE and PSNR of the binarised reconstruction
d(sign(tanh(e(x)))), the mean |latent| and the binary rate (fraction of |tanh(e(x))| > 0.9).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .autoencoder import AEConfig, LocalAutoencoder, check_image_shape, check_latent_shape
from .errors import FscertError
from .fileio import atomic_path
from .noise import NOISE_KINDS, check_tau_kappa, perturb
from .progress import Progress


@dataclass
class TrainConfig:
    """Options of the two-phase training (Eq. 2, Eq. 4): the defaults of `fscert train` and of
    `fscert finetune` (``finetune_epochs``, ``batch_size``, ``lr``, ``seed``)."""

    epochs: int = 600                  # phase 1 (Eq. 2)
    finetune_epochs: int = 120         # phase 2 (Eq. 4); also `fscert finetune --epochs`
    batch_size: int = 64
    lr: float = 2e-3
    # τ = 1 with κ = 2 gives strong noise that drives tanh latents to ±1 but never flips a
    # saturated bit (q = 0, A.2.3), so phase 2 decodes exact binary latents
    tau: float = 1.0
    kappa: float = 2.0
    noise: str = "triangular"
    beta0: float = 1e-3
    seed: int = 0
    eval_images: int = 256
    tau_warmup: float = 0.2      # fraction of phase 1 over which τ ramps up from 0 (see tau_schedule)
    eval_points: int = 100       # evaluate (Fig. 9 statistics) at most this many times per phase

    def validate(self) -> "TrainConfig":
        check_tau_kappa(self.tau, self.kappa)
        if self.noise not in NOISE_KINDS:
            raise FscertError(f"noise must be one of {', '.join(NOISE_KINDS)}")
        if self.epochs < 0 or self.finetune_epochs < 0 or self.epochs + self.finetune_epochs == 0:
            raise FscertError("epochs must be ≥ 0 and at least one phase must run")
        if not 0 <= self.tau_warmup <= 1:
            raise FscertError(f"tau warm-up must be a fraction in [0, 1], got {self.tau_warmup}")
        if self.batch_size < 1 or not self.lr > 0 or self.beta0 < 0:
            raise FscertError("batch size must be ≥ 1, learning rate > 0 and β₀ ≥ 0")
        return self


def beta_schedule(beta0: float, step: int, total: int) -> float:
    """β(t): linear, monotone from β₀ at t = 0 to 0 at the end of phase 1 (Eq. 2)."""
    return beta0 * max(0.0, 1.0 - step / max(1, total))


def tau_schedule(tau: float, step: int, total: int, warmup: float) -> float:
    """τ(t): ramps linearly from 0 to τ over the first ``warmup`` fraction of phase 1, then stays.

    Not in the paper (Eq. 2 uses a fixed τ); without it, strong noise at initialisation
    (τ·Tri(2) is mostly near ±τ) can drown the untrained encoder's signal and the model collapses
    to the mean image. A ramp lets a code form first, then the noise drives it to ±1.
    """
    if warmup <= 0:
        return tau
    return tau * min(1.0, step / max(1.0, warmup * total))


def psnr_per_image(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    mse = ((x_hat - x) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return 10 * torch.log10(1.0 / mse)


@torch.no_grad()
def evaluate(model: LocalAutoencoder, x_NCHW: torch.Tensor, batch: int = 256) -> dict[str, float]:
    """Fig. 9 statistics on ``x``: binarised MSE/PSNR, mean |tanh(e(x))|, binary rate."""
    model.eval()
    mse, psnr, absz, binary = [], [], [], []
    for i in range(0, len(x_NCHW), batch):
        x = x_NCHW[i:i + batch]
        zc = model.encode_continuous(x)
        x_hat = model.decode(torch.where(zc >= 0, 1.0, -1.0))
        mse.append(((x_hat - x) ** 2).flatten(1).mean(1))
        psnr.append(psnr_per_image(x_hat, x))
        absz.append(zc.abs().flatten(1).mean(1))
        binary.append((zc.abs() > 0.9).float().flatten(1).mean(1))
    cat = lambda v: float(torch.cat(v).mean())  # noqa: E731
    return {"mse": cat(mse), "psnr": cat(psnr), "mean_abs_latent": cat(absz), "binary_rate": cat(binary)}


def _eval_now(epoch: int, epochs: int, points: int) -> bool:
    """Evaluate on about ``points`` evenly spaced epochs, always including the last one."""
    every = max(1, -(-epochs // max(1, points)))
    return (epoch + 1) % every == 0 or epoch + 1 == epochs


def _batches(n: int, batch: int, gen: torch.Generator):
    perm = torch.randperm(n, generator=gen)
    return [perm[i:i + batch] for i in range(0, n, batch)]


class TrainState:
    """A checkpoint of training, so that an interrupted run can continue (``fscert train --resume``).

    Saved at the end of an epoch at most every ``every_seconds`` (and at the end of phase 1):
    the weights, the optimiser and learning-rate schedule of the running phase, the random
    generator, the step count and the history. Everything that decides the next epoch is in
    it, so a resumed run ends with the same weights as an uninterrupted one. ``key`` fixes the
    model config, training config and data: a checkpoint of another run is never used.
    Written atomically; read with ``weights_only=True``.
    """

    FORMAT, VERSION = "fscert-train-state", 1

    def __init__(self, path: str | Path, key: str, every_seconds: float = 30.0):
        self.path, self.key, self.every = Path(path), key, float(every_seconds)
        self._last = time.perf_counter()

    def load(self) -> dict | None:
        """The saved state, or None when there is none, it is damaged, or it belongs to another run."""
        if not self.path.is_file():
            return None
        try:
            blob = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - a checkpoint cut short: start again
            return None
        if not isinstance(blob, dict) or blob.get("format") != self.FORMAT or blob.get("key") != self.key:
            return None
        return blob

    def due(self, force: bool = False) -> bool:
        return force or time.perf_counter() - self._last >= self.every

    def save(self, phase: int, epoch: int, step: int, model: LocalAutoencoder, opt, sched,
             gen: torch.Generator, history: list[dict]) -> None:
        blob = {"format": self.FORMAT, "version": self.VERSION, "key": self.key, "phase": phase, "epoch": epoch,
                "step": step, "model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                "gen": gen.get_state(), "history": json.dumps(history)}
        with atomic_path(self.path) as tmp, open(tmp, "wb") as f:
            torch.save(blob, f)
        self._last = time.perf_counter()


def train_key(images_NCHW: np.ndarray, model_cfg: AEConfig, cfg: TrainConfig) -> str:
    """What decides a training run: both configs and the images (the checkpoint key)."""
    from .hashing import sha256_array

    return json.dumps({"model": asdict(model_cfg), "train": asdict(cfg), "data": sha256_array(images_NCHW)},
                      sort_keys=True)


def train(images_NCHW: np.ndarray, model_cfg: AEConfig, cfg: TrainConfig, progress: bool = True,
          on_epoch: Callable[[dict], None] | None = None,
          state: TrainState | None = None) -> tuple[LocalAutoencoder, list[dict]]:
    """Train a new autoencoder on float32 images in [0, 1]: phase 1 then phase 2.

    Returns the model and the per-epoch history (dicts with phase, epoch, loss, beta and the
    :func:`evaluate` statistics); ``on_epoch(row)`` is called after every epoch (a hook, e.g. to
    record or stop; progress is :class:`fscert.progress.Progress`). Deterministic for a given seed
    on the same machine. With ``state``, training continues from its checkpoint when there is
    one, and saves to it as it goes (the caller removes it at the end).
    """
    cfg.validate()
    check_image_shape(model_cfg.validate(), images_NCHW.shape)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = LocalAutoencoder(model_cfg)
    x_all = torch.from_numpy(np.ascontiguousarray(images_NCHW, dtype=np.float32))
    x_eval = x_all[: cfg.eval_images]
    history: list[dict] = []
    steps_per_epoch = math.ceil(len(x_all) / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, total_steps), eta_min=cfg.lr * 0.05)
    step, start, done = 0, 0, 0
    saved = state.load() if state is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        gen.set_state(saved["gen"])
        saved_history = json.loads(saved["history"])
        history, step, done = [r for r in saved_history if r["phase"] == 1], int(saved["step"]), len(saved_history)
        if saved["phase"] == 1:
            opt.load_state_dict(saved["opt"])
            sched.load_state_dict(saved["sched"])
            start = int(saved["epoch"])
        else:
            start = cfg.epochs
    bar = Progress(total=cfg.epochs + cfg.finetune_epochs, initial=done, desc="train", unit="epoch",
                   show=progress)     # a bar on a terminal, a line every 30 s elsewhere (fscert.progress)
    try:                      # closed even when interrupted, so an error message starts on its own line
        for epoch in range(start, cfg.epochs):
            model.train()
            t0, losses = time.perf_counter(), []
            for idx in _batches(len(x_all), cfg.batch_size, gen):
                x = x_all[idx]
                beta = beta_schedule(cfg.beta0, step, total_steps)
                tau = tau_schedule(cfg.tau, step, total_steps, cfg.tau_warmup)
                z_tilde = perturb(model.encode_continuous(x), tau, cfg.kappa, cfg.noise, generator=gen)   # Eq. 2
                loss = F.mse_loss(model.decode_raw(z_tilde), x) + beta * z_tilde.pow(2).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                losses.append(loss.item())
            row = {"phase": 1, "epoch": epoch + 1, "loss": float(np.mean(losses)), "beta": beta, "tau": tau,
                   "seconds": time.perf_counter() - t0}
            if _eval_now(epoch, cfg.epochs, cfg.eval_points):
                row.update(evaluate(model, x_eval))
                bar.set_postfix(phase=1, psnr=f"{row['psnr']:.2f}", binary=f"{row['binary_rate']:.2f}")
            history.append(row)
            if on_epoch is not None:
                on_epoch(row)
            bar.update()
            if state is not None and state.due(force=epoch + 1 == cfg.epochs):
                state.save(1, epoch + 1, step, model, opt, sched, gen, history)

        # Phase 2 (Eq. 4): freeze the encoder, decode sign(tanh(e(x)) + τ·ε).
        with torch.no_grad():
            model.eval()
            zc_all = torch.cat([model.encode_continuous(x_all[i:i + 512]) for i in range(0, len(x_all), 512)])
        def rademacher(idx):
            return torch.where(perturb(zc_all[idx], cfg.tau, cfg.kappa, cfg.noise, generator=gen) >= 0, 1.0, -1.0)

        resume2 = saved if saved is not None and saved["phase"] == 2 else None
        history = history + _fit_decoder(model, rademacher, x_all, cfg.finetune_epochs, cfg, gen, phase=2, bar=bar,
                                         x_eval=x_eval, on_epoch=on_epoch, state=state, saved=resume2,
                                         history_before=history)
    finally:
        bar.close()
    model.eval()
    return model, history


def _fit_decoder(model: LocalAutoencoder, make_latents, targets: torch.Tensor, epochs: int, cfg: TrainConfig,
                 gen: torch.Generator, phase: int, bar=None, x_eval=None, weights: torch.Tensor | None = None,
                 on_epoch: Callable[[dict], None] | None = None, state: TrainState | None = None,
                 saved: dict | None = None, history_before: list[dict] | None = None) -> list[dict]:
    """Train only the decoder: ``make_latents(idx)`` returns the ±1 latents of batch ``idx``.

    With ``saved`` (a :class:`TrainState` blob of this phase) the optimiser, schedule and epoch
    continue from it; with ``state``, checkpoints are saved (``history_before`` + this phase's rows)."""
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.decoder.parameters(), lr=cfg.lr * 0.5)
    total = max(1, epochs * math.ceil(len(targets) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total, eta_min=cfg.lr * 0.01)
    history: list[dict] = []
    start = 0
    if saved is not None:
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        start = int(saved["epoch"])
        n_before = len(history_before or [])
        history = json.loads(saved["history"])[n_before:]
    for epoch in range(start, epochs):
        model.decoder.train()
        t0, losses = time.perf_counter(), []
        for idx in _batches(len(targets), cfg.batch_size, gen):
            z = make_latents(idx)
            err = (model.decode_raw(z) - targets[idx]).pow(2).flatten(1).mean(1)
            loss = err.mean() if weights is None else (err * weights[idx]).sum() / weights[idx].sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        row = {"phase": phase, "epoch": epoch + 1, "loss": float(np.mean(losses)), "beta": 0.0,
               "seconds": time.perf_counter() - t0}
        if x_eval is not None and _eval_now(epoch, epochs, cfg.eval_points):
            row.update(evaluate(model, x_eval))
        elif x_eval is None:
            row["psnr"] = float(10 * np.log10(1.0 / max(row["loss"], 1e-12)))
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if bar is not None:
            if "psnr" in row:
                bar.set_postfix(phase=phase, psnr=f"{row['psnr']:.2f}")
            bar.update()
        if state is not None and state.due():
            state.save(phase, epoch + 1, 0, model, opt, sched, gen, (history_before or []) + history)
    for p in model.encoder.parameters():
        p.requires_grad_(True)
    model.eval()
    return history


def finetune_decoder(model: LocalAutoencoder, latents: np.ndarray, targets_NCHW: np.ndarray, epochs: int = 10,
                     batch_size: int = 64, lr: float = 1e-3, seed: int = 0, counts: np.ndarray | None = None,
                     progress: bool = True) -> list[dict]:
    """Fine-tune the decoder on drawn ±1 latents, each with its source image as target (A.3.6),
    so that it has seen every latent it will decode. ``counts`` weights repeated draws."""
    check_latent_shape(model.config, latents.shape)
    check_image_shape(model.config, targets_NCHW.shape)
    if len(latents) != len(targets_NCHW):
        raise FscertError(f"{len(latents)} latents but {len(targets_NCHW)} target images")
    cfg = TrainConfig(batch_size=batch_size, lr=lr * 2, seed=seed, epochs=0, finetune_epochs=max(1, epochs))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    z_all = torch.from_numpy(np.asarray(latents, np.float32))
    x_all = torch.from_numpy(np.ascontiguousarray(targets_NCHW, np.float32))
    w = None if counts is None else torch.from_numpy(np.asarray(counts, np.float32))
    with Progress(total=epochs, desc="finetune", unit="epoch", show=progress) as bar:
        return _fit_decoder(model, lambda idx: z_all[idx], x_all, epochs, cfg, gen, phase=3, bar=bar, weights=w)


def save_history(history: list[dict], model_path: str | Path, title: str = "training") -> tuple[Path, Path]:
    """Write ``<model>.history.json`` and a PNG of the Fig. 9 curves next to the model."""
    base = Path(model_path)
    jpath, ppath = base.with_suffix(".history.json"), base.with_suffix(".history.png")
    with atomic_path(jpath) as tmp:
        tmp.write_text(json.dumps(history, indent=1))
    plot_history(history, ppath, title)
    return jpath, ppath


def plot_history(history: list[dict], path: str | Path, title: str = "training") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("mse", "MSE (binarised)"), ("psnr", "PSNR dB (binarised)"), ("mean_abs_latent", "mean |latent|"),
            ("binary_rate", "binary rate (|z|>0.9)")]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for ax, (k, label) in zip(axes, keys):
        pts = [(i + 1, h[k]) for i, h in enumerate(history) if k in h]
        if pts:
            ax.plot(*zip(*pts), lw=1.5, marker="." if len(pts) < 30 else None)
        p2 = [i + 1 for i, h in enumerate(history) if h["phase"] != 1]
        if p2:
            ax.axvspan(p2[0] - 0.5, p2[-1] + 0.5, color="0.9", label="phase 2 (Eq. 4)")
        ax.set_title(label)
        ax.set_xlabel("epoch")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
