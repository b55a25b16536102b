"""Resource guards: estimate memory and time before long work, refuse above ``--max-memory``.

Every command that lists, decodes, trains or searches nearest neighbours first builds a
:class:`Plan` of its steps, prints one line with the estimated peak memory and time, and
refuses (one-line :class:`~fscert.errors.FscertError`, nothing written) when the memory
estimate exceeds the limit: ``--max-memory`` GiB, by default three quarters of the
machine's physical memory.

Memory is counted from array sizes (what the step keeps and its largest working buffer).
Time is *measured*, not assumed: a small calibration of the same kernel on this machine
(decoding a batch, one training step, one float32 matrix product) is timed and
extrapolated. Calibrations run on throwaway copies under a forked RNG, so they never
change a result: estimates are printed, never stored in an output.
"""
from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import FscertError

#: fraction of physical memory used when no --max-memory is given
DEFAULT_FRACTION = 0.75
#: rows timed when calibrating a kernel
CALIBRATION_ROWS = 64


def machine_memory() -> int:
    """Physical memory in bytes (POSIX sysconf; 8 GiB when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def memory_limit(max_memory: int | None = None) -> int:
    """Bytes a command may use: ``max_memory``, or ¾ of the machine's memory."""
    return int(max_memory) if max_memory is not None else int(machine_memory() * DEFAULT_FRACTION)


def gib_to_bytes(gib: float | None) -> int | None:
    """The CLI's ``--max-memory`` (GiB) in bytes; None stays None (the default limit)."""
    return None if gib is None else int(gib * 2**30)


def size_str(n: float) -> str:
    """Bytes as ``12.3 MiB`` / ``4.56 GiB``."""
    if n >= 2**30:
        return f"{n / 2**30:.2f} GiB"
    if n >= 2**20:
        return f"{n / 2**20:.1f} MiB"
    return f"{n / 2**10:.1f} KiB"


def time_str(s: float) -> str:
    """Seconds as ``< 1 s``, ``42 s``, ``3.5 min`` or ``2.1 h``."""
    if s < 1:
        return "< 1 s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


@dataclass
class Step:
    """One step of a plan: what it does, the bytes it needs, its estimated seconds."""

    what: str
    bytes: int
    time_s: float = 0.0          # estimated seconds (calibrated on this machine)


@dataclass
class Plan:
    """The steps of one command. Memory adds up (results of earlier steps stay in memory)."""

    steps: list[Step] = field(default_factory=list)

    def add(self, step: Step) -> "Plan":
        self.steps.append(step)
        return self

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.steps)

    @property
    def time_s(self) -> float:
        return sum(s.time_s for s in self.steps)

    def line(self) -> str:
        what = ", ".join(s.what for s in self.steps)
        return f"estimate: {what}: about {size_str(self.bytes)} and {time_str(self.time_s)}"

    def check(self, max_memory: int | None = None, log: Callable[[str], None] | None = None) -> "Plan":
        """Print the estimate with ``log``; refuse when the memory estimate is above the limit."""
        limit = memory_limit(max_memory)
        if log is not None:
            log(self.line())
        if self.bytes > limit:
            big = max(self.steps, key=lambda s: s.bytes)
            raise FscertError(f"{big.what} needs about {size_str(self.bytes)} in all, above --max-memory "
                              f"{size_str(limit)}; give a larger --max-memory or do less work at once")
        return self


# ----------------------------------------------------------------------------- calibrations


def _timed(fn: Callable[[], object], repeat: int = 2) -> float:
    """Best wall time of ``repeat`` calls after one warm-up call (the best resists other load)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_flops() -> float:
    """Float32 matrix-product throughput of this machine (flop/s), from one 256×512×1024 product."""
    import torch

    a = torch.ones(256, 512)
    b = torch.ones(512, 1024)
    return 2 * 256 * 512 * 1024 / max(_timed(lambda: a @ b), 1e-9)


def decode_seconds_per_image(model) -> float:
    """Seconds to decode one latent with ``model`` (a batch of random ±1 latents, timed)."""
    import torch

    c = model.config
    with torch.random.fork_rng():
        torch.manual_seed(0)
        z = torch.randint(0, 2, (CALIBRATION_ROWS, c.latent_channels, c.latent_size, c.latent_size)).float() * 2 - 1
    model.eval()
    with torch.no_grad():
        t = _timed(lambda: model.decode(z))
    return t / CALIBRATION_ROWS


def encode_seconds_per_image(model) -> float:
    """Seconds to encode one image with ``model``."""
    import torch

    c = model.config
    x = torch.full((CALIBRATION_ROWS, c.image_channels, c.image_size, c.image_size), 0.5)
    model.eval()
    with torch.no_grad():
        t = _timed(lambda: model.encode(x))
    return t / CALIBRATION_ROWS


def train_seconds_per_image(model, batch_size: int, decoder_only: bool = False, epochs: int = 3) -> float:
    """Seconds per image and epoch of the real training loops: :func:`fscert.training.train`
    (phase 1, encoder and decoder) or, with ``decoder_only``, the decoder-only loop of phase 2
    and of :func:`fscert.training.finetune_decoder`, run for ``epochs`` on one batch of
    random images, on a throwaway copy of ``model`` under a forked RNG. Loop overheads
    (noise, batching, evaluation) are included, so the estimate errs on the long side (a short
    run evaluates every epoch, a long one on about 100)."""
    import torch

    from .training import TrainConfig, _fit_decoder, train

    c = model.config
    k = max(1, min(batch_size, 128))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        x = torch.rand(k, c.image_channels, c.image_size, c.image_size).numpy()
        z = (torch.randint(0, 2, (k, c.latent_channels, c.latent_size, c.latent_size)) * 2 - 1).to(torch.int8).numpy()
        x_t, z_t = torch.from_numpy(x), torch.from_numpy(z).float()

        def run(e: int) -> None:
            if decoder_only:
                cfg = TrainConfig(epochs=0, finetune_epochs=e, batch_size=k)
                _fit_decoder(copy.deepcopy(model), lambda idx: z_t[idx], x_t, e, cfg, torch.Generator(), phase=3)
            else:
                train(x, c, TrainConfig(epochs=e, finetune_epochs=0, batch_size=k), progress=False)

        run(1)                                            # warm-up: first-call allocations
        t = time.perf_counter()
        run(epochs)
        t = time.perf_counter() - t
    return t / (epochs * k)


# ----------------------------------------------------------------------------- steps


def nbytes(shape: tuple[int, ...], itemsize: int) -> int:
    return int(np.prod([int(s) for s in shape], dtype=np.float64)) * itemsize


def listing_step(count: int, latent_shape: tuple[int, int, int]) -> Step:
    """Listing ``count`` latents: the walk's output and the certificate (int8, twice), prob and log_prob."""
    cells = int(np.prod(latent_shape))
    return Step(f"list {count:,} latents", int(count) * (2 * cells + 16))


