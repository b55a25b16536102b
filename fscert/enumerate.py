"""`fscert enumerate`: the certificate of an empirical set E (DESIGN §6–7; paper §4.2 "Exhaustive searching", A.3.6).

:func:`certify` turns an empirical set E (or, in full-support mode, the source latents) into a
:class:`~fscert.certificate.Certificate`: every reachable latent with its exact probability,
and — given a model and the training images — every decoded image with its nearest training
image, PSNR, UIR flag and M-UIR membership per γ, and the memorization mass. :func:`verify`
(:mod:`fscert.verify`) recomputes a certificate from its inputs and lists every difference.
:func:`certify_to_file` runs it with its decoding checkpoint beside the output
(:mod:`fscert.decode_checkpoint`, ``enumerate --resume``) and writes the certificate.

Every comparison (listing metrics, near-copy search, reconstruction fidelity) is made in one
comparison geometry (:mod:`fscert.geometry`, attribute ``geometry``): at the images' stored
size, e.g. 28×28 of the model's 32×32 canvas, as ``fscert audit`` compares them. Given the
training images' own latents, the decoder's fidelity floor and the near-copies of its
reconstructions are recorded too (:mod:`fscert.fidelity`).
"""
from __future__ import annotations

import json
import logging
import shutil
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .audit import DEFAULT_GAMMAS
from .certificate import Certificate, latents_sha256, write_certificate
from .decode_checkpoint import DecodeCheckpoint, decode_into
from .errors import FscertError
from .fidelity import add_fidelity, check_source
from .geometry import Geometry, Targets, comparison_geometry
from .latents import LatentSet

logger = logging.getLogger(__name__)

MODE_EMPIRICAL = "empirical"
MODE_FULL = "full-support"


@dataclass
class EnumerateConfig:
    """Options of `fscert enumerate` (recorded in the certificate's ``config`` attribute): the
    defaults of the command and of the library, one table.

    ρ = 4 on an 8×8 grid: at q ≈ 0.004, 64 MNIST latents give ~65 reachable images at 1 trial and
    a few hundred at 10, the regime of the paper's Fig. 15; ρ = 1 gives millions."""

    rho: int = 4
    count_only: bool = False
    max_images: int | None = 100_000
    max_memory: int | None = None     # bytes listing, decoding and auditing may use; None: ¾ of the machine's memory
    full_support: bool = False
    tau: float | None = None
    kappa: float | None = None
    gammas: tuple[float, ...] = DEFAULT_GAMMAS
    train: str | None = None          # DATA spec of the training images (recorded, for verify)
    train_limit: int | None = None    # first N images of DATA
    train_split: str = "train"
    batch: int = 256
    near_copies_only: bool = False    # search near-copies without listing, whatever the count (fscert.verdict)
    search: bool = True               # above max_images, with a model and training images: search instead of refusing
    top_k: int = 100                  # searched certificates: the k most probable outputs (fscert.probable)
    recon_search: bool = True         # searched certificates: also search near-copies of the reconstructions

    def validate(self) -> "EnumerateConfig":
        if not isinstance(self.rho, (int, np.integer)) or self.rho < 0:
            raise FscertError(f"ρ must be an integer ≥ 0, got {self.rho}")
        if self.max_images is not None and self.max_images < 1:
            raise FscertError(f"--max-images must be ≥ 1, got {self.max_images}")
        if self.full_support and (self.tau is None or self.kappa is None):
            raise FscertError("--full-support needs --tau and --kappa (the direct sampler's flip probability, Eq. 6)")
        if self.tau is not None or self.kappa is not None:
            from .noise import check_tau_kappa

            check_tau_kappa(2.0 if self.tau is None else self.tau, 2.0 if self.kappa is None else self.kappa)
        for g in self.gammas:
            if not (math.isfinite(g) and g > 0):
                raise FscertError(f"γ must be a finite positive number, got {g}")
        return self

    def to_json(self) -> str:
        """The options that decide the certificate's content (``max_memory`` only guards resources)."""
        d = asdict(self)
        del d["max_memory"]
        d["gammas"] = [float(g) for g in self.gammas]
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, s: str | dict) -> "EnumerateConfig":
        d = json.loads(s) if isinstance(s, str) else dict(s)
        names = set(cls.__dataclass_fields__)
        d = {k: v for k, v in d.items() if k in names}
        if "gammas" in d:
            d["gammas"] = tuple(d["gammas"])
        return cls(**d)


