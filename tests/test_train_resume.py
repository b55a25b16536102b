"""`fscert train --resume`: training interrupted anywhere continues from its last checkpoint
to exactly the weights and history of an uninterrupted run."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fscert.autoencoder import AEConfig
from fscert.data import load_images
from fscert.training import TrainConfig, TrainState, train, train_key
from fscert_cli.main import cli

MCFG = AEConfig(latent_channels=1, latent_size=8, hidden=16)
TCFG = TrainConfig(epochs=4, finetune_epochs=3, batch_size=8, eval_points=100)


@pytest.fixture(scope="module")
def x():
    return load_images("mnist", limit=24)


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
        train(x, MCFG, TCFG, progress=False, log=stop, state=TrainState(tmp_path / "s.pt", key, every_seconds=0))
    saved = TrainState(tmp_path / "s.pt", key).load()
    assert (saved is None) == (at == (1, 1))
    rows: list[dict] = []
    resumed = train(x, MCFG, TCFG, progress=False, log=rows.append,
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
    import fscert.api

    r = CliRunner().invoke(cli, ["train", "mnist", "--out", str(tmp_path / "a.pt"), *TINY])
    assert r.exit_code == 0, r.output

    real = fscert.api.train

    def interrupted(*a, **k):               # Ctrl-C during phase 2, with a checkpoint every epoch
        k["state"].every = 0
        k["log"] = lambda row: (_ for _ in ()).throw(KeyboardInterrupt) if row["phase"] == 2 else None
        return real(*a, **k)

    monkeypatch.setattr(fscert.api, "train", interrupted)
    r = CliRunner().invoke(cli, ["train", "mnist", "--out", str(tmp_path / "b.pt"), *TINY])
    assert r.exit_code == 130 and "--resume" in r.stderr, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.history.json", "a.history.png", "a.pt", "b.pt.partial.pt"]
    monkeypatch.setattr(fscert.api, "train", real)
    r = CliRunner().invoke(cli, ["train", "mnist", "--out", str(tmp_path / "b.pt"), *TINY, "--resume"])
    assert r.exit_code == 0 and "resuming from" in r.stderr, r.output
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    assert not (tmp_path / "b.pt.partial.pt").exists()
