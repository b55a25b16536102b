"""Network approximation of the sampling distribution (paper §4.2 "Network approximation", A.3.3).

An MLP maps the context of cell i — the Pre(i) bits (±1, padding 0, DESIGN §4) — to logits over
the 2^M token values of cell i (index order of :func:`fscert.patches.token_to_index`). Position-
anchored models add a learned embedding of the cell index (equivalent to a one-hot input),
translation-invariant ones do not (the padding zeros still tell the border cells apart).
It is trained with cross-entropy on (context, token) pairs drawn from the latent random
variables themselves: every step takes a minibatch of source latents, flips each bit with
probability q (Rademacher, Eq. 5) and uses every cell of every flipped latent as one example,
so the optimum is exactly the conditional of Eq. 6–8.

``full_context=True`` is the PixelCNN-like baseline of A.1.6: the input is the whole latent with
cell i and every later cell zeroed (all previous cells in raster order), so with enough
capacity the network memorizes the empirical distribution of the source latents.

Models are saved as a plain dict (format tag, config dict, state dict) and loaded with
``torch.load(weights_only=True)``. Sampling goes cell by cell in raster order; the categorical
draws use a seeded numpy ``Generator`` (inverse CDF in float64), so a seed fixes the samples.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import check_config_keys, load_checkpoint, load_weights, save_checkpoint
from .errors import FscertError
from .latents import validate_latents
from .patches import index_to_token, pre_offsets, token_to_index, tokens
from .progress import Progress

NET_FORMAT = "fscert-sampler-network"
NET_VERSION = 1


@dataclass
class NetConfig:
    latent_channels: int              # M
    latent_height: int                # H
    latent_width: int                 # W
    rho: int = 1                      # observation range (ignored with full_context)
    full_context: bool = False        # context = every previous cell (A.1.6 baseline)
    translation_invariant: bool = False
    hidden: int = 256
    layers: int = 2                   # hidden layers
    q: float = 0.0                    # flip probability used for training (recorded)

    def validate(self) -> "NetConfig":
        if not 1 <= self.latent_channels <= 16:
            raise FscertError(f"latent_channels must be in 1..16, got {self.latent_channels}")
        if self.latent_height < 1 or self.latent_width < 1:
            raise FscertError("the latent grid must be at least 1×1")
        if self.rho < 0:
            raise FscertError(f"ρ must be ≥ 0, got {self.rho}")
        if self.hidden < 1 or self.layers < 1:
            raise FscertError("hidden and layers must be ≥ 1")
        if self.full_context and self.translation_invariant:
            raise FscertError("--translation-invariant and --full-context cannot be combined")
        return self

    @property
    def n_cells(self) -> int:
        return self.latent_height * self.latent_width

    @property
    def in_dim(self) -> int:
        m = self.latent_channels
        return self.n_cells * m if self.full_context else len(pre_offsets(self.rho)) * m


class ContextMLP(nn.Module):
    """logits (P, 2^M) = MLP(context (P, D)) [+ embedding of the cell index after the first layer]."""

    def __init__(self, config: NetConfig):
        super().__init__()
        self.config = config.validate()
        c = config
        self.inp = nn.Linear(max(c.in_dim, 1), c.hidden)
        self.pos = None if c.translation_invariant else nn.Embedding(c.n_cells, c.hidden)
        self.body = nn.Sequential(*[m for _ in range(c.layers - 1) for m in (nn.GELU(), nn.Linear(c.hidden, c.hidden))])
        self.out = nn.Sequential(nn.GELU(), nn.Linear(c.hidden, 1 << c.latent_channels))

    def forward(self, ctx_PD: torch.Tensor, cell_P: torch.Tensor) -> torch.Tensor:
        if ctx_PD.shape[1] == 0:
            ctx_PD = torch.zeros(ctx_PD.shape[0], 1, dtype=ctx_PD.dtype)
        h = self.inp(ctx_PD)
        if self.pos is not None:
            h = h + self.pos(cell_P)
        return self.out(self.body(h))


# ----------------------------------------------------------------------------- features
def pair_inputs(config: NetConfig, z_NMHW: np.ndarray, b_P: np.ndarray, cell_P: np.ndarray) -> np.ndarray:
    """Network inputs int8 (P, D) of the (latent b_P[p], cell cell_P[p]) pairs.

    Local: Pre(i) of :func:`fscert.patches.contexts` (padding 0). Full context: the whole latent
    (cell-major, channel-minor) with cell i and every later cell zeroed.
    """
    z = np.asarray(z_NMHW, np.int8)
    if config.full_context:
        t_NLM = tokens(z)
        L = t_NLM.shape[1]
        keep_PL = (np.arange(L)[None, :] < np.asarray(cell_P)[:, None]).astype(np.int8)
        return (t_NLM[b_P] * keep_PL[:, :, None]).reshape(len(b_P), -1)
    r = config.rho
    offs = np.array(pre_offsets(r), dtype=np.int64).reshape(-1, 2)
    if len(offs) == 0:
        return np.zeros((len(b_P), 0), np.int8)
    zp = np.pad(z, ((0, 0), (0, 0), (r, r), (r, r)))             # padding 0
    y_P, x_P = np.divmod(np.asarray(cell_P, np.int64), z.shape[3])
    yy = y_P[:, None] + r + offs[None, :, 0]
    xx = x_P[:, None] + r + offs[None, :, 1]
    vals_POM = zp[np.asarray(b_P)[:, None], :, yy, xx]              # (P, |Pre|, M), as contexts()
    return np.ascontiguousarray(vals_POM.reshape(len(b_P), -1))


# ----------------------------------------------------------------------------- training
def train_network(source_latents: np.ndarray, rho: int, q: float, epochs: int = 10, seed: int = 0,
                  counts: np.ndarray | None = None, full_context: bool = False,
                  translation_invariant: bool = False, hidden: int = 256, layers: int = 2,
                  batch_size: int = 64, lr: float = 2e-3, max_pairs: int = 8192, progress: bool = False,
                  on_epoch: Callable[[int, float], None] | None = None) -> tuple[ContextMLP, list[float]]:
    """Train a :class:`ContextMLP` with cross-entropy on flipped source latents (A.3.3).

    One epoch = as many latents as there are sources, drawn in minibatches of ``batch_size``
    (a permutation, or ∝ ``counts`` with replacement when multiplicities are given); each is
    flipped afresh with probability q. At most ``max_pairs`` (latent, cell) pairs per step (a
    random subset when more). Returns the network and the mean loss of each epoch;
    ``on_epoch(epoch, loss)`` is called after every epoch.
    """
    if not (math.isfinite(q) and 0 <= q <= 1):
        raise FscertError(f"the flip probability q must be in [0, 1], got {q}")
    if epochs < 0:
        raise FscertError(f"epochs must be ≥ 0, got {epochs}")
    z = validate_latents(source_latents, "source latents")
    n, m, h, w = z.shape
    cfg = NetConfig(m, h, w, int(rho), bool(full_context), bool(translation_invariant), hidden, layers, float(q)).validate()
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ContextMLP(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    probs = None
    if counts is not None:
        c = np.asarray(counts, np.float64)
        if c.shape != (n,) or (c <= 0).any():
            raise FscertError(f"counts must be {n} positive numbers")
        probs = c / c.sum()
    L = cfg.n_cells
    history: list[float] = []
    net.train()
    for ep in Progress(range(epochs), desc="train sampler", unit="epoch", show=progress, leave=False):
        order = rng.permutation(n) if probs is None else rng.choice(n, n, p=probs)
        tot, cnt = 0.0, 0
        for s in range(0, n, batch_size):
            zb = z[order[s:s + batch_size]]
            flip = rng.random(zb.shape) < q
            zb = np.where(flip, -zb, zb).astype(np.int8)
            y_BL = token_to_index(tokens(zb))
            b_P, cl = np.divmod(np.arange(y_BL.size), L)
            if len(b_P) > max_pairs:
                sel = np.sort(rng.choice(len(b_P), max_pairs, replace=False))
                b_P, cl = b_P[sel], cl[sel]
            x, y = pair_inputs(cfg, zb, b_P, cl), y_BL[b_P, cl]
            logits = net(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(np.ascontiguousarray(cl)))
            loss = F.cross_entropy(logits, torch.from_numpy(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(y)
            cnt += len(y)
        history.append(tot / max(cnt, 1))
        if on_epoch is not None:
            on_epoch(ep, history[-1])
    net.eval()
    return net, history


# ----------------------------------------------------------------------------- sampling
@torch.no_grad()
def cell_probs(net: ContextMLP, z_NMHW: np.ndarray, cell: int, chunk: int = 4096) -> np.ndarray:
    """softmax of the network at ``cell`` for each (partial) latent: float64 (N, 2^M)."""
    cfg = net.config
    z = np.asarray(z_NMHW, np.int8)
    x = pair_inputs(cfg, z, np.arange(len(z)), np.full(len(z), cell))
    out = []
    for s in range(0, len(x), chunk):
        xb = torch.from_numpy(x[s:s + chunk].astype(np.float32))
        logits = net(xb, torch.full((len(xb),), cell, dtype=torch.long))
        out.append(torch.softmax(logits.double(), dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 1 << cfg.latent_channels))


def sample_network(net: ContextMLP, n: int, seed: int | np.random.Generator | None = 0,
                   progress: bool = False) -> np.ndarray:
    """Draw ``n`` latents int8 (n, M, H, W) cell by cell from the network's conditionals."""
    cfg = net.config
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    m, h, w = cfg.latent_channels, cfg.latent_height, cfg.latent_width
    z = np.zeros((n, m, h, w), np.int8)
    net.eval()
    for i in Progress(range(cfg.n_cells), desc="sample", unit="cell", show=progress if n else False, leave=False):
        if n == 0:
            break
        p_NK = cell_probs(net, z, i)
        cdf = np.cumsum(p_NK, axis=1)
        u = rng.random(n) * cdf[:, -1]
        k = np.minimum((cdf <= u[:, None]).sum(1), p_NK.shape[1] - 1)
        z[:, :, i // w, i % w] = index_to_token(k, m)
    return z


# ----------------------------------------------------------------------------- save / load
def save_network(net: ContextMLP, path: str | Path, extra: dict | None = None) -> None:
    save_checkpoint(path, NET_FORMAT, NET_VERSION, asdict(net.config), net, extra=extra or {})


def load_network(path: str | Path) -> ContextMLP:
    """Load a sampler network (``weights_only=True``: files carrying code are refused)."""
    blob = load_checkpoint(path, NET_FORMAT, NET_VERSION, "fscert sampler network")
    check_config_keys(path, blob["config"], {f.name for f in dataclasses.fields(NetConfig)}, "network")
    net = load_weights(path, ContextMLP(NetConfig(**blob["config"])), blob["state_dict"])
    net.extra = blob.get("extra", {}) if isinstance(blob.get("extra"), dict) else {}
    return net
