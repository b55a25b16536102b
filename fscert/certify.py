"""The main job: from a training set to a certificate and its report (`fscert certify`).

train (Eq. 2, 4) → encode → draw T Rademacher trials (A.3.6) → fine-tune the decoder on the
draws → enumerate every reachable latent with its exact probability (DESIGN §6) → decode and
audit every listed image (UIR, M-UIR, memorization mass, peer statistics) → HTML report.

Defaults are the paper's certifiable setting: 64 MNIST images, a 1×8×8 latent, 10 trials.
Everything is written into ``OUT.partial`` that replaces ``out`` only when all stages
succeed, so an interrupted run leaves nothing half-written; after Ctrl-C the finished stages
stay there and ``fscert certify --resume`` continues from them.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .autoencoder import AEConfig
from .empirical import DrawConfig
from .enumerate import EnumerateConfig
from .errors import FscertError
from .fileio import atomic_path, remove_temporaries, replace_tree
from .run_summary import make_summary, search_summary, summary_lines  # noqa: F401  (summary.json, printed lines)
from .fit import Fit
from .training import TrainConfig

logger = logging.getLogger(__name__)

#: `fscert certify`'s preset: the paper's MNIST-64 certification set-up (A.3.6), where it differs
#: from (or must not follow) the components' own defaults. `make demo`'s figures (README) are made
#: with it: 64 images, a 1×8×8 latent with hidden width 256 (64 images need less width),
#: 600 + 100 training epochs (64 images = one batch per epoch), 150 decoder fine-tune epochs on
#: the draws at half the learning rate, ρ = 4.
N_TRAIN = 64
MODEL_PRESET = {"latent_channels": 1, "hidden": 256}
TRAINING_PRESET = {"epochs": 600, "finetune_epochs": 100}
DRAW_FINETUNE_EPOCHS = 150
ENUMERATION_PRESET = {"rho": 4}

#: each flat option of `fscert certify` (the CLI's names and the constructor's keywords) → the
#: component fields it sets; reading it reads the first
OPTION_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    **{f: (("model", f),) for f in ("latent_channels", "receptive_field", "hidden", "transition")},
    **{f: (("training", f),) for f in ("epochs", "finetune_epochs", "batch_size", "lr", "beta0")},
    "train_tau": (("training", "tau"),), "train_kappa": (("training", "kappa"),),
    "seed": (("training", "seed"), ("draws", "seed")),
    **{f: (("draws", f),) for f in ("trials", "tau", "kappa")},
    **{f: (("enumeration", f),) for f in ("rho", "max_images", "near_copies_only", "recon_search", "gammas")},
}


@dataclass(init=False)
class CertifyConfig:
    """A `fscert certify` job: the data, and the configs of its stages with the certify preset.

    Composed of :class:`~fscert.autoencoder.AEConfig` (``model``; the image channels are set from
    the data), :class:`~fscert.training.TrainConfig` (``training``: phases 1 and 2, and the
    learning rate, batch size and seed of the fine-tune on the draws), :class:`~fscert.empirical.DrawConfig`
    (``draws``) and :class:`~fscert.enumerate.EnumerateConfig` (``enumeration``; its training-set
    fields are set from the data), each with its own defaults except the preset above. The flat
    options of the CLI (:data:`OPTION_FIELDS`: ``hidden``, ``trials``, ``rho``, ``train_tau``, …)
    are keywords of the constructor and attributes that read and set the component fields."""

    data: str
    split: str
    n_train: int
    model: AEConfig
    training: TrainConfig
    draws: DrawConfig
    draw_finetune_epochs: int
    enumeration: EnumerateConfig
    test: str | None                 # held-out real images: the baseline every near-copy figure is read against
    test_split: str
    test_limit: int | None
    max_memory_gib: float | None     # None: ¾ of the machine's memory
    fit: Fit                         # how the images reach the model's size (native unless --pad / --resize)
    latent_hw: tuple[int, int] | None  # the latent grid h×w (None: 4×4-pixel cells, AEConfig.for_images)

    def __init__(self, data: str = "mnist", split: str = "train", n_train: int = N_TRAIN, *,
                 model: AEConfig | None = None, training: TrainConfig | None = None, draws: DrawConfig | None = None,
                 enumeration: EnumerateConfig | None = None, draw_finetune_epochs: int = DRAW_FINETUNE_EPOCHS,
                 test: str | None = None, test_split: str = "test", test_limit: int | None = None,
                 max_memory_gib: float | None = None, fit: Fit | None = None,
                 latent_hw: tuple[int, int] | None = None, **options) -> None:
        unknown = sorted(set(options) - set(OPTION_FIELDS))
        if unknown:
            raise TypeError(f"CertifyConfig got unexpected options: {', '.join(unknown)}")
        self.data, self.split, self.n_train = data, split, n_train
        self.model = model if model is not None else AEConfig(**MODEL_PRESET)
        self.training = training if training is not None else TrainConfig(**TRAINING_PRESET)
        self.draws = draws if draws is not None else DrawConfig()
        self.enumeration = enumeration if enumeration is not None else EnumerateConfig(**ENUMERATION_PRESET)
        self.draw_finetune_epochs = draw_finetune_epochs
        self.test, self.test_split, self.test_limit = test, test_split, test_limit
        self.max_memory_gib = max_memory_gib
        self.fit = (fit or Fit()).validate()
        self.latent_hw = None if latent_hw is None else (int(latent_hw[0]), int(latent_hw[1]))
        for name, value in options.items():
            setattr(self, name, value)

    def __getattr__(self, name: str):
        """A flat option (:data:`OPTION_FIELDS`) reads its component's field."""
        fields = OPTION_FIELDS.get(name)
        if fields is None:
            raise AttributeError(name)
        part, field_name = fields[0]
        return getattr(object.__getattribute__(self, part), field_name)

    def __setattr__(self, name: str, value) -> None:
        """A flat option sets every component field it stands for (``seed``: training and draws)."""
        fields = OPTION_FIELDS.get(name)
        if fields is None:
            object.__setattr__(self, name, value)
            return
        for part, field_name in fields:
            setattr(getattr(self, part), field_name, tuple(value) if field_name == "gammas" else value)

    def components(self, image_shape: tuple[int, int, int], max_memory: int | None = None
                   ) -> tuple[AEConfig, TrainConfig, DrawConfig, EnumerateConfig]:
        """The validated configs of the stages for images of C×H×W (after the fit): the model
        is built for that size (:meth:`AEConfig.for_images`, the grid ``latent_hw``); the
        enumeration compares with this job's training images (``data``, ``split``, ``n_train``)."""
        mcfg = AEConfig.for_images(image_shape, self.latent_hw, self.model)
        tcfg = replace(self.training).validate()
        dcfg = replace(self.draws).validate()
        ccfg = replace(self.enumeration, train=str(self.data), train_limit=self.n_train, train_split=self.split,
                       max_memory=max_memory).validate()
        return mcfg, tcfg, dcfg, ccfg


