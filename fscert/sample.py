"""`fscert sample`: latents (and images) drawn from an FS-LAR generator, with provenance (§4.2).

``direct`` samples Eq. 6–8 exactly (:func:`fscert.sampling.sample_direct`): for each cell a
source patch is drawn with probability ∝ q^ham·(1−q)^(|z°|−ham) of its context, then its
centre bits are flipped with probability q. ``network`` trains an MLP on flipped source latents
(A.3.3, :func:`fscert.network.train_network`), or loads a saved one, and samples from it; with
``full_context`` it is the PixelCNN-like baseline of A.1.6.

:func:`sample_to_file` writes HDF5 ``latents`` (and ``images`` with a model, plus a PNG grid
beside the file, :func:`fscert.image_grid.image_grid`) with the attributes that reproduce them:
the same inputs, config and seed give the same samples. The memory is estimated first and the
work refused above the limit; on any failure nothing is written.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .empirical import DrawConfig
from .errors import FscertError
from .fileio import atomic_path, check_output_path
from .hashing import sha256_arrays
from .image_grid import image_grid
from .latents import read_latents, write_latents
from .noise import check_tau_kappa, flip_probability
from .resources import Plan, Step, decode_step, sampling_step

logger = logging.getLogger(__name__)

STRATEGIES = ("direct", "network")
#: at most this many images in the PNG grid written beside the samples
PNG_MAX_IMAGES = 256


@dataclass
class SampleConfig:
    """Options of `fscert sample` (§4.2, A.3.3): the defaults of the command and of :func:`sample_to_file`."""

    strategy: str = "direct"          # "direct" (Eq. 6–8, exact) or "network" (A.3.3)
    rho: int = 1                      # observation range: the window is (2ρ+1)×(2ρ+1) cells
    tau: float = DrawConfig.tau       # the generator's noise (Eq. 5): the draws' τ and κ, q ≈ 0.0041
    kappa: float = DrawConfig.kappa
    n_samples: int = 64
    seed: int = 0
    network_epochs: int = 600         # training epochs of the sampler network (strategy "network")
    translation_invariant: bool = False
    full_context: bool = False        # context = every previous cell (A.1.6); ρ is ignored

    def validate(self) -> "SampleConfig":
        if self.strategy not in STRATEGIES:
            raise FscertError(f"strategy must be one of {', '.join(STRATEGIES)}, got '{self.strategy}'")
        if self.rho < 0:
            raise FscertError(f"ρ must be ≥ 0, got {self.rho}")
        if self.n_samples < 1:
            raise FscertError(f"the number of samples must be ≥ 1, got {self.n_samples}")
        if self.network_epochs < 0:
            raise FscertError(f"network epochs must be ≥ 0, got {self.network_epochs}")
        if self.translation_invariant and self.full_context:
            raise FscertError("--translation-invariant and --full-context cannot be combined")
        check_tau_kappa(self.tau, self.kappa)
        return self

    @property
    def flip_prob(self) -> float:
        """q = ½(1 − 1/τ)^(1/κ) (Eq. 26), 0 for τ ≤ 1."""
        return flip_probability(self.tau, self.kappa)


def png_path(out: str | Path) -> Path:
    """The PNG grid written beside the samples ``out`` when they are decoded."""
    return Path(out).with_suffix(".png")


def sample_to_file(latents_path: str | Path, out: str | Path, cfg: SampleConfig, model_path: str | Path | None = None,
                   network_path: str | Path | None = None, save_network_path: str | Path | None = None,
                   force: bool = False, max_memory: int | None = None, progress: bool = False) -> dict:
    """Draw ``cfg.n_samples`` latents from the generator on the source latents in ``latents_path``
    and write them to ``out`` (with ``model_path``: decoded, and a PNG grid beside it).

    ``network_path``: sample from this saved sampler network (strategy "network"; its ρ, q and
    context are used, and it must have been trained on these latents). ``save_network_path``:
    save the network trained here. Returns ``n_samples``, ``strategy``, ``rho``, ``q``, ``out``
    and ``png`` (None without a model)."""
    out = check_output_path(out, force)
    png = png_path(out)
    if model_path is not None:
        check_output_path(png, force)
    cfg.validate()
    if (network_path or save_network_path) and cfg.strategy != "network":
        raise FscertError("--network and --save-network need --strategy network")
    if network_path and save_network_path:
        raise FscertError("--network loads a trained network; --save-network saves a newly trained one: give one")
    if save_network_path:
        check_output_path(save_network_path, force)
    q = cfg.flip_prob
    ls = read_latents(latents_path)
    z = ls.latents
    model = None
    if model_path is not None:
        from .autoencoder import check_latent_shape, load_model

        model = load_model(model_path)
        check_latent_shape(model.config, z.shape)
    arrays = {"latents": z} if ls.counts is None else {"latents": z, "counts": ls.counts}
    rho, tau, kappa = cfg.rho, cfg.tau, cfg.kappa
    full_context, translation_invariant = cfg.full_context, cfg.translation_invariant
    n = cfg.n_samples
    extra_attrs: dict[str, Any] = {}
    if cfg.strategy == "direct":
        from .sampling import build_bank, sample_direct

        bank = build_bank(z, rho, ls.counts, translation_invariant, full_context)
        plan = Plan().add(sampling_step(bank, n, q))
        if model is not None:
            plan.add(decode_step(n, model))
        plan.check(max_memory)
        samples = sample_direct(bank, n, q, seed=cfg.seed, progress=progress)
        extra_attrs["patterns"] = bank.n_patterns()
    else:
        from .network import load_network, sample_network, save_network, train_network

        plan = Plan().add(Step(f"sample {n:,} latents", n * z[0].size * 2))
        if model is not None:
            plan.add(decode_step(n, model))
        plan.check(max_memory)
        source_sha = sha256_arrays(arrays)
        if network_path:
            net = load_network(network_path)
            c = net.config
            if (c.latent_channels, c.latent_height, c.latent_width) != z.shape[1:]:
                raise FscertError(f"{network_path} samples {c.latent_channels}×{c.latent_height}×{c.latent_width} "
                                  f"latents, but {latents_path} holds {'×'.join(map(str, z.shape[1:]))}")
            if net.extra.get("latents_sha256") != source_sha:
                raise FscertError(f"{network_path} was trained on other latents than {latents_path}")
            rho, q, full_context, translation_invariant = c.rho, c.q, c.full_context, c.translation_invariant
            tau = kappa = float("nan")                    # the network was trained at q; τ and κ are not used
            logger.info(f"using the network's ρ = {rho}, q = {q:.4g}" + (", full context" if full_context else "")
                        + (", translation-invariant" if translation_invariant else ""))
            extra_attrs.update(network=str(network_path), network_epochs=int(net.extra.get("epochs", -1)),
                               network_loss=json.dumps(net.extra.get("loss", [])))
        else:
            net, hist = train_network(z, rho, q, epochs=cfg.network_epochs, seed=cfg.seed, counts=ls.counts,
                                      full_context=full_context, translation_invariant=translation_invariant,
                                      progress=progress)
            extra_attrs.update(network_epochs=cfg.network_epochs, network_loss=json.dumps(hist))
            if save_network_path:
                save_network(net, save_network_path, extra={"latents_sha256": source_sha,
                                                            "epochs": cfg.network_epochs, "seed": cfg.seed,
                                                            "loss": hist})
        samples = sample_network(net, n, seed=cfg.seed, progress=progress)

    attrs = {
        "command": "sample", "strategy": cfg.strategy, "rho": int(rho), "tau": float(tau), "kappa": float(kappa),
        "q": float(q), "seed": int(cfg.seed), "n_samples": int(n),
        "anchoring": "translation-invariant" if translation_invariant else "position",
        "full_context": bool(full_context), "latents_sha256": sha256_arrays(arrays), "model_sha256": "",
        **extra_attrs,
    }
    if model is not None:
        from .autoencoder import decode_batched, model_sha256

        attrs["model_sha256"] = model_sha256(model)
        images = decode_batched(model, samples, progress=progress)
        with atomic_path(png) as tmp_png:
            Image.fromarray(image_grid(images, max_images=PNG_MAX_IMAGES)).save(tmp_png, format="PNG")
            write_latents(out, samples, attrs, extra={"images": images})
    else:
        write_latents(out, samples, attrs)
    return {"n_samples": n, "strategy": cfg.strategy, "rho": rho, "q": q, "out": out,
            "png": png if model is not None else None}
