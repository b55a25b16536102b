"""Resource guards: estimate memory and time before long work, refuse above ``--max-memory``.

Every command that lists, decodes, trains or searches nearest neighbours first builds a
:class:`Plan` of its steps, prints one line with the estimated peak memory and time, and
refuses (one-line :class:`~fscert.errors.FscertError`, nothing written) when the memory
estimate exceeds ``--max-memory`` GiB (default: ¾ of the machine's physical memory).

Memory is counted from array sizes (what the step keeps and its largest working buffer).
Time is a model of the work, never a measurement: counts of the work's units (optimiser
steps, multiply-accumulates and values written per image, batches, flops of the
nearest-neighbour products, sampled candidates) times per-unit costs measured once on a
reference machine by ``tests/benchmarks/test_bench_costs.py`` and shipped as
``fscert/costs.json``. Estimating runs no kernel and draws no random number, so the same
inputs always give the same estimate and an estimate never changes a result; the arithmetic
of a network is counted by a forward pass on PyTorch's ``meta`` device (shapes only).
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
from dataclasses import dataclass, field, fields
from importlib import resources as importlib_resources

import numpy as np

from .errors import FscertError

logger = logging.getLogger(__name__)
#: fraction of physical memory used when no --max-memory is given
DEFAULT_FRACTION = 0.75
CALIBRATION_ROWS = 64       # rows timed by fscert.empirical.plan_draws (a calibration of < 0.1 s)
#: the per-unit costs, a data file of the fscert package
COSTS_FILE = "costs.json"
#: images per batch of decode_batched / encode_batched and of fscert.training.evaluate
FORWARD_BATCH = 256


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


@dataclass(frozen=True)
class Costs:
    """Seconds per unit of work on the reference machine ``machine`` (``fscert/costs.json``)."""

    machine: str
    train_step_s: float          # per optimiser step (batching, zero_grad, loss, Adam's fixed part)
    train_param_s: float         # per parameter per optimiser step (Adam's update)
    train_mac_s: float           # per multiply-accumulate of a k×k convolution, per image, trained (fwd + bwd)
    train_pointwise_mac_s: float  # per multiply-accumulate of a 1×1 convolution or linear layer, trained
    train_value_s: float         # per value written by the forward pass, per image, trained
    forward_batch_s: float       # per batch of a no-grad forward pass (decode, encode, evaluate)
    forward_mac_s: float         # per multiply-accumulate of a k×k convolution, per image, no grad
    forward_pointwise_mac_s: float  # per multiply-accumulate of a 1×1 convolution or linear layer, no grad
    forward_value_s: float       # per value written, per image, no grad
    search_flop_s: float         # per flop of the nearest-neighbour products (topk and re-ranking included)
    sample_candidate_s: float    # direct sampling: per (sample, cell, candidate pattern)
    sample_word_s: float         # direct sampling: per (sample, cell, candidate, 64-bit context word)
    sample_cell_s: float         # direct sampling: per (sample, cell): packing, draws, flips


def parse_costs(text: str) -> Costs:
    """:class:`Costs` from the JSON of ``costs.json``: ``{"machine": ..., "costs": {name: seconds}}``."""
    blob = json.loads(text)
    names = [f.name for f in fields(Costs) if f.name != "machine"]
    missing = [n for n in names if n not in blob.get("costs", {})]
    if missing:
        raise FscertError(f"{COSTS_FILE} lacks the per-unit costs {', '.join(missing)}; "
                          "rerun FSCERT_WRITE_COSTS=1 make bench")
    return Costs(machine=str(blob["machine"]), **{n: float(blob["costs"][n]) for n in names})


@functools.lru_cache(maxsize=1)
def reference_costs() -> Costs:
    """The shipped per-unit costs, read once through :mod:`importlib.resources` (so they load
    from an installed wheel as from the source tree)."""
    try:
        text = importlib_resources.files("fscert").joinpath(COSTS_FILE).read_text(encoding="utf-8")
    except OSError as e:
        raise FscertError(f"the per-unit costs ({COSTS_FILE}) are missing from the fscert package: {e}") from e
    return parse_costs(text)


@dataclass(frozen=True)
class Work:
    """One image through a network: multiply-accumulates of k×k and pointwise (1×1, linear) layers, values written."""

    macs: float = 0.0
    pointwise_macs: float = 0.0
    values: float = 0.0

    def __add__(self, other: "Work") -> "Work":
        return Work(self.macs + other.macs, self.pointwise_macs + other.pointwise_macs, self.values + other.values)


def network_work(net, input_shape: tuple[int, ...]) -> Work:
    """Work of one forward pass of one input of shape ``input_shape`` (no batch axis) through ``net``.

    Every leaf module adds the values it writes; a convolution adds its weight count times its
    output positions (transposed: times its input positions), a linear layer its weight count
    per output row. ``net`` should be on the ``meta`` device (:func:`model_work`): shapes only."""
    import torch  # noqa: PLC0415 - slow (1.5 s measured); the CLI imports this module for gib_to_bytes
    import torch.nn as nn  # noqa: PLC0415

    total = [0.0, 0.0, 0.0]                                           # macs, pointwise macs, values

    def count(mod, inp, out) -> None:
        if isinstance(mod, nn.ConvTranspose2d):
            total[0] += mod.weight.numel() * inp[0].shape[-2] * inp[0].shape[-1]
        elif isinstance(mod, nn.Conv2d):
            total[0 if mod.kernel_size != (1, 1) else 1] += mod.weight.numel() * out.shape[-2] * out.shape[-1]
        elif isinstance(mod, nn.Linear):
            total[1] += mod.weight.numel() * (out.numel() // out.shape[-1])
        total[2] += out.numel()

    handles = [m.register_forward_hook(count) for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            net(torch.zeros((1, *input_shape), device="meta"))
    finally:
        for h in handles:
            h.remove()
    return Work(*total)


@dataclass(frozen=True)
class ModelWork:
    """Per-image work of an autoencoder's parts and their parameter counts."""

    encoder: Work
    decoder: Work
    encoder_params: int
    decoder_params: int