@dataclass
class CertifyResult:
    out: Path
    summary: dict = field(default_factory=dict)

    @property
    def report(self) -> Path:
        return self.out / "report" / "index.html"


_STAGE_STARTS: dict[float, tuple[int, float]] = {}     # a run (its t0) → (number, start) of its running stage


def _stage(i: int, name: str, t0: float) -> None:
    """Log (INFO) how long the previous stage took and the start of stage ``i`` (with the time since
    the run began); until the next stage, heartbeat lines (fscert.progress) name this one."""
    from .progress import format_seconds, set_activity

    now = time.perf_counter()
    _stage_done(t0, now)
    logger.info(f"[{i}/7] {name} ({format_seconds(now - t0)} since the start)")
    _STAGE_STARTS[t0] = (i, now)
    set_activity(f"[{i}/7] {name}")


def _stage_done(t0: float, now: float | None = None) -> None:
    """``      done in 41 s`` (INFO): the duration of the run's running stage, if any (then none is running)."""
    from .progress import format_seconds

    running = _STAGE_STARTS.pop(t0, None)
    if running is not None:
        logger.info(f"      done in {format_seconds((now or time.perf_counter()) - running[1])}")


def partial_dir(out: str | Path) -> Path:
    """The working folder of a run: ``OUT.partial``, renamed to ``OUT`` when every stage is done."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def job_key(job: CertifyConfig, data_sha256: str) -> str:
    """What decides the outputs: every option but the memory limit, the data and the fscert version."""
    from . import __version__

    d = asdict(job)
    d.pop("max_memory_gib")
    d["enumeration"]["gammas"] = [float(g) for g in d["enumeration"]["gammas"]]
    return json.dumps({"job": d, "data_sha256": data_sha256, "fscert": __version__}, sort_keys=True)


def run_certify(job: CertifyConfig, out: str | Path, force: bool = False, progress: bool = True,
                resume: bool = False, client=None) -> CertifyResult:
    """Run every stage; return the summary. Files written into ``out``:

    ``model.pt`` (+ ``model.history.json/png``), ``latents.h5``, ``empirical.h5``,
    ``model_ft.pt``, ``cert.h5``, ``audit.json``, ``summary.json`` and ``report/``.

    The stages write into ``OUT.partial``, which becomes ``out`` only when all are done. A
    failure removes it; Ctrl-C (or SIGTERM) keeps it, and ``resume=True`` then reuses every
    finished stage (each one's files are written atomically) and the decoding checkpoint of
    the enumeration, when the options and data are the same. Every stage is deterministic, so
    a resumed run writes the same certificate as an uninterrupted one.

    Each stage's start and duration and the estimates are logged at INFO (``fscert.certify``,
    :mod:`fscert.resources`); a resume that finds no run, or a listing too large to list, at WARNING.

    ``client`` (a ``dask.distributed.Client``): the count's prefix chunks, the decoding and
    nearest-image search of a listing, the near-copy searches (stage 5, above ``max_images``)
    and the audit's nearest-neighbour searches (stage 6) run on its workers; every output is
    the same as without it (training, drawing and the listing pass itself stay here).
    """
    from .data import load_dataset, load_images
    from .hashing import sha256_array
    from .progress import LINES, heartbeat, is_terminal

    out = Path(out)
    if out.exists() and not force:
        raise FscertError(f"output folder {out} already exists (use --force to overwrite)")
    t0 = time.perf_counter()
    ds = load_dataset(job.data, limit=job.n_train, split=job.split, fit=job.fit, warn=False)
    x, native_hw = ds.images, ds.native_hw
    x_test = None
    if job.test is not None:
        x_test = load_images(job.test, limit=job.test_limit, split=job.test_split, fit=job.fit)
        if x_test.shape[1:] != x.shape[1:]:
            raise FscertError(f"held-out images (--test) are {'×'.join(map(str, x_test.shape[1:]))} after loading, "
                              f"training images {'×'.join(map(str, x.shape[1:]))}: they must have the same size and "
                              "channels")
    max_memory = None if job.max_memory_gib is None else int(job.max_memory_gib * 2**30)
    mcfg, tcfg, dcfg, ccfg = job.components(x.shape[1:], max_memory)

    work = partial_dir(out)
    key = job_key(job, sha256_array(x) + ("" if x_test is None else "+" + sha256_array(x_test)))
    if resume and (work / "job.json").is_file() and (work / "job.json").read_text() == key:
        logger.info(f"resuming from {work}")
        remove_temporaries(work)               # what a killed write left behind
    else:
        if resume:
            logger.warning(f"no run to resume in {work} (missing, or other options or data); starting from the "
                           "beginning")
        shutil.rmtree(work, ignore_errors=True)
        plan_training(x, mcfg, job).check(max_memory)
        work.mkdir(parents=True)
        (work / "job.json").write_text(key)
    logger.info(f"images: {job.fit.words(native_hw)}; the model's latent grid "
                f"{'×'.join(map(str, mcfg.latent_hw))} of {'×'.join(map(str, mcfg.patch_hw))}-pixel cells")
    if progress is True and not is_terminal():
        progress = LINES                       # lines, never bar redraws, in a log (fscert.progress)
    try:
        with heartbeat("certify", show=progress):   # a line after 30 s of silence, off a terminal
            summary = _stages(job, x, x_test, mcfg, tcfg, dcfg, ccfg, work, out, progress, t0, client, native_hw)
        _stage_done(t0)
    except KeyboardInterrupt:
        logger.info(f"interrupted: finished stages are kept in {work}; rerun with --resume to continue")
        raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        _STAGE_STARTS.pop(t0, None)
    (work / "job.json").unlink()
    replace_tree(work, out)                    # OUT is at every moment the old output or the new one
    return CertifyResult(out, summary)


def _stages(job: CertifyConfig, x: np.ndarray, x_test: np.ndarray | None, mcfg, tcfg, dcfg, ccfg, work: Path, out: Path,
            progress: bool, t0: float, client=None, native_hw: tuple[int, int] | None = None) -> dict:
    """The seven stages, each skipped when its files are already in ``work``."""
    from .audit import audit, report_json
    from .autoencoder import encode_batched, load_model, model_sha256, save_model
    from .certificate import latents_sha256, read_certificate, write_certificate
    from .enumerate import Inputs, certify, search_checkpoint_path
    from .empirical import draw_attrs, draw_samples
    from .enumeration import TooManyImages
    from .geometry import Geometry
    from .hashing import sha256_array
    from .latents import LatentSet, read_latents, write_latents
    from .report import build_report
    from .training import TrainState, finetune_decoder, save_history, train, train_key

    def stage(i: int, name: str, done: Path) -> bool:
        """Log the stage; True when it must run (its output is not there yet)."""
        if done.exists():
            logger.info(f"[{i}/7] {name}: done before, reusing {done.name}")
            return False
        _stage(i, name, t0)
        return True

    if stage(1, f"train the autoencoder on {len(x)} images", work / "model.pt"):
        state = TrainState(work / "model.partial.pt", train_key(x, mcfg, tcfg))     # resumed with the run
        model, history = train(x, mcfg, tcfg, progress=progress, state=state)
        save_history(history, work / "model.pt", title=f"fscert certify: training on {job.data}")
        save_model(model, work / "model.pt", extra={"data": str(job.data), "data_sha256": sha256_array(x),
                                                    "fit": job.fit.to_json()})
        state.path.unlink(missing_ok=True)
    model = load_model(work / "model.pt")

    if stage(2, "encode the training images to ±1 latents", work / "latents.h5"):
        z = encode_batched(model, x)
        write_latents(work / "latents.h5", z, attrs={"model_sha256": model_sha256(model), "data_sha256": sha256_array(x),
                                                      "data": str(job.data), "limit": job.n_train,
                                                      "config": json.dumps(asdict(mcfg))})
    z = read_latents(work / "latents.h5").latents

    if stage(3, f"draw {job.trials} Rademacher trials per latent (q = {dcfg.flip_prob:.4g})", work / "empirical.h5"):
        E = draw_samples(LatentSet(z), dcfg)
        write_latents(work / "empirical.h5", E.latents,
                      draw_attrs(dcfg, {"limit": job.n_train, "data": str(job.data)}, latents_sha256(z, None)),
                      counts=E.counts, source_index=E.source_index)
    E = read_latents(work / "empirical.h5")

    if stage(4, f"fine-tune the decoder on {len(E.latents)} drawn latents", work / "model_ft.pt"):
        finetune_decoder(model, E.latents, x[E.source_index], epochs=job.draw_finetune_epochs,
                         batch_size=job.batch_size, lr=job.lr / 2, seed=job.seed, counts=E.counts, progress=progress)
        save_model(model, work / "model_ft.pt", extra={"data": str(job.data), "empirical": "empirical.h5",
                                                       "fit": job.fit.to_json()})
    model = load_model(work / "model_ft.pt")

    if stage(5, f"enumerate every reachable stitching (ρ = {job.rho})", work / "cert.h5"):
        stored = native_hw if native_hw is not None else x.shape[2:]
        geometry = Geometry.for_stored(stored, x.shape[2:], job.fit)      # compare at the stored size
        extra = {"tau": float(job.tau), "kappa": float(job.kappa), "mode": "empirical", "trials": int(job.trials)}
        if x_test is not None:
            from .baseline import heldout_baseline

            src = f"{job.test}" + (f", first {job.test_limit}" if job.test_limit else "")
            extra["baseline"] = json.dumps(heldout_baseline(x, x_test, job.gammas, geometry, src))
        inputs = Inputs(LatentSet(E.latents, E.counts, E.source_index), model=model, train=x,
                        extra_attrs=extra, train_latents=z, geometry=geometry)
        ckpt = work / "cert.partial.h5"
        try:
            cert = certify(inputs, ccfg, progress=progress, checkpoint=ckpt, client=client)
        except TooManyImages as e:
            logger.warning(f"      {e}")
            ccfg.count_only = True
            cert = certify(inputs, ccfg, progress=progress)
        write_certificate(work / "cert.h5", cert)
        ckpt.unlink(missing_ok=True)
        shutil.rmtree(search_checkpoint_path(ckpt), ignore_errors=True)
        shutil.rmtree(search_checkpoint_path(ckpt, "-recon"), ignore_errors=True)
    cert = read_certificate(work / "cert.h5")
    listed = not bool(cert.attrs.get("count_only"))

    audit_res = None
    if listed and len(cert.latents):
        if stage(6, "audit every listed image against the training set", work / "audit.json"):
            geom = Geometry.from_json(cert.attrs.get("geometry"), x.shape[2:])      # the certificate's comparison
            audit_res = report_json(audit(geom.crop(x), geom.crop(cert.images).astype(np.float32) / 255.0,
                                          gammas=job.gammas, max_memory=ccfg.max_memory,
                                          test_NCHW=None if x_test is None else geom.crop(x_test), client=client))
            with atomic_path(work / "audit.json") as tmp:
                tmp.write_text(json.dumps(audit_res, indent=1, default=float))
        audit_res = json.loads((work / "audit.json").read_text())

    _stage(7, "write the HTML report", t0)
    build_report(cert, work / "report", train_images=x, title=f"fscert certificate: {job.data}",
                 source=str(out / "cert.h5"), force=True)
    summary = make_summary(cert, z, job, audit_res, time.perf_counter() - t0)
    summary["report"] = str(out / "report" / "index.html")
    with atomic_path(work / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    return summary


def plan_training(x: np.ndarray, mcfg, job: CertifyConfig):
    """Estimated memory and time of the three training stages: phase 1 and 2 on the images,
    then the decoder fine-tune on at most N·T drawn latents (measured on this machine)."""
    import torch

    from .autoencoder import LocalAutoencoder
    from .resources import Plan, training_step

    from .noise import flip_probability

    with torch.random.fork_rng():
        model = LocalAutoencoder(mcfg)
    n = len(x)
    # expected distinct draws per image: the unflipped copy (if any trial kept every bit) plus
    # the flipped trials, which almost never coincide
    bits = math.prod(mcfg.latent_shape)
    p0 = (1.0 - flip_probability(job.tau, job.kappa)) ** bits
    rows = int(np.ceil(n * ((1.0 - (1.0 - p0) ** job.trials) + job.trials * (1.0 - p0))))
    return Plan().add(training_step(n, model, job.batch_size, job.epochs, job.finetune_epochs)).add(
        training_step(rows, model, job.batch_size, decoder_epochs=job.draw_finetune_epochs,
                      what="fine-tune about"))
