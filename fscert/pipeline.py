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
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .defaults import DEFAULTS
from .errors import FscertError, atomic_path, remove_temporaries, replace_tree
from .run_summary import make_summary, search_summary, summary_lines  # noqa: F401  (summary.json, printed lines)


@dataclass
class CertifyJob:
    data: str = "mnist"
    split: str = "train"
    n_train: int = int(DEFAULTS["n_train_certify"])
    # autoencoder (1×8×8 latent, R = 3: the paper's MNIST-64 certification set-up)
    latent_size: int = 8
    latent_channels: int = 1
    receptive_field: int = int(DEFAULTS["receptive_field"])
    hidden: int = 256                 # a 1×8×8 latent of 64 images needs less width than the default
    transition: bool = False
    epochs: int = 600                 # 64 images = one batch per epoch
    finetune_epochs: int = 100
    batch_size: int = 64
    lr: float = float(DEFAULTS["lr"])
    train_tau: float = float(DEFAULTS["train_tau"])
    train_kappa: float = float(DEFAULTS["train_kappa"])
    beta0: float = float(DEFAULTS["beta0"])
    # certification (A.3.6)
    trials: int = int(DEFAULTS["trials"])
    tau: float = float(DEFAULTS["tau"])
    kappa: float = float(DEFAULTS["kappa"])
    rho: int = int(DEFAULTS["rho_certify"])
    draw_finetune_epochs: int = 150
    max_images: int = int(DEFAULTS["max_images"])
    near_copies_only: bool = False
    recon_search: bool = True          # searched certificates: also search near-copies of the reconstructions
    # held-out real images (issue 12 item 5): the baseline every near-copy figure is read against
    test: str | None = None
    test_split: str = "test"
    test_limit: int | None = None
    max_memory_gib: float | None = None   # None: ¾ of the machine's memory
    gammas: tuple[float, ...] = tuple(DEFAULTS["gammas"])
    seed: int = int(DEFAULTS["seed"])


@dataclass
class CertifyResult:
    out: Path
    summary: dict = field(default_factory=dict)

    @property
    def report(self) -> Path:
        return self.out / "report" / "index.html"


_STAGE_STARTS: dict[float, tuple[int, float]] = {}     # a run (its t0) → (number, start) of its running stage


def _stage(log: Callable[[str], None], i: int, name: str, t0: float) -> None:
    """Log how long the previous stage took and the start of stage ``i`` (with the time since the
    run began); until the next stage, heartbeat lines (fscert.progress) name this one."""
    from .progress import format_seconds, set_activity

    now = time.perf_counter()
    _stage_done(log, t0, now)
    log(f"[{i}/7] {name} ({format_seconds(now - t0)} since the start)")
    _STAGE_STARTS[t0] = (i, now)
    set_activity(f"[{i}/7] {name}")


def _stage_done(log: Callable[[str], None], t0: float, now: float | None = None) -> None:
    """``      done in 41 s``: the duration of the run's running stage, if any (then none is running)."""
    from .progress import format_seconds

    running = _STAGE_STARTS.pop(t0, None)
    if running is not None:
        log(f"      done in {format_seconds((now or time.perf_counter()) - running[1])}")


