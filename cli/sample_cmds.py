"""`fscert sample`: draw latents (and images) from the direct sampler or a trained network (§4.2)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import click
import numpy as np

from fscert.defaults import DEFAULTS
from fscert.errors import FscertError, atomic_path, check_output_path

from fscert.resources import Plan, Step, decode_step, gib_to_bytes, sampling_step

from .common import (OutputPath, echo_err, force_option, kappa_check, max_memory_option, non_negative_int,
                     out_option, positive_int, progress_enabled, quiet_option, seed_option, tau_check)

PNG_MAX_IMAGES = 256


def save_png_grid(path: Path, images_NCHW: np.ndarray, max_images: int = PNG_MAX_IMAGES) -> None:
    """Write the first ``max_images`` uint8 images as a near-square PNG grid (1-pixel gaps); not atomic."""
    from PIL import Image

    x = np.asarray(images_NCHW[:max_images], np.uint8)
    n, c, s, _ = x.shape
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    grid = np.zeros((rows * (s + 1) + 1, cols * (s + 1) + 1, c), np.uint8)
    for k in range(n):
        r, q = divmod(k, cols)
        grid[1 + r * (s + 1):1 + r * (s + 1) + s, 1 + q * (s + 1):1 + q * (s + 1) + s] = x[k].transpose(1, 2, 0)
    Image.fromarray(grid[:, :, 0] if c == 1 else grid).save(path, format="PNG")


@click.command("sample")
@click.option("--latents", "latents_path", required=True, type=click.Path(dir_okay=False),
              help="HDF5 file of source latents (from `fscert encode` or `fscert draw`).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Autoencoder to decode the samples into images (adds `images` and a PNG grid).")
@click.option("--strategy", type=click.Choice(["direct", "network"]), default=DEFAULTS["strategy"], show_default=True,
              help="direct: exact sampling of Eq. 6–8; network: an MLP trained on the latents (A.3.3).")
@click.option("--rho", type=int, default=DEFAULTS["rho"], show_default=True, callback=non_negative_int,
              help="Observation range ρ: the window is (2ρ+1)×(2ρ+1) cells.")
@click.option("--tau", type=float, default=DEFAULTS["tau"], show_default=True, callback=tau_check,
              help="Noise scale τ (flip probability q = ½(1 − 1/τ)^(1/κ), 0 for τ ≤ 1).")
@click.option("--kappa", type=float, default=DEFAULTS["kappa"], show_default=True, callback=kappa_check,
              help="Triangular sharpness κ.")
@click.option("-n", "--n-samples", "n_samples", type=int, default=DEFAULTS["n_samples"], show_default=True,
              callback=positive_int, help="Number of latents to draw.")
@seed_option()
@out_option("Output HDF5 file (`latents`, and `images` with --model; PNG grid beside it).", name="out_path")
@click.option("--network-epochs", type=int, default=DEFAULTS["epochs"], show_default=True, callback=non_negative_int,
              help="Training epochs of the sampler network (--strategy network).")
@click.option("--translation-invariant", is_flag=True,
              help="Pool the patches of every cell with the same padding pattern (default: position-anchored).")
@click.option("--full-context", is_flag=True,
              help="Context = every previous cell (the memorization baseline of A.1.6); ρ is ignored.")
@click.option("--network", "network_path", type=click.Path(dir_okay=False), default=None,
              help="Sample from this saved sampler network instead of training one (--strategy network); "
                   "its ρ, q and context are used.")
@click.option("--save-network", "save_network_path", type=OutputPath(dir_okay=False), default=None,
              help="Save the trained sampler network (--strategy network) for later runs.")
@max_memory_option("sampling and decoding")
@force_option()
@quiet_option(expose_value=False)
def sample(latents_path: str, model_path: str | None, strategy: str, rho: int, tau: float, kappa: float,
           n_samples: int, seed: int, out_path: str, network_epochs: int, translation_invariant: bool,
           full_context: bool, network_path: str | None, save_network_path: str | None, max_memory: float | None,
           force: bool) -> None:
    """Draw latents from an FS-LAR generator (paper §4.2).

    `direct` samples Eq. 6–8 exactly: for each cell, a source patch is drawn with probability
    ∝ q^ham·(1−q)^(|z°|−ham) of its context, then its centre bits are flipped with probability q.
    `network` trains an MLP on flipped source latents and samples from it.
    """
    from fscert.hashing import sha256_arrays
    from fscert.latents import read_latents, write_latents
    from fscert.noise import flip_probability

    out = check_output_path(out_path, force)
    png = out.with_suffix(".png")
    if model_path is not None:
        check_output_path(png, force)
    if translation_invariant and full_context:
        raise FscertError("--translation-invariant and --full-context cannot be combined")
    if (network_path or save_network_path) and strategy != "network":
        raise FscertError("--network and --save-network need --strategy network")
    if network_path and save_network_path:
        raise FscertError("--network loads a trained network; --save-network saves a newly trained one: give one")
    if save_network_path:
        check_output_path(save_network_path, force)
    q = flip_probability(tau, kappa)
    ls = read_latents(latents_path)
    z = ls.latents
    model = None
    if model_path is not None:
        from fscert.autoencoder import check_latent_shape, load_model

        model = load_model(model_path)
        check_latent_shape(model.config, z.shape)
    progress = progress_enabled()

    extra_attrs: dict = {}
    if strategy == "direct":
        from fscert.sampling import build_bank, sample_direct

        bank = build_bank(z, rho, ls.counts, translation_invariant, full_context)
        plan = Plan().add(sampling_step(bank, n_samples, q))
        if model is not None:
            plan.add(decode_step(n_samples, model))
        plan.check(gib_to_bytes(max_memory), echo_err)
        samples = sample_direct(bank, n_samples, q, seed=seed, progress=progress)
        extra_attrs["patterns"] = bank.n_patterns()
    else:
        from fscert.network import load_network, sample_network, save_network, train_network

        plan = Plan().add(Step(f"sample {n_samples:,} latents", n_samples * z[0].size * 2))
        if model is not None:
            plan.add(decode_step(n_samples, model))
        plan.check(gib_to_bytes(max_memory), echo_err)
        source_sha = sha256_arrays({"latents": z} if ls.counts is None else {"latents": z, "counts": ls.counts})
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
            echo_err(f"using the network's ρ = {rho}, q = {q:.4g}" + (", full context" if full_context else "")
                     + (", translation-invariant" if translation_invariant else ""))
            extra_attrs.update(network=str(network_path), network_epochs=int(net.extra.get("epochs", -1)),
                               network_loss=json.dumps(net.extra.get("loss", [])))
        else:
            net, hist = train_network(z, rho, q, epochs=network_epochs, seed=seed, counts=ls.counts,
                                      full_context=full_context, translation_invariant=translation_invariant,
                                      progress=progress)
            extra_attrs.update(network_epochs=network_epochs, network_loss=json.dumps(hist))
            if save_network_path:
                save_network(net, save_network_path, extra={"latents_sha256": source_sha, "epochs": network_epochs,
                                                            "seed": seed, "loss": hist})
        samples = sample_network(net, n_samples, seed=seed, progress=progress)

    arrays = {"latents": z} if ls.counts is None else {"latents": z, "counts": ls.counts}
    attrs = {
        "command": "sample", "strategy": strategy, "rho": int(rho), "tau": float(tau), "kappa": float(kappa),
        "q": float(q), "seed": int(seed), "n_samples": int(n_samples),
        "anchoring": "translation-invariant" if translation_invariant else "position",
        "full_context": bool(full_context), "latents_sha256": sha256_arrays(arrays), "model_sha256": "",
        **extra_attrs,
    }
    extra = {}
    if model is not None:
        from fscert.autoencoder import decode_batched, model_sha256

        attrs["model_sha256"] = model_sha256(model)
        extra["images"] = decode_batched(model, samples, progress=progress)
        with atomic_path(png) as tmp_png:
            save_png_grid(tmp_png, extra["images"])
            write_latents(out, samples, attrs, extra=extra)
    else:
        write_latents(out, samples, attrs)
    click.echo(f"wrote {n_samples} samples ({strategy}, ρ={rho}, q={q:.4g}) to {out}"
               + (f" and {png}" if model is not None else ""))


COMMANDS = [sample]
