"""`fscert certify`: the whole job on tiny settings, its outputs and their agreement."""
import json
import logging

import numpy as np
import pytest
from click.testing import CliRunner

from fscert.certificate import attr_json, read_certificate
from fscert_cli.main import cli

TINY = ["--n-train", "8", "--epochs", "3", "--finetune-epochs", "1", "--draw-finetune-epochs", "1",
        "--hidden", "16", "--trials", "2", "--rho", "4"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "run"
    r = CliRunner().invoke(cli, ["certify", "mnist", "--out", str(out), *TINY])
    assert r.exit_code == 0, r.output
    return out, r.output


def test_outputs_exist_and_agree(run):
    out, output = run
    for name in ("model.pt", "model.history.json", "model.history.png", "latents.h5", "empirical.h5",
                 "model_ft.pt", "cert.h5", "summary.json", "report/index.html", "report/images.csv"):
        assert (out / name).exists(), name
    cert = read_certificate(out / "cert.h5")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["listed"] == len(cert.latents) == cert.reachable_count == int(summary["reachable"])
    assert np.isclose(cert.prob.sum(), 1.0)
    assert cert.images.shape == (len(cert.latents), 1, 28, 28) and cert.flags.shape[1] == 2       # native MNIST
    assert summary["memorization_mass"] == attr_json(cert, "memorization_mass")
    assert summary["training_latents_listed"] >= 1           # every training latent is reachable
    assert f"report: {out / 'report' / 'index.html'}" in output


def test_summary_opens_with_the_verdict(run):
    """summary.json's ``verdict`` block is the certificate's statement, and the printed summary
    opens with its sentences (issue 12 item 6); every figure is a number or null, never NaN."""
    from fscert.verdict_statement import statement

    out, output = run
    summary = json.loads((out / "summary.json").read_text())
    json.dumps(summary, allow_nan=False)
    cert = read_certificate(out / "cert.h5")
    assert summary["verdict"] == json.loads(json.dumps(statement(cert)))
    assert set(summary["verdict"]["per_gamma"]) == {"25", "30"} and summary["glossary"]
    for g, v in summary["verdict"]["per_gamma"].items():
        assert f"\nverdict at γ = {g} dB: {v['label']} — {v['sentence']}\n" in output
        assert v["status"] != "novel" or v["decidable"] is True
    assert output.index("\nverdict at γ = 25 dB") < output.index("\nfidelity floor: ") < output.index("\nreachable images:")


def test_verify_accepts_the_pipeline_certificate(run):
    out, _ = run
    r = CliRunner().invoke(cli, ["verify", str(out / "cert.h5"), "--model", str(out / "model_ft.pt"),
                                 "--train", "mnist", "--latents", str(out / "empirical.h5")])
    assert r.exit_code == 0, r.output


def test_existing_folder_refused_and_failure_leaves_nothing(run, tmp_path):
    out, _ = run
    r = CliRunner().invoke(cli, ["certify", "mnist", "--out", str(out), *TINY])
    assert r.exit_code == 1 and "already exists" in r.output
    np.save(tmp_path / "nan.npy", np.full((4, 28, 28), np.nan, np.float32))
    bad = tmp_path / "bad_run"
    r = CliRunner().invoke(cli, ["certify", str(tmp_path / "nan.npy"), "--out", str(bad), *TINY])
    assert r.exit_code == 1 and "NaN" in r.output
    assert not bad.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".bad_run")]


def test_interrupted_run_keeps_finished_stages_and_resumes_identically(tmp_path, monkeypatch, caplog):
    """Ctrl-C during fine-tuning leaves no OUT, only OUT.partial with stages 1–3; --resume reuses
    them and writes the same certificate, byte for byte, as an uninterrupted run."""
    import fscert.training
    from fscert.certify import CertifyConfig, run_certify

    job = CertifyConfig(n_train=8, epochs=2, finetune_epochs=1, draw_finetune_epochs=1, hidden=16, trials=2)
    whole = run_certify(job, tmp_path / "whole", progress=False)

    real = fscert.training.finetune_decoder

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(fscert.training, "finetune_decoder", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_certify(job, tmp_path / "run", progress=False)
    partial = tmp_path / "run.partial"
    assert not (tmp_path / "run").exists()
    assert sorted(p.name for p in partial.iterdir()) == ["empirical.h5", "job.json", "latents.h5", "model.history.json",
                                                          "model.history.png", "model.pt"]

    monkeypatch.setattr(fscert.training, "finetune_decoder", real)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fscert"):
        res = run_certify(job, tmp_path / "run", progress=False, resume=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "fscert.certify" and r.levelno == logging.INFO]
    assert not partial.exists() and lines[0] == f"resuming from {partial}"
    assert sum("done before" in ln for ln in lines) == 3                     # the stage lines are INFO records
    assert [ln[:5] for ln in lines if ln.startswith("[")] == [f"[{i}/7]" for i in range(1, 8)]
    for name in ("cert.h5", "model_ft.pt", "empirical.h5", "latents.h5", "audit.json"):
        assert (res.out / name).read_bytes() == (whole.out / name).read_bytes(), name
    assert not (res.out / "job.json").exists()


def test_failure_removes_the_partial_folder(tmp_path, monkeypatch):
    """Any error other than an interruption leaves nothing: neither OUT nor OUT.partial."""
    import fscert.training
    from fscert.errors import FscertError
    from fscert.certify import CertifyConfig, run_certify

    def fail(*a, **k):
        raise FscertError("boom")

    monkeypatch.setattr(fscert.training, "finetune_decoder", fail)
    job = CertifyConfig(n_train=8, epochs=2, finetune_epochs=1, draw_finetune_epochs=1, hidden=16, trials=1)
    with pytest.raises(FscertError):
        run_certify(job, tmp_path / "run", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_decoder_only_training_runs(tmp_path):
    """--epochs 0 (phase 2 only) is a valid job: no phase-1 checkpoint is ever written."""
    from fscert.certify import CertifyConfig, run_certify

    job = CertifyConfig(n_train=8, epochs=0, finetune_epochs=1, draw_finetune_epochs=1, hidden=16, trials=1)
    res = run_certify(job, tmp_path / "run", progress=False)
    assert (res.out / "cert.h5").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
