"""`fscert train`: the local autoencoder trained on DATA, both phases (Eq. 2, Eq. 4)."""
from __future__ import annotations

import click

from fscert.autoencoder import AEConfig
from fscert.data import load_images
from fscert.resources import gib_to_bytes
from fscert.train import train_model
from fscert.noise import NOISE_KINDS
from fscert.training import TrainConfig

from .common import (KAPPA, TAU, Console, FloatRange, IntRange, batch_size_option, fit_options, force_option,
                     json_option, latent_grid_option, limit_option, lr_option, make_fit, max_memory_option, out_option,
                     param_default, quiet_option, seed_option, split_option, write_json)


@click.command(short_help="Train the local autoencoder on DATA (both phases).")
@click.argument("data")
@out_option("Model file to write (.pt).")
@split_option(param_default(load_images, "split"))
@limit_option()
@latent_grid_option()
@fit_options()
@click.option("--channels", "-M", "latent_channels", type=IntRange(1, 16), default=AEConfig.latent_channels,
              show_default=True, help="Latent channels M (bits per cell).")
@click.option("--receptive-field", "-R", type=IntRange(1, 15), default=AEConfig.receptive_field, show_default=True,
              help="Decoder receptive field R×R latent cells (odd).")
@click.option("--hidden", type=IntRange(1, 8192), default=AEConfig.hidden, show_default=True,
              help="Width of the decoder's per-cell 1×1 layers.")
@click.option("--transition/--no-transition", default=AEConfig.transition, show_default=True,
              help="ConvT transition layer for patch consistency (Tab. 1).")
@click.option("--tau", type=TAU, default=TrainConfig.tau, show_default=True,
              help="Training noise scale τ (τ ≤ 1: saturated bits never flip).")
@click.option("--kappa", type=KAPPA, default=TrainConfig.kappa, show_default=True,
              help="Triangular sharpness κ (flip probability ½(1−1/τ)^(1/κ)).")
@click.option("--noise", type=click.Choice(NOISE_KINDS), default=TrainConfig.noise, show_default=True,
              help="Noise ε: Tri(κ) (paper) or N(0,1) scaled by τ (official code).")
@click.option("--beta0", type=FloatRange(min=0, symbol="β₀"), default=TrainConfig.beta0, show_default=True,
              help="Initial latent penalty β₀, annealed to 0 (Eq. 2).")
# same shape as certify's and finetune's decorators, not the same logic: own defaults and help (shared ones: common.py)
@click.option("--epochs", type=IntRange(min=0), default=TrainConfig.epochs, show_default=True,
              help="Phase-1 epochs (Eq. 2).")
@click.option("--finetune-epochs", type=IntRange(min=0), default=TrainConfig.finetune_epochs, show_default=True,
              help="Phase-2 epochs: decoder on ±1 latents, encoder frozen (Eq. 4).")
@batch_size_option(TrainConfig.batch_size, "Images per training step.")
@lr_option(TrainConfig.lr)
@seed_option(TrainConfig.seed)
@max_memory_option("training")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run from OUT.partial.pt (saved every 30 s; same data and options): "
                   "the model is identical to an uninterrupted run's.")
@force_option("an existing output")
@json_option("the result (model, curves, images, seconds, last epoch's figures)")
@quiet_option()
def train(data, out, split, limit, latent_hw, pad, resize, latent_channels, receptive_field, hidden, transition, tau, kappa,
          noise, beta0, epochs, finetune_epochs, batch_size, lr, seed, max_memory, resume, force, json_out, quiet):
    """Train the local autoencoder on DATA (phase 1, Eq. 2; phase 2, Eq. 4).

    Images keep their stored size (28×28 MedMNIST: a 7×7 latent of 4×4-pixel cells) unless
    --pad or --resize is given; the model is built for it and records how images were read.
    Writes the model (state dict + config), OUT.history.json with the per-epoch curves of
    Fig. 9 (MSE, PSNR, mean |latent|, binary rate) and OUT.history.png.
    """
    con = Console(quiet, json_out)
    model = AEConfig(latent_channels=latent_channels, receptive_field=receptive_field, hidden=hidden,
                     transition=transition)
    training = TrainConfig(epochs=epochs, finetune_epochs=finetune_epochs, batch_size=batch_size, lr=lr, tau=tau,
                           kappa=kappa, noise=noise, beta0=beta0, seed=seed)
    res = train_model(data, out, model, training, split=split, limit=limit, force=force, progress=con.progress,
                      max_memory=gib_to_bytes(max_memory), resume=resume, fit=make_fit(pad, resize),
                      latent_hw=latent_hw)
    last = res["history"][-1]
    con.result(f"trained on {res['n_images']} images in {res['seconds']:.1f} s: binarised PSNR {last['psnr']:.2f} dB, "
               f"binary rate {last.get('binary_rate', float('nan')):.3f}")
    con.result(f"model: {out}")
    con.result(f"curves: {res['history_png']}")
    if json_out:
        write_json(json_out, {"model": str(out), "history_json": str(res["history_json"]),
                              "history_png": str(res["history_png"]), "n_images": int(res["n_images"]),
                              "seconds": round(float(res["seconds"]), 1),
                              "last_epoch": {k: v for k, v in last.items() if k != "seconds"}})


COMMANDS = [train]
