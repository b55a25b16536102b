"""`fscert train`: load DATA, train the local autoencoder (both phases, :mod:`fscert.training`),
save the model and its Fig. 9 curves; resumable after an interruption."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from .autoencoder import AEConfig, LocalAutoencoder, save_model
from .data import load_images
from .fileio import check_output_path
from .fit import Fit
from .hashing import sha256_array
from .resources import Plan, training_step
from .training import TrainConfig, TrainState, save_history, train, train_key

logger = logging.getLogger(__name__)


def train_model(data, out, model: AEConfig | None = None, training: TrainConfig | None = None, *,
                split: str = "train", limit: int | None = None, force: bool = False, progress: bool = True,
                max_memory: int | None = None, resume: bool = False, checkpoint_seconds: float = 30.0,
                fit: Fit | None = None, latent_hw: tuple[int, int] | None = None) -> dict:
    """Load DATA, train (both phases), save the model and its Fig. 9 curves next to it.

    The images keep their stored size unless ``fit`` pads or resizes them (:mod:`fscert.fit`;
    recorded in the model file, so that every later command reads images the same way). The
    model is built for that size (:meth:`AEConfig.for_images`): ``model`` (default
    :class:`AEConfig`) gives M, R, hidden and the transition; ``latent_hw`` the latent grid
    (None: 4×4-pixel cells). ``training`` (default :class:`TrainConfig`) is validated before training. The memory and time of
    training are estimated first (logged at INFO, :mod:`fscert.resources`); above ``max_memory``
    bytes (default ¾ of the machine's memory) nothing is trained. The training state is saved to
    ``OUT.partial.pt`` every ``checkpoint_seconds``; after an interruption, ``resume=True``
    continues from it (same data and options) to the same weights (a resume that finds no state
    is a WARNING record, then training starts from the beginning)."""
    out = check_output_path(out, force)
    fit = (fit or Fit()).validate()
    x = load_images(data, limit=limit, split=split, fit=fit)
    mcfg = AEConfig.for_images(x.shape[1:], latent_hw, model)
    tcfg = training if training is not None else TrainConfig()
    with torch.random.fork_rng():
        probe = LocalAutoencoder(mcfg.validate())
    tcfg.validate()
    state = TrainState(partial_path(out), train_key(x, mcfg, tcfg), checkpoint_seconds)
    if not resume:
        state.path.unlink(missing_ok=True)
    elif state.load() is None:
        logger.warning(f"no training state to resume in {state.path} (missing, or other options or data); "
                       "starting from the beginning")
    else:
        logger.info(f"resuming from {state.path}")
    Plan().add(training_step(len(x), probe, tcfg.batch_size, tcfg.epochs, tcfg.finetune_epochs)).check(max_memory)
    t0 = time.perf_counter()
    try:
        model, history = train(x, mcfg, tcfg, progress=progress, state=state)
    except KeyboardInterrupt:
        if state.path.exists():
            logger.info(f"the training state is kept in {state.path}; rerun with --resume to continue")
        raise
    seconds = time.perf_counter() - t0
    extra = {"train": asdict(tcfg), "data": str(data), "data_sha256": sha256_array(x), "n_images": len(x),
             "fit": fit.to_json(),
             "final": {k: v for k, v in (history[-1] if history else {}).items() if k != "seconds"}}  # no timings:
    # the same inputs and seed give the same model file, byte for byte
    jpath, ppath = save_history(history, out, title=f"fscert train {data}")
    try:                      # the model last: it exists only with its curves
        save_model(model, out, extra=json.loads(json.dumps(extra)))
    except BaseException:
        jpath.unlink(missing_ok=True)
        ppath.unlink(missing_ok=True)
        raise
    state.path.unlink(missing_ok=True)
    return {"model": model, "history": history, "seconds": seconds, "n_images": len(x),
            "history_json": jpath, "history_png": ppath}


def partial_path(out: str | Path) -> Path:
    """Where the training state of ``out`` is kept while it trains: ``OUT.partial.pt``."""
    out = Path(out)
    return out.with_name(out.name + ".partial.pt")
