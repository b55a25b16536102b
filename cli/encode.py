"""`fscert encode`: DATA encoded to ±1 latents with a trained model (HDF5 with provenance)."""
from __future__ import annotations

import click

from fscert.data import load_images
from fscert.encode import encode_data
from fscert.resources import gib_to_bytes

from .common import (batch_size_option, force_option, limit_option, max_memory_option, out_option, param_default,
                     quiet_option, split_option)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data")
@out_option("HDF5 file to write.")
@split_option(param_default(load_images, "split"))
@limit_option()
@batch_size_option(param_default(encode_data, "batch"), "Images encoded at once.")
@max_memory_option("encoding")
@force_option("an existing output")
@quiet_option(expose_value=False)
def encode(model, data, out, split, limit, batch_size, max_memory, force):
    """Encode DATA to ±1 latents with MODEL.

    Writes HDF5 dataset `latents` int8 (N, M, H, W) in {−1, +1}, with attributes recording the
    model's and the data's SHA-256 and the model config.
    """
    res = encode_data(model, data, out, split=split, limit=limit, batch=batch_size, force=force,
                      max_memory=gib_to_bytes(max_memory))
    n, m, h, w = res["shape"]
    click.echo(f"encoded {n} images to {m}×{h}×{w} latents: {out}")


COMMANDS = [encode]
