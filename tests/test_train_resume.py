"""`fscert train --resume`: training interrupted anywhere continues from its last checkpoint
to exactly the weights and history of an uninterrupted run."""
from __future__ import annotations

import json
import logging

import pytest
import torch
from click.testing import CliRunner

from fscert.fit import Fit
from fscert.autoencoder import AEConfig
from fscert.data import load_images
from fscert.training import TrainConfig, TrainState, train, train_key
from fscert_cli.main import cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")      # tiny models: far faster on a shared machine

MCFG = AEConfig(latent_channels=1, latent_size=8, hidden=16)
TCFG = TrainConfig(epochs=4, finetune_epochs=3, batch_size=8, eval_points=100)


@pytest.fixture(scope="module")
def x():
    return load_images("mnist", limit=24, fit=Fit(pad=True))


@pytest.fixture(scope="module")
def reference(x):
    return train(x, MCFG, TCFG, progress=False)


def _same(a, b):
    (ma, ha), (mb, hb) = a, b
    sa, sb = ma.state_dict(), mb.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(ha) == strip(hb)


class Stop(KeyboardInterrupt):
    """Ctrl-C raised by the test at a chosen epoch."""


@pytest.mark.parametrize("at", [(1, 1), (1, 3), (1, 4), (2, 1), (2, 3)],
                         ids=["phase1-first", "phase1-mid", "phase1-last", "phase2-first", "phase2-last"])
def test_interrupted_training_resumes_to_identical_weights(x, reference, tmp_path, at):
    """Ctrl-C after epoch `at` has been logged (its checkpoint not yet written): the resumed run
    starts from the previous checkpoint and ends where the uninterrupted run ends."""
    key = train_key(x, MCFG, TCFG)

    def stop(row):
        if (row["phase"], row["epoch"]) == at:
            raise Stop

    with pytest.raises(Stop):
        train(x, MCFG, TCFG, progress=False, on_epoch=stop, state=TrainState(tmp_path / "s.pt", key, every_seconds=0))
    saved = TrainState(tmp_path / "s.pt", key).load()
    assert (saved is None) == (at == (1, 1))
    rows: list[dict] = []
    resumed = train(x, MCFG, TCFG, progress=False, on_epoch=rows.append,
                    state=TrainState(tmp_path / "s.pt", key, every_seconds=0))
    _same(resumed, reference)
    assert len(rows) == TCFG.epochs + TCFG.finetune_epochs - (len(json.loads(saved["history"])) if saved else 0)


def test_a_checkpoint_of_other_options_or_data_is_not_used(x, tmp_path):
    key = train_key(x, MCFG, TCFG)
    st = TrainState(tmp_path / "s.pt", key, every_seconds=0)
    train(x[:16], MCFG, TrainConfig(epochs=1, finetune_epochs=1, batch_size=8), progress=False, state=st)
    assert st.load() is not None                       # written under this key by the call above
    assert TrainState(st.path, train_key(x[:16], MCFG, TCFG)).load() is None
    assert TrainState(st.path, train_key(x, MCFG, TrainConfig(epochs=5, finetune_epochs=3, batch_size=8))).load() is None


