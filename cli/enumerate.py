"""`fscert enumerate`: the certificate of an empirical set E (DESIGN §6–7, paper A.3.6)."""
from __future__ import annotations

import click

from fscert.certificate_files import enumerate_files, enumerate_lines
from fscert.cluster import client_for
from fscert.enumerate import EnumerateConfig
from fscert.resources import gib_to_bytes

from .common import (KAPPA, TAU, IntRange, OutputPath, batch_size_option, cluster_options, force_option, gamma_option,
                     limit_option, max_memory_option, out_option, progress_enabled, quiet_option, split_option)


@click.command("enumerate")
@click.option("--latents", "latents_path", required=True, type=click.Path(dir_okay=False),
              help="Empirical set E (from `fscert draw`); with --full-support, the source latents.")
@click.option("--rho", type=IntRange(min=0), default=EnumerateConfig.rho, show_default=True,
              help="Observation range ρ.")
@out_option("Certificate (HDF5).")
@click.option("--count-only", is_flag=True, default=EnumerateConfig.count_only,
              help="Only the exact number of reachable latents.")
@click.option("--max-images", type=IntRange(min=1), default=EnumerateConfig.max_images, show_default=True,
              help="List at most this many latents. Above it, with --model and --train, every training image's "
                   "near-copies are searched without listing (exact figures or certified intervals); without "
                   "them, refuse (the exact count is still reported).")
@click.option("--recon-search/--no-recon-search", default=EnumerateConfig.recon_search, show_default=True,
              help="When searching without listing: also search the near-copies of the decoder's reconstructions "
                   "of the training images (it takes about as long as the first search); off: their figures are "
                   "recorded as unknown.")
@click.option("--near-copies-only", is_flag=True, default=EnumerateConfig.near_copies_only,
              help="Search near-copies without listing every image, whatever the count (needs --model, --train).")
@max_memory_option("listing, decoding and auditing")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run from OUT.partial.h5 (same inputs and options): the result is "
                   "identical to an uninterrupted run.")
@click.option("--graph", "graph_path", type=OutputPath(dir_okay=False),
              help="Export the compatible-patch graph (GraphML).")
@click.option("--full-support", is_flag=True, default=EnumerateConfig.full_support,
              help="List all 2^(M·H·W) latents under the direct sampler (≤ 24 bits).")
@click.option("--tau", type=TAU, default=EnumerateConfig.tau, help="τ of the direct sampler (--full-support).")
@click.option("--kappa", type=KAPPA, default=EnumerateConfig.kappa, help="κ of the direct sampler (--full-support).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="Decoder to decode every listed latent.")
@click.option("--train", "train_spec", metavar="DATA", default=EnumerateConfig.train,
              help="Training images for the memorization metrics (needs --model).")
@limit_option("Use only the first N training images [default: the number recorded in E, else all].",
              default=EnumerateConfig.train_limit)
@split_option(EnumerateConfig.train_split)
@click.option("--train-latents", "train_latents_path", type=click.Path(dir_okay=False),
              help="The training images' own latents (the file `fscert encode` wrote, that E was drawn from): "
                   "records the decoder's reconstruction PSNR and the near-copies of its reconstructions "
                   "(without it they are recorded as unknown).")
@gamma_option(EnumerateConfig.gammas)
@batch_size_option(EnumerateConfig.batch, "Images decoded at once.", hidden_aliases=("--batch",), name="batch")
@cluster_options("the count, the decoding, the near-copy searches and the nearest-neighbour searches")
@force_option("existing outputs (--out and --graph)")
@quiet_option(expose_value=False)
def enumerate_cmd(latents_path, rho, out, count_only, max_images, recon_search, near_copies_only, max_memory,
                  resume, graph_path, full_support, tau, kappa, model_path, train_spec, limit, split,
                  train_latents_path, gammas, batch, scheduler, workers, force):
    """Certify: list every latent the generator can produce with its exact probability
    (DESIGN §6), decode each one and audit it against the training set (DESIGN §7), comparing
    images at their stored size (28×28 images: without the border the model's canvas adds)."""
    cfg = EnumerateConfig(rho=rho, count_only=count_only, max_images=max_images, full_support=full_support,
                          tau=tau, kappa=kappa, gammas=tuple(gammas), train=train_spec, train_limit=limit,
                          train_split=split, batch=batch, near_copies_only=near_copies_only,
                          recon_search=recon_search, max_memory=gib_to_bytes(max_memory))
    with client_for(scheduler, workers) as client:
        cert, digest = enumerate_files(latents_path, out, cfg, model_path=model_path,
                                       train_latents_path=train_latents_path, graph_path=graph_path, force=force,
                                       resume=resume, progress=progress_enabled(), client=client)
    for line in enumerate_lines(cert, digest, out):
        click.echo(line)


COMMANDS = [enumerate_cmd]