@dataclass
class Inputs:
    """What a certificate is computed from: E, optionally a model and the training images."""

    empirical: LatentSet
    model: Any = None                 # fscert.autoencoder.LocalAutoencoder
    train: np.ndarray | None = None   # float32 N×C×S×S in [0, 1], on the model's canvas
    extra_attrs: dict = field(default_factory=dict)
    train_latents: np.ndarray | None = None   # int8 ±1, one per training image (its own latent): fidelity
    geometry: Geometry | None = None  # where images are compared; None: the whole canvas (stored size unknown)


# ----------------------------------------------------------------------------- listing


def _nan(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def list_latents(E: LatentSet, cfg: EnumerateConfig, progress: bool = False,
                 guard: Callable[[int], None] | None = None, searchable: bool = False, client=None) -> Certificate:
    """The latent part of a certificate (datasets latents/prob/log_prob, count attributes).

    ``guard(count)`` is called with the exact count before anything is listed; it raises to
    refuse (default: the memory of the listing alone against ``cfg.max_memory``). With
    ``searchable`` (a model and training images are given), a count above ``max_images`` (or
    ``near_copies_only``) returns an empty listing with ``verdict_scope`` "searched" for
    :func:`fscert.verdict.add_search_verdict` instead of raising :class:`TooManyImages`.
    ``client``: the counting pass's prefix chunks run on its workers (the same count and masses)."""
    from .enumeration import build_tables, forward, list_from_tables, TooManyImages
    from .latents import validate_latents

    z = validate_latents(E.latents, "input latents")
    m, h, w = z.shape[1:]
    attrs: dict[str, Any] = {"rho": int(cfg.rho), "anchoring": "position", "count_only": bool(cfg.count_only),
                             "latents_sha256": latents_sha256(z, E.counts)}
    empty = Certificate(np.zeros((0, m, h, w), np.int8), np.zeros(0), attrs, log_prob=np.zeros(0))
    if cfg.full_support:
        from .noise import flip_probability
        from .enumeration import MAX_FULL_SUPPORT_BITS, full_support

        bits = m * h * w
        if bits > MAX_FULL_SUPPORT_BITS:
            raise FscertError(f"--full-support lists all 2^(M·H·W) latents; M·H·W = {m}·{h}·{w} = {bits} bits "
                              f"exceeds {MAX_FULL_SUPPORT_BITS} (use the empirical mode: fscert draw, then enumerate)")
        attrs.update(mode=MODE_FULL, tau=float(cfg.tau), kappa=float(cfg.kappa), dead_end_mass=0.0)
        total = 1 << bits
        if cfg.count_only:
            attrs.update(reachable_count=str(total), listed_count=0)
            return empty
        if cfg.max_images is not None and total > cfg.max_images:
            raise TooManyImages(total, cfg.max_images)
        if guard is not None:
            guard(total)
        else:
            plan_listing(total, (m, h, w)).check(cfg.max_memory)
        q = flip_probability(cfg.tau, cfg.kappa)
        lat, prob = full_support(z, cfg.rho, q, counts=E.counts, progress=progress)
        with np.errstate(divide="ignore"):
            logp = np.log(prob)
        attrs.update(reachable_count=str(int((prob > 0).sum())), listed_count=len(lat))
        return Certificate(np.ascontiguousarray(lat, np.int8), np.asarray(prob, np.float64), attrs, log_prob=logp)
    tau = cfg.tau if cfg.tau is not None else E.attrs.get("tau")
    kappa = cfg.kappa if cfg.kappa is not None else E.attrs.get("kappa")
    attrs.update(mode=MODE_EMPIRICAL, tau=_nan(tau), kappa=_nan(kappa))
    tables = build_tables(z, cfg.rho, E.counts)
    res = forward(tables, store=False, progress=progress, client=client)
    if res.memory_splits:
        logger.warning(f"the counting pass cut {res.memory_splits} prefix chunk(s) smaller for want of memory: the "
                       "count is exact, but the float64 masses' last bits may differ from a run on a machine "
                       "with more memory (fscert.enumeration.count)")
    attrs.update(reachable_count=str(res.count), dead_end_mass=float(res.dead_end_mass), max_frontier_states=res.max_states)
    if cfg.count_only:
        attrs["listed_count"] = 0
        return empty
    if searchable and (cfg.near_copies_only or (cfg.max_images is not None and res.count > cfg.max_images)):
        attrs.update(listed_count=0, verdict_scope=SCOPE_SEARCHED)      # the near-copy search takes over
        return empty
    if cfg.max_images is not None and res.count > cfg.max_images:
        raise TooManyImages(res.count, cfg.max_images)
    if guard is not None:
        guard(res.count)
    else:
        plan_listing(res.count, (m, h, w)).check(cfg.max_memory)
    lst = list_from_tables(tables, res.count, progress=progress)
    attrs["listed_count"] = int(lst.count)
    return Certificate(lst.latents, lst.prob, attrs, log_prob=lst.log_prob)


def plan_listing(count: int, latent_shape: tuple[int, int, int], model: Any = None,
                 train: np.ndarray | None = None, n_gammas: int = 2) -> "Plan":
    """Estimated memory and time of listing ``count`` latents, decoding them with ``model``
    and searching their nearest training images (UIR) and each other (M-UIR)."""
    from .resources import Plan, decode_step, listing_step, neighbour_step, resident_step

    plan = Plan().add(listing_step(count, latent_shape))
    if model is not None:
        plan.add(decode_step(count, model))
        if train is not None:
            dim = int(np.prod(train.shape[1:]))
            plan.add(resident_step(f"hold {len(train):,} training images", train))
            plan.add(neighbour_step(count, len(train), dim, n_gammas=n_gammas))
    return plan


# ----------------------------------------------------------------------------- images and metrics


def check_inputs(latent_shape: tuple, model: Any = None, train: np.ndarray | None = None) -> None:
    """Shapes of latents, model and training images must agree (one-line errors)."""
    if model is not None:
        from .autoencoder import check_image_shape, check_latent_shape

        check_latent_shape(model.config, latent_shape)
        if train is not None:
            check_image_shape(model.config, train.shape)


def add_images(cert: Certificate, model: Any, batch: int = 256, progress: bool = False) -> None:
    """The canonical images of the listed latents (float64 decode, :func:`fscert.blocks.decode_exact`)."""
    from .blocks import decode_canonical

    cert.images = decode_canonical(model, cert.latents, batch=batch, progress=progress) if len(cert.latents) else \
        np.zeros((0, *model.config.image_shape), np.uint8)


def add_metrics(cert: Certificate, train: np.ndarray, gammas: tuple[float, ...], geometry: Geometry | None = None,
                client=None) -> None:
    """Nearest training image, PSNR, UIR flags, M-UIR membership and per-γ rates (DESIGN §7).

    Images are compared in ``geometry`` (default: the whole canvas): only the compared region's
    pixels enter the PSNR, exactly as ``fscert audit`` compares the cropped images.
    The per-γ maps hold numbers only where every reachable image is listed (``verdict_scope``
    "complete"); for a count-only or partial listing each value is JSON null, never a 0 that
    would read as "no memorization" when nothing was examined (:func:`verdict_words`).
    With ``client`` the nearest-training-image search runs sharded on its workers
    (:func:`fscert.metrics.sharded.nearest_sharded`: the same result, bit for bit)."""
    from .audit import gamma_key
    from .metrics import m_uir_greedy_mask, nearest_train, passing_mask

    k = len(cert.latents)
    g = len(gammas)
    scope = listing_scope(cert.attrs, k)
    geometry = geometry if geometry is not None else Geometry.whole(np.shape(train)[2:])
    gen = geometry.rows(cert.images).astype(np.float32) / 255.0
    ref = geometry.rows(np.asarray(train, np.float32))
    if k and client is not None:
        from .metrics.sharded import nearest_sharded       # imports dask: only with a cluster

        nn = nearest_sharded(gen, ref, client)
        idx, psnr = nn.idx_N, nn.psnr_N
    elif k:
        idx, psnr = nearest_train(gen, ref)
    else:
        idx, psnr = np.zeros(0, np.int64), np.zeros(0)
    flags = np.zeros((k, g), bool)
    members = np.zeros((k, g), bool)
    uir, uir_w, muir, muir_w, mass = {}, {}, {}, {}, {}
    p = cert.prob
    for j, gamma in enumerate(gammas):
        passing = passing_mask(psnr, gamma)
        flags[:, j] = ~passing
        members[:, j] = m_uir_greedy_mask(gen, passing, gamma) if k else passing
        key = gamma_key(gamma)
        if scope != SCOPE_COMPLETE:                   # not every reachable image was checked: no figure
            uir[key] = uir_w[key] = muir[key] = muir_w[key] = mass[key] = None
            continue
        uir[key] = float(passing.mean()) if k else float("nan")
        uir_w[key] = float(p[passing].sum())
        muir[key] = float(members[:, j].mean()) if k else float("nan")
        muir_w[key] = float(p[members[:, j]].sum())
        mass[key] = float(p[~passing].sum())
    cert.nearest_train = np.asarray(idx, np.int64)
    cert.psnr = np.asarray(psnr, np.float64)
    cert.flags = flags
    cert.m_uir = members
    cert.attrs.update(gammas=np.asarray(gammas, np.float64), uir=json.dumps(uir), uir_weighted=json.dumps(uir_w),
                      m_uir=json.dumps(muir), m_uir_weighted=json.dumps(muir_w), memorization_mass=json.dumps(mass),
                      verdict_scope=scope)


# the verdict scope and its words live in fscert.verdict (re-exported here)
from .verdict import (SCOPE_COMPLETE, SCOPE_NOT_EXAMINED, SCOPE_SEARCHED, SEARCH_MAPS, VERDICT_MAPS,  # noqa: E402
                      has_figures, listing_scope, verdict_scope, verdict_words)


def certify(inputs: Inputs, cfg: EnumerateConfig, progress: bool = False,
            checkpoint: str | Path | None = None, client=None) -> Certificate:
    """Enumerate, decode and audit (DESIGN §6.6); fills every attribute of the certificate format.

    With ``checkpoint`` (a path), the listing and the images decoded so far are saved there as
    the work goes; a later call with the same inputs continues from it (``enumerate --resume``)
    and gives the same certificate as an uninterrupted run. The caller removes it at the end.

    Once the exact count is known, and before anything is listed, the memory and time of
    listing, decoding and auditing are estimated (logged at INFO, :mod:`fscert.resources`); above
    ``cfg.max_memory`` the call refuses (:mod:`fscert.resources`).

    ``client`` (a ``dask.distributed.Client``): the near-copy searches of a certificate too large
    to list run on its workers, one task per block of training images
    (:mod:`fscert.nearcopy_sharded`); the counting pass's prefix chunks are tasks
    (:mod:`fscert.enumeration.count_sharded`); a listing is decoded chunk by chunk on the workers
    (:func:`fscert.decode_checkpoint.decode_into`) and its nearest training images searched
    sharded (:func:`add_metrics`); the certificate's content is the same.
    """
    from .data import data_sha256
    from .hashing import sha256_state_dict

    cfg.validate()
    E = inputs.empirical
    check_inputs(E.latents.shape, inputs.model, inputs.train)
    geometry = comparison_geometry(inputs.train, inputs.geometry) if inputs.model is not None else None
    check_source(E, inputs.train_latents)
    model_hash = sha256_state_dict(inputs.model.state_dict()) if inputs.model is not None else ""
    key = latents_sha256(E.latents, E.counts) + cfg.to_json() + model_hash
    ckpt = DecodeCheckpoint(Path(checkpoint), key) if checkpoint is not None else None
    cert, n_done = ckpt.load() if ckpt is not None else (None, 0)

    def guard(count: int) -> None:
        train = inputs.train if inputs.model is not None else None
        plan_listing(count, E.latents.shape[1:], inputs.model, train, len(cfg.gammas)).check(cfg.max_memory)

    searchable = inputs.model is not None and inputs.train is not None and cfg.search and not cfg.full_support
    if cert is None:
        cert = list_latents(E, cfg, progress=progress, guard=guard, searchable=searchable, client=client)
        if cert.attrs.get("verdict_scope") == SCOPE_SEARCHED:
            ckpt = None                                   # nothing to decode row by row: no checkpoint
        train_hash = data_sha256(np.asarray(inputs.train)) if inputs.train is not None and inputs.model is not None else ""
        cert.attrs.update(model_sha256=model_hash, train_sha256=train_hash, config=cfg.to_json(),
                          empirical_rows=int(len(E.latents)),
                          empirical_total=int(E.weights.sum()))
        cert.attrs.update(inputs.extra_attrs)
        if geometry is not None:
            cert.attrs["geometry"] = geometry.to_json()
        if inputs.model is not None:
            c = inputs.model.config
            cert.images = np.zeros((len(cert.latents), *c.image_shape), np.uint8)
        if ckpt is not None:
            ckpt.start(cert)
    elif not cfg.count_only:
        guard(len(cert.latents))
    recon_ckpt = None
    if cert.attrs.get("verdict_scope") == SCOPE_SEARCHED:
        from .nearcopy_checkpoint import SearchCheckpoint
        from .verdict import add_search_verdict

        logger.info(f"{cert.attrs['reachable_count']} reachable images: searching every training image's "
                    "near-copies without listing them")
        search_ckpt = None
        if checkpoint is not None:            # the finished searches, kept for a resumed run
            search_key = key + cert.attrs["train_sha256"] + (geometry.to_json() if geometry else "")
            search_ckpt = SearchCheckpoint(search_checkpoint_path(checkpoint), search_key)
            recon_key = search_key + "recon" + (latents_sha256(inputs.train_latents)
                                                if inputs.train_latents is not None else "")
            recon_ckpt = SearchCheckpoint(search_checkpoint_path(checkpoint, "-recon"), recon_key)
        add_search_verdict(cert, E.latents, E.counts, inputs.model, Targets(inputs.train, geometry), cfg,
                           float(cert.attrs["dead_end_mass"]), progress=progress, client=client,
                           checkpoint=search_ckpt)
    elif inputs.model is not None:
        decode_into(cert, inputs.model, n_done, cfg.batch, ckpt, progress, client=client)
        if inputs.train is not None:
            add_metrics(cert, inputs.train, tuple(float(g) for g in cfg.gammas), geometry, client=client)
    if "gammas" not in cert.attrs:
        cert.attrs["gammas"] = np.zeros(0, np.float64)
    cert.attrs.setdefault("verdict_scope", listing_scope(cert.attrs, len(cert.latents)))
    add_fidelity(cert, inputs, cfg, geometry, progress=progress, client=client, checkpoint=recon_ckpt)
    return cert



def search_checkpoint_path(checkpoint: str | Path, what: str = "") -> Path:
    """The folder of finished near-copy searches beside the decoding checkpoint ``checkpoint``
    (:mod:`fscert.nearcopy_checkpoint`): ``CHECKPOINT.search`` (training images),
    ``CHECKPOINT.search-recon`` (their reconstructions, ``what="-recon"``)."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + ".search" + what)


def checkpoint_path(out: str | Path) -> Path:
    """Where the decoding checkpoint of the certificate ``out`` is kept while it is made: ``OUT.partial.h5``."""
    out = Path(out)
    return out.with_name(out.name + ".partial.h5")


def certify_to_file(inputs: Inputs, cfg: EnumerateConfig, out: str | Path, resume: bool = False,
                    progress: bool = False, client=None) -> tuple[Certificate, str]:
    """:func:`certify` with its decoding checkpoint beside ``out``, then write the certificate;
    returns it and its content hash (`fscert enumerate`).

    Without ``resume`` a checkpoint an earlier run left is removed first; with it, the run
    continues from the checkpoint when the inputs and options are the same (else it starts
    again) and writes the certificate of an uninterrupted run, byte for byte. Ctrl-C keeps the
    checkpoint (an INFO record says so); once the certificate is written the checkpoint is removed.
    The same holds for the finished near-copy searches of a certificate too large to list
    (``OUT.partial.h5.search/``, :mod:`fscert.nearcopy_checkpoint`)."""
    partial = checkpoint_path(out)
    searched = search_checkpoint_path(partial)
    recon = search_checkpoint_path(partial, "-recon")
    if not resume:
        partial.unlink(missing_ok=True)
        shutil.rmtree(searched, ignore_errors=True)
        shutil.rmtree(recon, ignore_errors=True)
    elif not partial.exists() and not searched.exists():
        logger.warning(f"no checkpoint {partial} to resume from; starting from the beginning")
    try:
        cert = certify(inputs, cfg, progress=progress, checkpoint=partial, client=client)
    except KeyboardInterrupt:
        for kept, what in ((partial, "the listing and the images decoded so far"),
                           (searched, "the finished near-copy searches"),
                           (recon, "the finished searches over the reconstructions")):
            if kept.exists():
                logger.info(f"{what} are kept in {kept}; rerun with --resume to continue")
        raise
    digest = write_certificate(out, cert)
    partial.unlink(missing_ok=True)
    shutil.rmtree(searched, ignore_errors=True)
    shutil.rmtree(recon, ignore_errors=True)
    return cert, digest

from .verify import _describe, _same_array, verify  # noqa: E402,F401  (re-exported from fscert.enumerate)
