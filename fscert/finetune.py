"""`fscert finetune`: the decoder fine-tuned on the empirical set E (A.3.6, DESIGN §6.2).

Each drawn latent's target is the training image it was drawn from (``source_index``), weighted
by its count, so that the decoder has seen every latent it will decode. The memory and time are
estimated first (refused above the limit, before any work); the model is written with the
fine-tune's provenance (E, epochs, seed, the data's SHA-256 and the per-epoch curves, no timings:
the same inputs give the same file).
"""
from __future__ import annotations

from pathlib import Path

from .autoencoder import load_model, save_model
from .data import data_sha256
from .geometry import load_for_model
from .empirical import finetune_targets
from .fileio import check_output_path
from .latents import read_latents
from .resources import Plan, training_step
from .training import TrainConfig, finetune_decoder


def finetune_file(model_path: str | Path, empirical_path: str | Path, data: str, out: str | Path,
                  cfg: TrainConfig, limit: int | None = None, split: str = "train", force: bool = False,
                  max_memory: int | None = None, progress: bool = False) -> dict:
    """Fine-tune MODEL's decoder on E for ``cfg.finetune_epochs`` epochs (batch ``cfg.batch_size``,
    learning rate ``cfg.lr``, seed ``cfg.seed``) and write it to ``out``. Returns ``model``,
    ``history`` (one row per epoch) and ``n_samples`` (the rows of E).

    ``data`` and ``limit`` name the training images E was drawn from; ``limit`` defaults to the
    number recorded in E (else all). The memory and time are estimated first (logged at INFO,
    :mod:`fscert.resources`); above ``max_memory`` bytes nothing is fine-tuned."""
    check_output_path(out, force)
    cfg.validate()
    epochs = cfg.finetune_epochs
    model = load_model(model_path)
    E = read_latents(empirical_path)
    if limit is None and "limit" in E.attrs:
        limit = int(E.attrs["limit"])
    images, _ = load_for_model(data, model, limit=limit, split=split)   # as the model was trained
    targets = finetune_targets(E.source_index, images, str(empirical_path))
    Plan().add(training_step(len(targets), model, cfg.batch_size, decoder_epochs=epochs, what="fine-tune")).check(
        max_memory)
    hist = finetune_decoder(model, E.latents, targets, epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                            seed=cfg.seed, counts=E.counts, progress=progress)
    extra = dict(getattr(model, "extra", {}) or {})
    extra.update(finetuned_on=str(empirical_path), finetune_epochs=epochs, finetune_seed=cfg.seed,
                 finetune_data_sha256=data_sha256(images),
                 finetune_history=[{k: v for k, v in row.items() if k != "seconds"} for row in hist])
    save_model(model, out, extra=extra)
    return {"model": model, "history": hist, "n_samples": len(E.latents)}