def decode_step(count: int, model, sec_per_image: float | None = None) -> Step:
    """Decoding ``count`` latents into uint8 images (and one float32 batch)."""
    c = model.config
    img = c.image_channels * c.image_size * c.image_size
    if sec_per_image is None:
        sec_per_image = decode_seconds_per_image(model) if count else 0.0
    return Step(f"decode {count:,} images of {c.image_channels}×{c.image_size}×{c.image_size}",
                int(count) * img + 256 * img * 4, count * sec_per_image)


def sampling_step(bank, n: int, q: float) -> Step:
    """Direct sampling of ``n`` latents from ``bank`` (:func:`fscert.sampling.sample_direct`):
    the int8 output, packed contexts, draws and flips; time from sampling a few latents."""
    from .sampling import sample_direct

    per = 2 * bank.n_bits + 8 * (bank.n_bits // 64 + 1) + 24 + bank.m
    k = min(n, CALIBRATION_ROWS)
    sec = _timed(lambda: sample_direct(bank, k, q, seed=0), repeat=1) / k * n if k else 0.0
    return Step(f"sample {n:,} latents", int(n) * per, sec)


def encode_step(count: int, model) -> Step:
    """Encoding ``count`` images (already in memory) into int8 latents."""
    c = model.config
    cells = c.latent_channels * c.latent_size * c.latent_size
    img = c.image_channels * c.image_size * c.image_size
    sec = encode_seconds_per_image(model) * count if count else 0.0
    return Step(f"encode {count:,} images", int(count) * cells + 256 * img * 4 * 4, sec)


def neighbour_step(n_query: int, n_ref: int, dim: int, n_gammas: int = 0, self_search: bool = False,
                   flops: float | None = None, copy_query: bool = True) -> Step:
    """Nearest-neighbour search of ``n_query`` rows among ``n_ref`` (chunked float32 products).

    Memory: a float32 copy of the query rows (when ``copy_query``), the working blocks of
    :mod:`fscert.metrics.nearest` and per-row results. The blocks (query and reference rows, the
    b×c distance matrix, its top-k and the merge) are counted twice: the peak measured over a
    whole audit (30,000 × 10,000 rows of 784) is about twice one search's blocks, as the M-UIR
    and self searches run while earlier results and allocator caches are alive. Work:
    2·N·M·D flops, plus at most 2·N²·D per γ for the M-UIR comparisons among the generated
    images, plus 2·M²·D for a search of the reference set against itself (``self_search``: AuthPct).
    """
    from .metrics.nearest import CANDIDATES, GEN_BATCH, TRAIN_CHUNK

    b, c = min(GEN_BATCH, max(n_query, 1)), min(TRAIN_CHUNK, max(n_ref, 1))
    work = 2 * (b * dim * 4 + c * dim * 4 + 3 * b * c * 4)
    per_row = CANDIDATES * 24 + 8 * 4 + 2 * max(n_gammas, 1)
    mem = (n_query * dim * 4 if copy_query else 0) + work + n_query * per_row
    fl = 2.0 * n_query * n_ref * dim + 2.0 * n_gammas * n_query * n_query * dim
    if self_search:
        fl += 2.0 * n_ref * n_ref * dim
        mem += n_ref * per_row
    if flops is None:
        flops = matmul_flops() if fl else 1.0
    what = f"nearest-neighbour search of {n_query:,} among {n_ref:,} images"
    return Step(what, int(mem), fl / flops)


def resident_step(what: str, *arrays: np.ndarray) -> Step:
    """Arrays already in memory when the work starts (inputs): counted so that the plan is the peak."""
    return Step(what, int(sum(np.asarray(a).nbytes for a in arrays)))


def training_step(n_images: int, model, batch_size: int, epochs: int = 0, decoder_epochs: int = 0,
                  what: str = "train") -> Step:
    """Training ``epochs`` (encoder and decoder) then ``decoder_epochs`` (decoder only) over
    ``n_images``: memory of the float32 images, the model with Adam's moments and one batch."""
    c = model.config
    img = c.image_channels * c.image_size * c.image_size * 4
    params = sum(p.numel() for p in model.parameters()) * 4
    sec = 0.0
    if epochs and n_images:
        sec += train_seconds_per_image(model, batch_size) * n_images * epochs
    if decoder_epochs and n_images:
        sec += train_seconds_per_image(model, batch_size, decoder_only=True) * n_images * decoder_epochs
    act = batch_size * img * 16
    return Step(f"{what} {epochs + decoder_epochs} epochs on {n_images:,} images", n_images * img + 4 * params + act, sec)
