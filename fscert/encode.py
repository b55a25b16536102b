"""`fscert encode`: encode DATA to ±1 latents with a saved model (HDF5 with provenance)."""
from __future__ import annotations

import json
from dataclasses import asdict

from .autoencoder import check_image_shape, encode_batched, load_model, model_sha256
from .geometry import load_for_model
from .fileio import check_output_path
from .hashing import sha256_array
from .latents import write_latents
from .resources import Plan, encode_step


def encode_data(model_path, data, out, *, split: str = "train", limit: int | None = None, batch: int = 256,
                force: bool = False, max_memory: int | None = None) -> dict:
    """Encode DATA with a saved model into an HDF5 latent file with provenance attributes; the
    memory and time are estimated first (logged at INFO) and refused above ``max_memory`` bytes."""
    out = check_output_path(out, force)
    model = load_model(model_path)
    x, _ = load_for_model(data, model, limit=limit, split=split)        # as the model was trained
    check_image_shape(model.config, x.shape)
    Plan().add(encode_step(len(x), model)).check(max_memory)
    z = encode_batched(model, x, batch=batch)
    attrs = {"model_sha256": model_sha256(model), "data_sha256": sha256_array(x), "data": str(data),
             "config": json.dumps(asdict(model.config)), "n_images": len(x), "split": split}
    write_latents(out, z, attrs=attrs)
    return {"shape": z.shape, "latents": z}