def model_work(model) -> ModelWork:
    """:class:`ModelWork` of ``model`` (a :class:`~fscert.autoencoder.LocalAutoencoder`), counted on
    a ``meta``-device copy built from its config (a few ms): the model's weights, the random
    generators and memory are not touched."""
    import torch  # noqa: PLC0415 - slow import, see network_work

    c = model.config
    with torch.device("meta"):                     # no memory, no initialisation draws
        meta = type(model)(c)
    n_params = lambda net: int(sum(p.numel() for p in net.parameters()))  # noqa: E731
    return ModelWork(network_work(meta.encoder, c.image_shape),
                     network_work(meta.decoder, c.latent_shape),
                     n_params(meta.encoder), n_params(meta.decoder))


def forward_seconds(work: Work, images: int, batch: int = FORWARD_BATCH, costs: Costs | None = None) -> float:
    """A no-grad forward pass of ``images`` in batches of ``batch``: ``images·(macs·forward_mac_s +
    pointwise_macs·forward_pointwise_mac_s + values·forward_value_s) + batches·forward_batch_s``."""
    c = costs or reference_costs()
    per_image = (work.macs * c.forward_mac_s + work.pointwise_macs * c.forward_pointwise_mac_s
                 + work.values * c.forward_value_s)
    return 0.0 if images <= 0 else images * per_image + math.ceil(images / batch) * c.forward_batch_s


def fit_seconds(work: Work, params: int, images: int, epochs: int, batch: int, costs: Costs | None = None) -> float:
    """``epochs`` of training over ``images`` in batches of ``batch``, ``params`` trained:
    ``steps·(train_step_s + params·train_param_s) + epochs·images·(macs·train_mac_s + …)``, the
    ``…`` as in :func:`forward_seconds`, with ``steps = epochs·⌈images / batch⌉``."""
    c = costs or reference_costs()
    steps = epochs * math.ceil(images / batch) if images > 0 and epochs > 0 else 0
    per_image = (work.macs * c.train_mac_s + work.pointwise_macs * c.train_pointwise_mac_s
                 + work.values * c.train_value_s)
    return 0.0 if steps == 0 else steps * (c.train_step_s + params * c.train_param_s) + epochs * images * per_image


