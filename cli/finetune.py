"""`fscert finetune`: the decoder fine-tuned on the drawn samples E (A.3.6, DESIGN §6.2)."""
from __future__ import annotations

import click

from fscert.data import load_images
from fscert.finetune import finetune_file
from fscert.hashing import sha256_state_dict
from fscert.resources import gib_to_bytes
from fscert.training import TrainConfig

from .common import (IntRange, batch_size_option, force_option, limit_option, lr_option, max_memory_option, option,
                     out_option, param_default, progress_enabled, quiet_option, seed_option, split_option)


@click.command("finetune")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("empirical_path", metavar="E.h5", type=click.Path(dir_okay=False))
@option("--train", "data", required=True, metavar="DATA", hidden_aliases=("--data",),
        help="Training images (file, folder or bundled name) that E was drawn from.")
@limit_option("Use only the first N training images [default: the number recorded in E, else all].")
@split_option(param_default(load_images, "split"))
@out_option("Fine-tuned model (.pt).")
# same shape as train's decorators, not the same logic: own defaults and help (shared ones: common.py)
@click.option("--epochs", type=IntRange(min=1), default=TrainConfig.finetune_epochs, show_default=True,
              help="Fine-tuning epochs (as phase 2 of `fscert train`, Eq. 4).")
@batch_size_option(TrainConfig.batch_size, "Latents per training step.")
@lr_option(TrainConfig.lr)
@seed_option(TrainConfig.seed)
@max_memory_option("fine-tuning")
@force_option("an existing output")
@quiet_option(expose_value=False)
def finetune(model_path, empirical_path, data, limit, split, out, epochs, batch_size, lr, seed, max_memory, force):
    """Fine-tune the decoder on E (each sample's target: its source image, weighted by its
    count) so that it has seen every latent it will decode (DESIGN §6.2, paper A.3.6)."""
    cfg = TrainConfig(finetune_epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    res = finetune_file(model_path, empirical_path, data, out, cfg, limit=limit, split=split, force=force,
                        max_memory=gib_to_bytes(max_memory), progress=progress_enabled())
    last = res["history"][-1] if res["history"] else {}
    psnr = last.get("psnr")
    click.echo(f"fine-tuned on {res['n_samples']} samples for {epochs} epochs"
               + (f", PSNR {psnr:.2f} dB" if isinstance(psnr, (int, float)) else "")
               + f" → {out} (weights sha256 {sha256_state_dict(res['model'].state_dict())[:12]})")


COMMANDS = [finetune]
