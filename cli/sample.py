"""`fscert sample`: latents (and images) drawn from the direct sampler or a trained network (§4.2)."""
from __future__ import annotations

import click

from fscert.resources import gib_to_bytes
from fscert.sample import STRATEGIES, SampleConfig, sample_to_file

from .common import (KAPPA, TAU, IntRange, OutputPath, force_option, max_memory_option, out_option, progress_enabled,
                     quiet_option, seed_option)


@click.command("sample")
@click.option("--latents", "latents_path", required=True, type=click.Path(dir_okay=False),
              help="HDF5 file of source latents (from `fscert encode` or `fscert draw`).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Autoencoder to decode the samples into images (adds `images` and a PNG grid).")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=SampleConfig.strategy, show_default=True,
              help="direct: exact sampling of Eq. 6–8; network: an MLP trained on the latents (A.3.3).")
@click.option("--rho", type=IntRange(min=0), default=SampleConfig.rho, show_default=True,
              help="Observation range ρ: the window is (2ρ+1)×(2ρ+1) cells.")
@click.option("--tau", type=TAU, default=SampleConfig.tau, show_default=True,
              help="Noise scale τ (flip probability q = ½(1 − 1/τ)^(1/κ), 0 for τ ≤ 1).")
@click.option("--kappa", type=KAPPA, default=SampleConfig.kappa, show_default=True, help="Triangular sharpness κ.")
@click.option("-n", "--n-samples", "n_samples", type=IntRange(min=1), default=SampleConfig.n_samples,
              show_default=True, help="Number of latents to draw.")
@seed_option(SampleConfig.seed)
@out_option("Output HDF5 file (`latents`, and `images` with --model; PNG grid beside it).", name="out_path")
@click.option("--network-epochs", type=IntRange(min=0), default=SampleConfig.network_epochs, show_default=True,
              help="Training epochs of the sampler network (--strategy network).")
@click.option("--translation-invariant", is_flag=True, default=SampleConfig.translation_invariant,
              help="Pool the patches of every cell with the same padding pattern (default: position-anchored).")
@click.option("--full-context", is_flag=True, default=SampleConfig.full_context,
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
    cfg = SampleConfig(strategy=strategy, rho=rho, tau=tau, kappa=kappa, n_samples=n_samples, seed=seed,
                       network_epochs=network_epochs, translation_invariant=translation_invariant,
                       full_context=full_context)
    res = sample_to_file(latents_path, out_path, cfg, model_path=model_path, network_path=network_path,
                         save_network_path=save_network_path, force=force, max_memory=gib_to_bytes(max_memory),
                         progress=progress_enabled())
    click.echo(f"wrote {res['n_samples']} samples ({res['strategy']}, ρ={res['rho']}, q={res['q']:.4g}) to {res['out']}"
               + (f" and {res['png']}" if res["png"] is not None else ""))


COMMANDS = [sample]