def partial_dir(out: str | Path) -> Path:
    """The working folder of a run: ``OUT.partial``, renamed to ``OUT`` when every stage is done."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def job_key(job: CertifyJob, data_sha256: str) -> str:
    """What decides the outputs: every option but the memory limit, the data and the fscert version."""
    from . import __version__

    d = asdict(job)
    d.pop("max_memory_gib")
    d["gammas"] = [float(g) for g in d["gammas"]]
    return json.dumps({"job": d, "data_sha256": data_sha256, "fscert": __version__}, sort_keys=True)


def run_certify(job: CertifyJob, out: str | Path, force: bool = False, progress: bool = True,
                log: Callable[[str], None] = print, resume: bool = False) -> CertifyResult:
    """Run every stage; return the summary. Files written into ``out``:

    ``model.pt`` (+ ``model.history.json/png``), ``latents.h5``, ``empirical.h5``,
    ``model_ft.pt``, ``cert.h5``, ``audit.json``, ``summary.json`` and ``report/``.

    The stages write into ``OUT.partial``, which becomes ``out`` only when all are done. A
    failure removes it; Ctrl-C (or SIGTERM) keeps it, and ``resume=True`` then reuses every
    finished stage (each one's files are written atomically) and the decoding checkpoint of
    the enumeration, when the options and data are the same. Every stage is deterministic, so
    a resumed run writes the same certificate as an uninterrupted one.
    """
    from .autoencoder import AEConfig
    from .certify import CertifyConfig
    from .data import load_images
    from .empirical import DrawConfig
    from .hashing import sha256_array
    from .progress import LINES, heartbeat, is_terminal
    from .training import TrainConfig

    out = Path(out)
    if out.exists() and not force:
        raise FscertError(f"output folder {out} already exists (use --force to overwrite)")
    t0 = time.perf_counter()
    x = load_images(job.data, limit=job.n_train, split=job.split)
    x_test = None
    if job.test is not None:
        x_test = load_images(job.test, limit=job.test_limit, split=job.test_split)
        if x_test.shape[1:] != x.shape[1:]:
            raise FscertError(f"held-out images (--test) are {'×'.join(map(str, x_test.shape[1:]))} after loading, "
                              f"training images {'×'.join(map(str, x.shape[1:]))}: they must have the same size and "
                              "channels")
    mcfg = AEConfig(image_channels=x.shape[1], latent_size=job.latent_size, latent_channels=job.latent_channels,
                    receptive_field=job.receptive_field, hidden=job.hidden, transition=job.transition).validate()
    tcfg = TrainConfig(epochs=job.epochs, finetune_epochs=job.finetune_epochs, batch_size=job.batch_size, lr=job.lr,
                       tau=job.train_tau, kappa=job.train_kappa, beta0=job.beta0, seed=job.seed).validate()
    dcfg = DrawConfig(trials=job.trials, tau=job.tau, kappa=job.kappa, seed=job.seed).validate()
    max_memory = None if job.max_memory_gib is None else int(job.max_memory_gib * 2**30)
    ccfg = CertifyConfig(rho=job.rho, max_images=job.max_images, gammas=tuple(job.gammas), train=str(job.data),
                         train_limit=job.n_train, train_split=job.split, max_memory=max_memory,
                         near_copies_only=job.near_copies_only, recon_search=job.recon_search)
    ccfg.validate()

    work = partial_dir(out)
    key = job_key(job, sha256_array(x) + ("" if x_test is None else "+" + sha256_array(x_test)))
    if resume and (work / "job.json").is_file() and (work / "job.json").read_text() == key:
        log(f"resuming from {work}")
        remove_temporaries(work)               # what a killed write left behind
    else:
        if resume:
            log(f"no run to resume in {work} (missing, or other options or data); starting from the beginning")
        shutil.rmtree(work, ignore_errors=True)
        plan_training(x, mcfg, job).check(max_memory, log)
        work.mkdir(parents=True)
        (work / "job.json").write_text(key)
    if progress is True and not is_terminal():
        progress = LINES                       # lines, never bar redraws, in a log (fscert.progress)
    try:
        with heartbeat("certify", show=progress, write=log):   # a line after 30 s of silence, off a terminal
            summary = _stages(job, x, x_test, mcfg, tcfg, dcfg, ccfg, work, out, progress, log, t0)
        _stage_done(log, t0)
    except KeyboardInterrupt:
        log(f"interrupted: finished stages are kept in {work}; rerun with --resume to continue")
        raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        _STAGE_STARTS.pop(t0, None)
    (work / "job.json").unlink()
    replace_tree(work, out)                    # OUT is at every moment the old output or the new one
    return CertifyResult(out, summary)


def _stages(job: CertifyJob, x: np.ndarray, x_test: np.ndarray | None, mcfg, tcfg, dcfg, ccfg, work: Path, out: Path, progress: bool,
            log: Callable[[str], None], t0: float) -> dict:
    """The seven stages, each skipped when its files are already in ``work``."""
    from .audit import audit, report_json
    from .autoencoder import encode_batched, load_model, model_sha256, save_model
    from .certificate import latents_sha256, read_certificate, write_certificate
    from .certify import Inputs, certify
    from .empirical import draw_attrs, draw_samples
    from .enumeration import TooManyImages
    from .geometry import Geometry, stored_hw
    from .hashing import sha256_array
    from .latents import LatentSet, read_latents, write_latents
    from .report import build_report
    from .training import TrainState, finetune_decoder, save_history, train, train_key

    def stage(i: int, name: str, done: Path) -> bool:
        """Log the stage; True when it must run (its output is not there yet)."""
        if done.exists():
            log(f"[{i}/7] {name}: done before, reusing {done.name}")
            return False
        _stage(log, i, name, t0)
        return True

    if stage(1, f"train the autoencoder on {len(x)} images", work / "model.pt"):
        state = TrainState(work / "model.partial.pt", train_key(x, mcfg, tcfg))     # resumed with the run
        model, history = train(x, mcfg, tcfg, progress=progress, state=state)
        save_history(history, work / "model.pt", title=f"fscert certify: training on {job.data}")
        save_model(model, work / "model.pt", extra={"data": str(job.data), "data_sha256": sha256_array(x)})
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
        save_model(model, work / "model_ft.pt", extra={"data": str(job.data), "empirical": "empirical.h5"})
    model = load_model(work / "model_ft.pt")

    if stage(5, f"enumerate every reachable stitching (ρ = {job.rho})", work / "cert.h5"):
        geometry = Geometry.for_stored(stored_hw(job.data, job.split), x.shape[2:])   # compare at the stored size
        extra = {"tau": float(job.tau), "kappa": float(job.kappa), "mode": "empirical", "trials": int(job.trials)}
        if x_test is not None:
            from .baseline import heldout_baseline

            src = f"{job.test}" + (f", first {job.test_limit}" if job.test_limit else "")
            extra["baseline"] = json.dumps(heldout_baseline(x, x_test, job.gammas, geometry, src))
        inputs = Inputs(LatentSet(E.latents, E.counts, E.source_index), model=model, train=x,
                        extra_attrs=extra, train_latents=z, geometry=geometry)
        ckpt = work / "cert.partial.h5"
        try:
            cert = certify(inputs, ccfg, progress=progress, log=log, checkpoint=ckpt)
        except TooManyImages as e:
            log(f"      {e}")
            ccfg.count_only = True
            cert = certify(inputs, ccfg, progress=progress, log=log)
        write_certificate(work / "cert.h5", cert)
        ckpt.unlink(missing_ok=True)
    cert = read_certificate(work / "cert.h5")
    listed = not bool(cert.attrs.get("count_only"))

    audit_res = None
    if listed and len(cert.latents):
        if stage(6, "audit every listed image against the training set", work / "audit.json"):
            geom = Geometry.from_json(cert.attrs.get("geometry"), x.shape[2:])      # the certificate's comparison
            audit_res = report_json(audit(geom.crop(x), geom.crop(cert.images).astype(np.float32) / 255.0,
                                          gammas=job.gammas, max_memory=ccfg.max_memory, log=log,
                                          test_NCHW=None if x_test is None else geom.crop(x_test)))
            with atomic_path(work / "audit.json") as tmp:
                tmp.write_text(json.dumps(audit_res, indent=1, default=float))
        audit_res = json.loads((work / "audit.json").read_text())

    _stage(log, 7, "write the HTML report", t0)
    build_report(cert, work / "report", train_images=x, title=f"fscert certificate: {job.data}",
                 source=str(out / "cert.h5"), force=True)
    summary = make_summary(cert, z, job, audit_res, time.perf_counter() - t0)
    summary["report"] = str(out / "report" / "index.html")
    with atomic_path(work / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    return summary


def plan_training(x: np.ndarray, mcfg, job: CertifyJob):
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
    bits = mcfg.latent_channels * mcfg.latent_size ** 2
    p0 = (1.0 - flip_probability(job.tau, job.kappa)) ** bits
    rows = int(np.ceil(n * ((1.0 - (1.0 - p0) ** job.trials) + job.trials * (1.0 - p0))))
    return Plan().add(training_step(n, model, job.batch_size, job.epochs, job.finetune_epochs)).add(
        training_step(rows, model, job.batch_size, decoder_epochs=job.draw_finetune_epochs,
                      what="fine-tune about"))
