"""High-level functions behind the CLI's train and encode commands (usable from Python too)."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from .autoencoder import (AEConfig, LocalAutoencoder, check_image_shape, encode_batched, load_model, model_sha256,
                          save_model)
from .data import load_images
from .errors import check_output_path
from .hashing import sha256_array
from .latents import write_latents
from .resources import Plan, encode_step, training_step
from .training import TrainConfig, save_history, train


def train_model(data, out, *, split: str = "train", limit: int | None = None, force: bool = False,
                progress: bool = True, seed: int = 0, max_memory: int | None = None,
                log: Callable[[str], None] | None = None, **params) -> dict:
    """Load DATA, train (both phases), save the model and its Fig. 9 curves next to it.

    The memory and time of training are estimated first (printed with ``log``); above
    ``max_memory`` bytes (default ¾ of the machine's memory) nothing is trained."""
    out = check_output_path(out, force)
    x = load_images(data, limit=limit, split=split)
    model_keys = {f for f in AEConfig.__dataclass_fields__}
    mcfg = AEConfig(image_channels=x.shape[1], **{k: v for k, v in params.items() if k in model_keys})
    tcfg = TrainConfig(seed=seed, **{k: v for k, v in params.items() if k in TrainConfig.__dataclass_fields__})
    with torch.random.fork_rng():
        probe = LocalAutoencoder(mcfg.validate())
    Plan().add(training_step(len(x), probe, tcfg.batch_size, tcfg.epochs, tcfg.finetune_epochs)).check(max_memory, log)
    t0 = time.perf_counter()
    model, history = train(x, mcfg, tcfg, progress=progress)
    seconds = time.perf_counter() - t0
    extra = {"train": asdict(tcfg), "data": str(data), "data_sha256": sha256_array(x), "n_images": len(x),
             "final": {k: v for k, v in (history[-1] if history else {}).items() if k != "seconds"}}  # no timings:
    # the same inputs and seed give the same model file, byte for byte
    save_model(model, out, extra=json.loads(json.dumps(extra)))
    jpath, ppath = save_history(history, out, title=f"fscert train {data}")
    return {"model": model, "history": history, "seconds": seconds, "n_images": len(x),
            "history_json": jpath, "history_png": ppath}


def encode_data(model_path, data, out, *, split: str = "train", limit: int | None = None, batch: int = 256,
                force: bool = False, max_memory: int | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Encode DATA with a saved model into an HDF5 latent file with provenance attributes."""
    out = check_output_path(out, force)
    model = load_model(model_path)
    x = load_images(data, limit=limit, split=split)
    check_image_shape(model.config, x.shape)
    Plan().add(encode_step(len(x), model)).check(max_memory, log)
    z = encode_batched(model, x, batch=batch)
    attrs = {"model_sha256": model_sha256(model), "data_sha256": sha256_array(x), "data": str(data),
             "config": json.dumps(asdict(model.config)), "n_images": len(x), "split": split}
    write_latents(out, z, attrs=attrs)
    return {"shape": z.shape, "latents": z}


