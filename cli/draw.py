"""`fscert draw`: the empirical set E, T Rademacher samples of every training latent (A.3.6)."""
from __future__ import annotations

import click

from fscert.draw import draw_file
from fscert.empirical import DrawConfig
from fscert.resources import gib_to_bytes

from .common import KAPPA, TAU, IntRange, force_option, max_memory_option, out_option, quiet_option, seed_option


@click.command("draw")
@click.option("--latents", "latents_path", required=True, type=click.Path(dir_okay=False),
              help="Training latents (HDF5 from `fscert encode`).")
@click.option("--trials", type=IntRange(min=1), default=DrawConfig.trials, show_default=True,
              help="Rademacher samples per training latent (T).")
@click.option("--tau", type=TAU, default=DrawConfig.tau, show_default=True, help="Noise scale τ.")
@click.option("--kappa", type=KAPPA, default=DrawConfig.kappa, show_default=True, help="Triangular sharpness κ.")
@seed_option(DrawConfig.seed)
@out_option("Output empirical set E (HDF5).")
@max_memory_option("the draws")
@force_option("an existing output")
@quiet_option(expose_value=False)
def draw(latents_path, trials, tau, kappa, seed, out, max_memory, force):
    """Draw the empirical set E: T Rademacher samples of every training latent, each bit flipped
    with probability q(τ, κ) (DESIGN §6.1). One row per distinct (sample, source image) with its
    multiplicity (`counts`) and source image (`source_index`)."""
    cfg = DrawConfig(trials=trials, tau=tau, kappa=kappa, seed=seed)
    E = draw_file(latents_path, out, cfg, force=force, max_memory=gib_to_bytes(max_memory))
    click.echo(f"{len(E.latents)} distinct samples ({int(E.counts.sum())} draws, q = {cfg.flip_prob:.6g}) → {out}")


COMMANDS = [draw]