@pytest.mark.parametrize("content", [b"", b"garbage", None], ids=["empty", "garbage", "truncated"])
def test_a_damaged_checkpoint_starts_again(x, reference, tmp_path, content):
    key = train_key(x, MCFG, TCFG)
    st = TrainState(tmp_path / "s.pt", key, every_seconds=0)
    train(x, MCFG, TCFG, progress=False, state=st)
    blob = st.path.read_bytes()
    st.path.write_bytes(blob[: len(blob) // 2] if content is None else content)
    assert st.load() is None
    _same(train(x, MCFG, TCFG, progress=False, state=TrainState(st.path, key)), reference)


TINY = ["--limit", "24", "--epochs", "4", "--finetune-epochs", "3", "--hidden", "16", "--batch-size", "8",
        "-M", "1"]


def test_cli_train_resume_gives_the_same_model_file(tmp_path, monkeypatch):
    import fscert.train

    r = CliRunner().invoke(cli, ["train", "mnist", "--out", str(tmp_path / "a.pt"), *TINY])
    assert r.exit_code == 0, r.output

    real = fscert.train.train

    def interrupted(*a, **k):               # Ctrl-C during phase 2, with a checkpoint every epoch
        k["state"].every = 0
        k["on_epoch"] = lambda row: (_ for _ in ()).throw(KeyboardInterrupt) if row["phase"] == 2 else None
        return real(*a, **k)

    monkeypatch.setattr(fscert.train, "train", interrupted)
    r = CliRunner().invoke(cli, ["train", "mnist", "--out", str(tmp_path / "b.pt"), *TINY])
    assert r.exit_code == 130 and "--resume" in r.stderr, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.history.json", "a.history.png", "a.pt", "b.pt.partial.pt"]
    monkeypatch.setattr(fscert.train, "train", real)
    r = CliRunner().invoke(cli, ["train", "mnist", "--out", str(tmp_path / "b.pt"), *TINY, "--resume"])
    assert r.exit_code == 0 and "resuming from" in r.stderr, r.output
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    assert not (tmp_path / "b.pt.partial.pt").exists()


# ----------------------------------------------------------------------------- what allows `certify --resume`


def _other_value(v):
    """A different value of the same kind."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, (int, float)):
        return v + 1
    if isinstance(v, tuple):
        return (*v, 40.0)
    return "other" if v is None or isinstance(v, str) else None


def _leaves(obj, prefix: tuple[str, ...] = ()):
    """(path, value) of every field of a (nested) config dataclass."""
    import dataclasses

    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            yield from _leaves(v, (*prefix, f.name))
        else:
            yield (*prefix, f.name), v


def _with(job, path: tuple[str, ...], value):
    """A deep copy of ``job`` with the field at ``path`` set to ``value``."""
    import copy

    job = copy.deepcopy(job)
    obj = job
    for name in path[:-1]:
        obj = getattr(obj, name)
    setattr(obj, path[-1], value)
    return job


def _job():
    from fscert.certify import CertifyConfig

    return CertifyConfig(n_train=8, epochs=2, finetune_epochs=1, draw_finetune_epochs=1, hidden=16, trials=2)


def test_certify_job_key_changes_with_every_option_but_the_memory_limit():
    """The key written to OUT.partial/job.json decides whether `certify --resume` reuses stages:
    every field of the job that can change an output changes it, as do the data and the fscert
    version; ``max_memory_gib`` (a guard, never an input of a result) does not."""
    import fscert
    from fscert.certify import job_key

    job = _job()
    key = job_key(job, "sha-a")
    leaves = list(_leaves(job))
    assert len(leaves) > 10 and job_key(_with(job, ("data",), job.data), "sha-a") == key
    for path, value in leaves:
        if path[-1].startswith("max_memory") and len(path) > 1:
            continue                        # a component's own memory limit: set from max_memory_gib at run time
        changed = job_key(_with(job, path, _other_value(value)), "sha-a") != key
        assert changed == (path != ("max_memory_gib",)), path
    assert job_key(job, "sha-b") != key
    version = fscert.__version__
    try:
        fscert.__version__ = version + ".dev1"
        assert job_key(job, "sha-a") != key
    finally:
        fscert.__version__ = version


@pytest.mark.parametrize("same", [True, False], ids=["same-options", "other-options"])
def test_certify_resume_reuses_the_partial_folder_only_under_the_same_key(tmp_path, monkeypatch, caplog, same):
    """run_certify(resume=True) keeps OUT.partial (and its finished stages) when its job.json holds
    this run's key, and starts again from an empty folder otherwise (here: another --trials). The
    stages are replaced by a Ctrl-C, so nothing is trained."""
    import copy

    import fscert.certify
    from fscert.certify import job_key, partial_dir, run_certify
    from fscert.hashing import sha256_array

    job = _job()
    before = copy.deepcopy(job)
    if not same:
        before.trials = 3
    sha = sha256_array(load_images("mnist", limit=8))
    work = partial_dir(tmp_path / "run")
    work.mkdir()
    (work / "job.json").write_text(job_key(before, sha))
    (work / "model.pt").write_bytes(b"a finished stage")
    seen: list[list[str]] = []

    def stages(*a, **k):
        seen.append(sorted(p.name for p in work.iterdir()))
        raise KeyboardInterrupt

    monkeypatch.setattr(fscert.certify, "_stages", stages)
    with caplog.at_level(logging.INFO, logger="fscert"), pytest.raises(KeyboardInterrupt):
        run_certify(job, tmp_path / "run", progress=False, resume=True)
    first = next(r for r in caplog.records if r.name == "fscert.certify")
    if same:
        assert (first.levelno, first.getMessage()) == (logging.INFO, f"resuming from {work}")
        assert seen == [["job.json", "model.pt"]]
    else:
        assert first.levelno == logging.WARNING and first.getMessage().startswith(f"no run to resume in {work}")
        assert seen == [["job.json"]]
    assert (work / "job.json").read_text() == job_key(job, sha)
