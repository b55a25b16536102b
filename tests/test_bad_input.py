"""Every command × every class of bad input (issue 7, item 1): exactly one `error:` line, a
non-zero exit, no traceback, and nothing written (no output, no temporary file).

Each row of CASES names the command, its arguments (``{G}``: a folder of good and bad input
files made once; ``{O}``: an empty output folder made per case) and a fragment the error
line must contain, so that each input is refused for the right reason.
"""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fscert.autoencoder import AEConfig, LocalAutoencoder, save_model
from fscert.latents import write_latents
from fscert_cli.main import cli


def _pm1(shape, seed=0):
    return np.where(np.random.default_rng(seed).random(shape) > 0.5, 1, -1).astype(np.int8)


def _ok(args):
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def G(tmp_path_factory):
    g = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    save_model(LocalAutoencoder(AEConfig(latent_channels=1, latent_size=8, hidden=8)), g / "m.pt")
    save_model(LocalAutoencoder(AEConfig(image_channels=3, latent_channels=1, latent_size=8, hidden=8)), g / "m3.pt")
    write_latents(g / "z.h5", _pm1((12, 1, 8, 8)), attrs={"limit": 12})
    write_latents(g / "z16.h5", _pm1((12, 1, 16, 16)))
    with h5py.File(g / "z0.h5", "w") as f:                        # values 0 and 1: not ±1
        f["latents"] = np.random.default_rng(1).integers(0, 2, (12, 1, 8, 8)).astype(np.int8)
    with h5py.File(g / "zc.h5", "w") as f:                        # a count of 0
        f["latents"] = _pm1((3, 1, 8, 8))
        f["counts"] = np.array([2, 0, 1], np.int64)
    with h5py.File(g / "zf.h5", "w") as f:                        # float latents with NaN
        f["latents"] = np.full((3, 1, 8, 8), np.nan, np.float32)
    _ok(["draw", "--latents", str(g / "z.h5"), "--trials", "2", "--out", str(g / "E.h5")])
    with h5py.File(g / "E.h5", "r") as src, h5py.File(g / "Ebig.h5", "w") as dst:   # sources beyond the data
        for k in src:
            dst[k] = src[k][()]
        dst["source_index"][...] = src["source_index"][()] + 5000
    _ok(["enumerate", "--latents", str(g / "E.h5"), "--rho", "4", "--model", str(g / "m.pt"), "--train", "mnist",
         "--limit", "12", "--out", str(g / "cert.h5")])
    for name in ("cert.h5", "z.h5", "m.pt"):
        b = (g / name).read_bytes()
        (g / f"trunc_{name}").write_bytes(b[: len(b) // 2])
    for name in ("text.h5", "text.pt", "text.npy", "text.npz"):
        (g / name).write_text("this is not an archive\n")
    np.save(g / "empty.npy", np.zeros((0, 28, 28), np.uint8))
    np.save(g / "nan.npy", np.full((8, 28, 28), np.nan, np.float32))
    np.save(g / "inf.npy", np.full((8, 28, 28), np.inf, np.float32))
    np.save(g / "rgb.npy", np.zeros((8, 3, 32, 32), np.uint8))
    np.save(g / "ok.npy", np.zeros((8, 28, 28), np.uint8))
    (g / "exists.h5").write_bytes((g / "z.h5").read_bytes())
    (g / "exists.pt").write_bytes((g / "m.pt").read_bytes())
    (g / "exists.json").write_text("{}")
    (g / "existsdir").mkdir()
    (g / "existsdir" / "keep").write_text("keep")
    return g


TRAIN = ["--epochs", "1", "--finetune-epochs", "1", "--hidden", "8", "--limit", "8"]
CERT = ["--n-train", "8", "--epochs", "1", "--finetune-epochs", "1", "--draw-finetune-epochs", "1", "--hidden", "8",
        "--trials", "2"]
ENUM = ["enumerate", "--latents", "{G}/E.h5", "--rho", "4", "--out", "{O}/c.h5"]
SAMPLE = ["sample", "--latents", "{G}/z.h5", "--out", "{O}/s.h5"]
DRAW = ["draw", "--latents", "{G}/z.h5", "--out", "{O}/e.h5"]
FINETUNE = ["finetune", "{G}/m.pt", "{G}/E.h5", "--data", "mnist", "--epochs", "1", "--out", "{O}/f.pt"]
AUDIT = ["audit", "--train", "mnist", "--generated", "{G}/ok.npy", "--limit", "20", "--json", "{O}/a.json"]
NFIG = ["nfig", "train", "--epochs", "1", "--limit", "8", "--out", "{O}/n.pt"]

CASES = [
    # --- missing files
    ("train", ["train", "{G}/missing.npz", "--out", "{O}/m.pt", *TRAIN], "not found"),
    ("encode", ["encode", "{G}/missing.pt", "mnist", "--out", "{O}/z.h5"], "not found"),
    ("sample", ["sample", "--latents", "{G}/missing.h5", "--out", "{O}/s.h5"], "not found"),
    ("sample", [*SAMPLE, "--model", "{G}/missing.pt"], "not found"),
    ("draw", ["draw", "--latents", "{G}/missing.h5", "--out", "{O}/e.h5"], "not found"),
    ("finetune", ["finetune", "{G}/m.pt", "{G}/missing.h5", "--data", "mnist", "--out", "{O}/f.pt"], "not found"),
    ("enumerate", ["enumerate", "--latents", "{G}/missing.h5", "--out", "{O}/c.h5"], "not found"),
    ("enumerate", [*ENUM, "--model", "{G}/m.pt", "--train", "{G}/missing.npy"], "not found"),
    ("verify", ["verify", "{G}/missing.h5"], "not found"),
    ("verify", ["verify", "{G}/cert.h5", "--model", "{G}/missing.pt"], "not found"),
    ("audit", ["audit", "--train", "{G}/missing.npy", "--generated", "mnist"], "not found"),
    ("report", ["report", "{G}/missing.h5", "--html", "{O}/r"], "not found"),
    ("certify", ["certify", "{G}/missing.npz", "--out", "{O}/run", *CERT], "not found"),
    ("nfig", ["nfig", "sample", "{G}/missing.pt", "--out", "{O}/n.npz"], "not found"),
    ("nfig", [*NFIG[:2], "{G}/missing.npz", *NFIG[2:]], "not found"),
    # --- text where an archive is expected
    ("train", ["train", "{G}/text.npz", "--out", "{O}/m.pt", *TRAIN], "text.npz"),
    ("encode", ["encode", "{G}/text.pt", "mnist", "--out", "{O}/z.h5"], "text.pt"),
    ("sample", ["sample", "--latents", "{G}/text.h5", "--out", "{O}/s.h5"], "text.h5"),
    ("sample", [*SAMPLE, "--model", "{G}/text.pt"], "text.pt"),
    ("draw", ["draw", "--latents", "{G}/text.h5", "--out", "{O}/e.h5"], "text.h5"),
    ("finetune", ["finetune", "{G}/text.pt", "{G}/E.h5", "--data", "mnist", "--out", "{O}/f.pt"], "text.pt"),
    ("enumerate", ["enumerate", "--latents", "{G}/text.h5", "--out", "{O}/c.h5"], "text.h5"),
    ("verify", ["verify", "{G}/text.h5"], "text.h5"),
    ("audit", ["audit", "--train", "mnist", "--generated", "{G}/text.npy"], "text.npy"),
    ("report", ["report", "{G}/text.h5", "--html", "{O}/r"], "text.h5"),
    ("certify", ["certify", "{G}/text.npz", "--out", "{O}/run", *CERT], "text.npz"),
    ("nfig", ["nfig", "sample", "{G}/text.pt", "--out", "{O}/n.npz"], "text.pt"),
    # --- truncated files
    ("sample", ["sample", "--latents", "{G}/trunc_z.h5", "--out", "{O}/s.h5"], "trunc_z.h5"),
    ("sample", [*SAMPLE, "--model", "{G}/trunc_m.pt"], "trunc_m.pt"),
    ("draw", ["draw", "--latents", "{G}/trunc_z.h5", "--out", "{O}/e.h5"], "trunc_z.h5"),
    ("verify", ["verify", "{G}/trunc_cert.h5"], "trunc_cert.h5"),
    ("report", ["report", "{G}/trunc_cert.h5", "--html", "{O}/r"], "trunc_cert.h5"),
    ("enumerate", ["enumerate", "--latents", "{G}/trunc_z.h5", "--out", "{O}/c.h5"], "trunc_z.h5"),
    # --- empty datasets, NaN / inf pixels
    ("train", ["train", "{G}/empty.npy", "--out", "{O}/m.pt", *TRAIN], "empty"),
    ("train", ["train", "{G}/nan.npy", "--out", "{O}/m.pt", *TRAIN], "NaN"),
    ("encode", ["encode", "{G}/m.pt", "{G}/inf.npy", "--out", "{O}/z.h5"], "inf"),
    ("finetune", ["finetune", "{G}/m.pt", "{G}/E.h5", "--data", "{G}/nan.npy", "--out", "{O}/f.pt"], "NaN"),
    ("enumerate", [*ENUM, "--model", "{G}/m.pt", "--train", "{G}/empty.npy"], "empty"),
    ("audit", ["audit", "--train", "{G}/empty.npy", "--generated", "mnist"], "empty"),
    ("audit", ["audit", "--train", "mnist", "--generated", "{G}/nan.npy"], "NaN"),
    ("certify", ["certify", "{G}/inf.npy", "--out", "{O}/run", *CERT], "inf"),
    ("nfig", [*NFIG[:2], "{G}/nan.npy", *NFIG[2:]], "NaN"),
    # --- latents that are not ±1, counts < 1
    ("sample", ["sample", "--latents", "{G}/z0.h5", "--out", "{O}/s.h5"], "±1"),
    ("sample", ["sample", "--latents", "{G}/zf.h5", "--out", "{O}/s.h5"], "zf.h5"),
    ("draw", ["draw", "--latents", "{G}/z0.h5", "--out", "{O}/e.h5"], "±1"),
    ("draw", ["draw", "--latents", "{G}/zc.h5", "--out", "{O}/e.h5"], "count"),
    ("enumerate", ["enumerate", "--latents", "{G}/zc.h5", "--out", "{O}/c.h5"], "count"),
    ("enumerate", ["enumerate", "--latents", "{G}/z0.h5", "--out", "{O}/c.h5"], "±1"),
    ("verify", ["verify", "{G}/cert.h5", "--latents", "{G}/z0.h5"], "±1"),
    ("finetune", ["finetune", "{G}/m.pt", "{G}/z0.h5", "--data", "mnist", "--out", "{O}/f.pt"], "±1"),
    # --- counts < 1 given as options
    ("sample", [*SAMPLE, "-n", "0"], "≥ 1"),
    ("draw", [*DRAW, "--trials", "0"], "≥ 1"),
    ("enumerate", [*ENUM, "--max-images", "0"], "≥ 1"),
    ("train", ["train", "mnist", "--out", "{O}/m.pt", *TRAIN, "--batch-size", "0"], "0"),
    ("certify", ["certify", "mnist", "--out", "{O}/run", *CERT, "--n-train", "0"], "0"),
    ("audit", [*AUDIT[:-2], "--limit", "0"], "0"),
    # --- shapes that do not fit together
    ("sample", ["sample", "--latents", "{G}/z16.h5", "--model", "{G}/m.pt", "--out", "{O}/s.h5"], "do not fit"),
    ("encode", ["encode", "{G}/m3.pt", "mnist", "--out", "{O}/z.h5"], "do not fit the model"),
    ("enumerate", ["enumerate", "--latents", "{G}/z16.h5", "--model", "{G}/m.pt", "--out", "{O}/c.h5"], "do not fit"),
    ("enumerate", [*ENUM, "--model", "{G}/m3.pt", "--train", "mnist"], "do not fit the model"),
    ("finetune", ["finetune", "{G}/m.pt", "{G}/Ebig.h5", "--data", "mnist", "--out", "{O}/f.pt"], "refers to training image 50"),
    ("finetune", ["finetune", "{G}/m3.pt", "{G}/E.h5", "--data", "mnist", "--out", "{O}/f.pt"], "do not fit the model"),
    ("audit", ["audit", "--train", "mnist", "--generated", "{G}/rgb.npy"], "native size"),
    # --- ρ, τ, κ, γ out of range
    ("sample", [*SAMPLE, "--rho", "-1"], "≥ 0"),
    ("enumerate", [*ENUM[:-4], "--rho", "-2", "--out", "{O}/c.h5"], "≥ 0"),
    ("certify", ["certify", "mnist", "--out", "{O}/run", *CERT, "--rho", "-1"], "-1"),
    ("sample", [*SAMPLE, "--tau", "-0.5"], "τ"),
    ("sample", [*SAMPLE, "--tau", "nan"], "τ"),
    ("sample", [*SAMPLE, "--kappa", "0"], "κ"),
    ("draw", [*DRAW, "--kappa", "-1"], "κ"),
    ("draw", [*DRAW, "--tau", "inf"], "τ"),
    ("train", ["train", "mnist", "--out", "{O}/m.pt", *TRAIN, "--tau", "-1"], "τ"),
    ("certify", ["certify", "mnist", "--out", "{O}/run", *CERT, "--kappa", "0"], "κ"),
    ("enumerate", [*ENUM, "--full-support", "--tau", "1.5", "--kappa", "nan"], "κ"),
    ("audit", [*AUDIT, "--gamma", "0"], "γ"),
    ("audit", [*AUDIT, "--gamma", "-25"], "γ"),
    ("audit", [*AUDIT, "--gamma", "nan"], "γ"),
    ("audit", [*AUDIT, "--gamma", "abc"], "abc"),
    ("enumerate", [*ENUM, "--gamma", "0"], "γ"),
    ("enumerate", [*ENUM, "--gamma", "inf"], "γ"),
    ("certify", ["certify", "mnist", "--out", "{O}/run", *CERT, "--gamma", "-1"], "positive"),
    # --- an existing output without --force
    ("train", ["train", "mnist", "--out", "{G}/exists.pt", *TRAIN], "already exists"),
    ("encode", ["encode", "{G}/m.pt", "mnist", "--out", "{G}/exists.h5"], "already exists"),
    ("sample", ["sample", "--latents", "{G}/z.h5", "--out", "{G}/exists.h5"], "already exists"),
    ("draw", ["draw", "--latents", "{G}/z.h5", "--out", "{G}/exists.h5"], "already exists"),
    ("finetune", ["finetune", "{G}/m.pt", "{G}/E.h5", "--data", "mnist", "--out", "{G}/exists.pt"], "already exists"),
    ("enumerate", ["enumerate", "--latents", "{G}/E.h5", "--out", "{G}/exists.h5"], "already exists"),
    ("audit", [*AUDIT[:-1], "{G}/exists.json"], "already exists"),
    ("report", ["report", "{G}/cert.h5", "--html", "{G}/existsdir"], "already exists"),
    ("certify", ["certify", "mnist", "--out", "{G}/existsdir", *CERT], "already exists"),
    ("nfig", ["nfig", "train", "--epochs", "1", "--limit", "8", "--out", "{G}/exists.pt"], "already exists"),
    ("experiment", ["experiment", "training", "--quick", "--out", "{G}/existsdir"], "already exists"),
]


def _fill(args, G, O):
    return [a.replace("{G}", str(G)).replace("{O}", str(O)) for a in args]


@pytest.mark.parametrize("command,args,fragment", CASES,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_bad_input_is_one_line_and_leaves_nothing(G, tmp_path, command, args, fragment):
    before = sorted(p.name for p in G.rglob("*"))
    out = tmp_path / "out"
    out.mkdir()
    r = CliRunner().invoke(cli, _fill(args, G, out))
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.exit_code in (1, 2), r.output
    assert len(errors) == 1, r.output
    assert "Traceback" not in r.output and "Usage:" not in r.output, r.output
    assert fragment.lower() in errors[0].lower(), errors[0]
    assert not any(out.iterdir()), sorted(p.name for p in out.iterdir())
    assert sorted(p.name for p in G.rglob("*")) == before
    assert (G / "existsdir" / "keep").read_text() == "keep"


def test_every_command_is_covered():
    """Each command of the CLI has rows above (help-only groups excepted)."""
    names = set(cli.load_all()) - {"nfig"} | {"nfig"}
    assert names <= {c for c, _, _ in CASES}, names - {c for c, _, _ in CASES}