def evaluations(epochs: int, points: int = 100) -> int:
    """Evaluations in a training phase of ``epochs`` (as ``fscert.training._eval_now``: ~``points``)."""
    every = max(1, -(-epochs // max(1, points)))
    return 0 if epochs <= 0 else epochs // every + (1 if epochs % every else 0)


def matmul_flops() -> float:
    """Flop/s of the nearest-neighbour products (float32 matrix products, top-k and exact
    re-ranking included) on the reference machine: ``1 / search_flop_s``."""
    return 1.0 / reference_costs().search_flop_s


def decode_work(model) -> Work:
    """A decoded image: the decoder, then ``to_uint8`` (clamp, scale, round, cast: 4 passes)."""
    c = model.config
    return model_work(model).decoder + Work(values=4 * math.prod(c.image_shape))


def encode_work(model) -> Work:
    """An encoded image: the encoder, then tanh, sign and the int8 cast (3 passes over the latent)."""
    c = model.config
    return model_work(model).encoder + Work(values=3 * math.prod(c.latent_shape))


def decode_seconds_per_image(model) -> float:
    """Modelled seconds to decode one latent with ``model`` (in full batches)."""
    return forward_seconds(decode_work(model), FORWARD_BATCH) / FORWARD_BATCH


def encode_seconds_per_image(model) -> float:
    """Modelled seconds to encode one image with ``model`` (in full batches)."""
    return forward_seconds(encode_work(model), FORWARD_BATCH) / FORWARD_BATCH


def train_seconds_per_image(model, batch_size: int, decoder_only: bool = False, epochs: int = 3) -> float:
    """Modelled seconds per image and epoch of phase 1 or (``decoder_only``) of the decoder-only
    loops, in full batches, without evaluation (``epochs`` does not change it; kept for callers)."""
    w, b = model_work(model), max(1, int(batch_size))
    if decoder_only:
        return fit_seconds(w.decoder, w.decoder_params, b, 1, b) / b
    return fit_seconds(w.encoder + w.decoder, w.encoder_params + w.decoder_params, b, 1, b) / b


@dataclass
class Step:
    """One step of a plan: what it does, the bytes it needs, its estimated seconds."""

    what: str
    bytes: int
    time_s: float = 0.0          # estimated seconds: counts × per-unit costs of the reference machine


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
        return (f"estimate: {what}: about {size_str(self.bytes)} and {time_str(self.time_s)} "
                f"(time from per-unit costs measured on {reference_costs().machine})")

    def check(self, max_memory: int | None = None) -> "Plan":
        """Log the estimate (INFO; each step's memory and the limit at DEBUG); refuse above the limit."""
        limit = memory_limit(max_memory)
        logger.info(self.line())
        logger.debug("  %s; limit %s", "; ".join(f"{s.what}: {size_str(s.bytes)}" for s in self.steps), size_str(limit))
        if self.bytes > limit:
            big = max(self.steps, key=lambda s: s.bytes)
            raise FscertError(f"{big.what} needs about {size_str(self.bytes)} in all, above --max-memory "
                              f"{size_str(limit)}; give a larger --max-memory or do less work at once")
        return self


def nbytes(shape: tuple[int, ...], itemsize: int) -> int:
    """Bytes of an array of ``shape`` and ``itemsize``."""
    return int(np.prod([int(s) for s in shape], dtype=np.float64)) * itemsize


def listing_step(count: int, latent_shape: tuple[int, int, int]) -> Step:
    """Listing ``count`` latents: the walk's output and the certificate (int8, twice), prob and log_prob."""
    cells = int(np.prod(latent_shape))
    return Step(f"list {count:,} latents", int(count) * (2 * cells + 16))


def decode_step(count: int, model, sec_per_image: float | None = None) -> Step:
    """Decoding ``count`` latents into uint8 images (and one float32 batch)
    (:func:`fscert.autoencoder.decode_batched`); ``sec_per_image`` overrides the model of its time."""
    c = model.config
    img = math.prod(c.image_shape)
    sec = count * sec_per_image if sec_per_image is not None else forward_seconds(decode_work(model), count)
    return Step(f"decode {count:,} images of {'×'.join(map(str, c.image_shape))}",
                int(count) * img + 256 * img * 4, sec)


def sampling_step(bank, n: int, q: float) -> Step:
    """Direct sampling of ``n`` latents from ``bank`` (:func:`fscert.sampling.sample_direct`):
    the int8 output, packed contexts, draws and flips. Time: for every cell, each sample weighs
    every candidate pattern of the cell's pool (one popcount per 64-bit context word), so
    ``n·Σ_cells (N·sample_candidate_s + N·W·sample_word_s + sample_cell_s)`` with the pool's N
    patterns of W words (``q`` does not change the work)."""
    c = reference_costs()
    per = 2 * bank.n_bits + 8 * (bank.n_bits // 64 + 1) + 24 + bank.m
    pools = (bank.pool(i)[0] for i in range(bank.n_cells))          # each cell's words_NW
    sec = sum(len(w_NW) * c.sample_candidate_s + w_NW.size * c.sample_word_s + c.sample_cell_s for w_NW in pools)
    return Step(f"sample {n:,} latents", int(n) * per, max(0, n) * sec)


def encode_step(count: int, model) -> Step:
    """Encoding ``count`` images (already in memory) into int8 latents (:func:`fscert.autoencoder.encode_batched`)."""
    c = model.config
    cells = math.prod(c.latent_shape)
    img = math.prod(c.image_shape)
    return Step(f"encode {count:,} images", int(count) * cells + 256 * img * 4 * 4,
                forward_seconds(encode_work(model), count))


def neighbour_step(n_query: int, n_ref: int, dim: int, n_gammas: int = 0, self_search: bool = False,
                   flops: float | None = None, copy_query: bool = True) -> Step:
    """Nearest-neighbour search of ``n_query`` rows among ``n_ref`` (chunked float32 products).

    Memory: a float32 copy of the query rows (when ``copy_query``), the working blocks of
    :mod:`fscert.metrics.nearest` and per-row results. The blocks (query and reference rows, the
    b×c distance matrix, its top-k and the merge) are counted twice: the peak measured over a
    whole audit (30,000 × 10,000 rows of 784) is about twice one search's blocks, as the M-UIR
    and self searches run while earlier results and allocator caches are alive. Work:
    2·N·M·D flops, plus at most 2·N²·D per γ for the M-UIR comparisons among the generated
    images, plus 2·M²·D for a search of the reference set against itself (``self_search``: AuthPct),
    at ``flops`` flop/s (default: the reference machine's, :func:`matmul_flops`)."""
    from .metrics.nearest import CANDIDATES, GEN_BATCH, TRAIN_CHUNK

    b, c = min(GEN_BATCH, max(n_query, 1)), min(TRAIN_CHUNK, max(n_ref, 1))
    work = 2 * (b * dim * 4 + c * dim * 4 + 3 * b * c * 4)
    per_row = CANDIDATES * 24 + 8 * 4 + 2 * max(n_gammas, 1)
    mem = (n_query * dim * 4 if copy_query else 0) + work + n_query * per_row
    fl = 2.0 * n_query * n_ref * dim + 2.0 * n_gammas * n_query * n_query * dim
    if self_search:
        fl += 2.0 * n_ref * n_ref * dim
        mem += n_ref * per_row
    what = f"nearest-neighbour search of {n_query:,} among {n_ref:,} images"
    return Step(what, int(mem), fl / (matmul_flops() if flops is None else flops))


def resident_step(what: str, *arrays: np.ndarray) -> Step:
    """Arrays already in memory when the work starts (inputs): counted so that the plan is the peak."""
    return Step(what, int(sum(np.asarray(a).nbytes for a in arrays)))


def training_seconds(n_images: int, model, batch_size: int, epochs: int = 0, decoder_epochs: int = 0,
                     decoder_eval: bool = True, eval_images: int = 256, eval_points: int = 100) -> float:
    """Modelled seconds of :func:`fscert.training.train` (``epochs`` of phase 1, Eq. 2, then
    ``decoder_epochs`` of phase 2, Eq. 4) or, with ``decoder_eval=False``, of a decoder fine-tune
    (:func:`fscert.training.finetune_decoder`, A.3.6: no evaluation, no encoding). Phase 1 trains
    encoder and decoder; each evaluation (:func:`evaluations`) passes ``min(n, eval_images)``
    images through both. Phase 2 encodes the images once, then trains the decoder only."""
    w = model_work(model)
    both, n_eval = w.encoder + w.decoder, min(n_images, eval_images)
    sec = fit_seconds(both, w.encoder_params + w.decoder_params, n_images, epochs, batch_size)
    sec += evaluations(epochs, eval_points) * forward_seconds(both, n_eval)
    sec += fit_seconds(w.decoder, w.decoder_params, n_images, decoder_epochs, batch_size)
    if decoder_eval:
        sec += forward_seconds(w.encoder, n_images, 512)
        sec += evaluations(decoder_epochs, eval_points) * forward_seconds(both, n_eval)
    return sec


def training_step(n_images: int, model, batch_size: int, epochs: int = 0, decoder_epochs: int = 0,
                  what: str = "train") -> Step:
    """Training ``epochs`` (encoder and decoder) then ``decoder_epochs`` (decoder only) over
    ``n_images``: memory of the float32 images, the model with Adam's moments and one batch;
    time from :func:`training_seconds` (the decoder epochs evaluate, as phase 2 of ``train``
    does, when ``what`` is ``"train"``; a fine-tune does not)."""
    c = model.config
    img = math.prod(c.image_shape) * 4
    params = sum(p.numel() for p in model.parameters()) * 4
    sec = training_seconds(n_images, model, batch_size, epochs, decoder_epochs, decoder_eval=what == "train")
    mem = n_images * img + 4 * params + batch_size * img * 16           # images, weights and Adam, one batch
    return Step(f"{what} {epochs + decoder_epochs} epochs on {n_images:,} images", mem, sec)
