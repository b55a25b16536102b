"""`fscert train` and `fscert encode`."""
from __future__ import annotations


import click

from fscert.defaults import DEFAULTS as D

from fscert.resources import gib_to_bytes

from .common import (Console, batch_size_option, echo_err, force_option, json_option, kappa_check, limit_option,
                     max_memory_option, out_option, quiet_option, seed_option, split_option,
                     tau_check, write_json)

data_opts = [split_option(), limit_option()]


def _apply(opts):
    def deco(f):
        for o in reversed(opts):
            f = o(f)
        return f
    return deco


@click.command(short_help="Train the local autoencoder on DATA (both phases).")
@click.argument("data")
@out_option("Model file to write (.pt).")
@_apply(data_opts)
@click.option("--latent-size", type=click.Choice(["8", "16", "32"]), default=str(D["latent_size"]), show_default=True,
              help="Latent grid H = W (Tab. 2, 3, 4).")
@click.option("--channels", "-M", "latent_channels", type=click.IntRange(1, 16), default=D["latent_channels"],
              show_default=True, help="Latent channels M (bits per cell).")
@click.option("--receptive-field", "-R", type=click.IntRange(1, 15), default=D["receptive_field"], show_default=True,
              help="Decoder receptive field R×R latent cells (odd).")
@click.option("--hidden", type=click.IntRange(1, 8192), default=D["hidden"], show_default=True,
              help="Width of the decoder's per-cell 1×1 layers.")
@click.option("--transition/--no-transition", default=D["transition"], show_default=True,
              help="ConvT transition layer for patch consistency (Tab. 1).")
@click.option("--tau", type=float, default=D["train_tau"], callback=tau_check, show_default=True,
              help="Training noise scale τ (τ ≤ 1: saturated bits never flip).")
@click.option("--kappa", type=float, default=D["train_kappa"], callback=kappa_check, show_default=True,
              help="Triangular sharpness κ (flip probability ½(1−1/τ)^(1/κ)).")
@click.option("--noise", type=click.Choice(["triangular", "gaussian"]), default=D["noise"], show_default=True,
              help="Noise ε: Tri(κ) (paper) or N(0,1) scaled by τ (official code).")
@click.option("--beta0", type=click.FloatRange(min=0), default=D["beta0"], show_default=True,
              help="Initial latent penalty β₀, annealed to 0 (Eq. 2).")
@click.option("--epochs", type=click.IntRange(min=0), default=D["epochs"], show_default=True, help="Phase-1 epochs (Eq. 2).")
@click.option("--finetune-epochs", type=click.IntRange(min=0), default=D["finetune_epochs"], show_default=True,
              help="Phase-2 epochs: decoder on ±1 latents, encoder frozen (Eq. 4).")
@batch_size_option(D["batch_size"], "Images per training step.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=D["lr"], show_default=True,
              help="Adam learning rate.")
@seed_option()
@max_memory_option("training")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run from OUT.partial.pt (saved every 30 s; same data and options): "
                   "the model is identical to an uninterrupted run's.")
@force_option("an existing output")
@json_option("the result (model, curves, images, seconds, last epoch's figures)")
@quiet_option()
def train(data, out, split, limit, latent_size, latent_channels, receptive_field, hidden, transition, tau, kappa,
          noise, beta0, epochs, finetune_epochs, batch_size, lr, seed, max_memory, resume, force, json_out, quiet):
    """Train the local autoencoder on DATA (phase 1, Eq. 2; phase 2, Eq. 4).

    Writes the model (state dict + config), OUT.history.json with the per-epoch curves of
    Fig. 9 (MSE, PSNR, mean |latent|, binary rate) and OUT.history.png.
    """
    from fscert.api import train_model

    con = Console(quiet, json_out)
    res = train_model(data, out, split=split, limit=limit, latent_size=int(latent_size), latent_channels=latent_channels,
                      receptive_field=receptive_field, hidden=hidden, transition=transition, tau=tau, kappa=kappa,
                      noise=noise, beta0=beta0, epochs=epochs, finetune_epochs=finetune_epochs,
                      batch_size=batch_size, lr=lr, seed=seed, force=force, progress=con.progress,
                      max_memory=gib_to_bytes(max_memory), log=con.log, resume=resume)
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


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data")
@out_option("HDF5 file to write.")
@_apply(data_opts)
@batch_size_option(256, "Images encoded at once.")
@max_memory_option("encoding")
@force_option("an existing output")
@quiet_option(expose_value=False)
def encode(model, data, out, split, limit, batch_size, max_memory, force):
    """Encode DATA to ±1 latents with MODEL.

    Writes HDF5 dataset `latents` int8 (N, M, H, W) in {−1, +1}, with attributes recording the
    model's and the data's SHA-256 and the model config.
    """
    from fscert.api import encode_data

    res = encode_data(model, data, out, split=split, limit=limit, batch=batch_size, force=force,
                      max_memory=gib_to_bytes(max_memory), log=echo_err)
    n, m, h, w = res["shape"]
    click.echo(f"encoded {n} images to {m}×{h}×{w} latents: {out}")


COMMANDS = [train, encode]
