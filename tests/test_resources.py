"""Resource guards: estimates are upper bounds of the arrays made, calibrations change nothing,
and every long command prints its estimate and refuses above --max-memory with one line."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fscert.autoencoder import AEConfig, LocalAutoencoder, decode_batched, save_model
from fscert.errors import FscertError
from fscert.latents import LatentSet, write_latents
from fscert.resources import (Plan, Step, decode_step, encode_step, memory_limit, neighbour_step, sampling_step,
                              size_str, time_str, training_step)
from fscert_cli.main import cli


def _latents(n=12, m=1, s=8, seed=0):
    return np.where(np.random.default_rng(seed).random((n, m, s, s)) > 0.5, 1, -1).astype(np.int8)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LocalAutoencoder(AEConfig(latent_channels=1, latent_size=8, hidden=16))


@pytest.fixture(scope="module")
def files(tmp_path_factory, model):
    d = tmp_path_factory.mktemp("res")
    save_model(model, d / "m.pt")
    write_latents(d / "z.h5", _latents())
    return d


# ----------------------------------------------------------------------------- the plan


def test_plan_line_and_refusal():
    plan = Plan().add(Step("list 10 latents", 3 * 2**20, 0.2)).add(Step("decode 10 images", 5 * 2**30, 400.0))
    assert plan.bytes == 3 * 2**20 + 5 * 2**30 and plan.time_s == pytest.approx(400.2)
    lines = []
    plan.check(max_memory=6 * 2**30, log=lines.append)
    assert lines == ["estimate: list 10 latents, decode 10 images: about 5.00 GiB and 6.7 min"]
    with pytest.raises(FscertError) as e:
        plan.check(max_memory=5 * 2**30)
    msg = str(e.value)
    assert "\n" not in msg and "decode 10 images" in msg and "--max-memory 5.00 GiB" in msg


def test_default_limit_is_three_quarters_of_memory():
    from fscert.resources import machine_memory

    assert memory_limit(None) == int(machine_memory() * 0.75) and memory_limit(123) == 123


@pytest.mark.parametrize("n,text", [(0, "0.0 KiB"), (1536, "1.5 KiB"), (3 * 2**20, "3.0 MiB"), (2**31, "2.00 GiB")])
def test_size_str(n, text):
    assert size_str(n) == text


@pytest.mark.parametrize("s,text", [(0.3, "< 1 s"), (42, "42 s"), (300, "5.0 min"), (9000, "2.5 h")])
def test_time_str(s, text):
    assert time_str(s) == text


# ----------------------------------------------------------------------------- estimates vs what is made


def test_decode_estimate_bounds_the_images(model):
    z = _latents(40)
    st = decode_step(len(z), model)
    assert st.bytes >= decode_batched(model, z).nbytes and st.time_s > 0
    assert decode_step(0, model).time_s == 0


def test_encode_estimate_bounds_the_latents(model):
    st = encode_step(50, model)
    assert st.bytes >= 50 * 1 * 8 * 8 and st.time_s > 0


def test_sampling_estimate_bounds_the_samples():
    from fscert.sampling import build_bank, sample_direct

    bank = build_bank(_latents(), rho=1)
    st = sampling_step(bank, 100, 0.01)
    assert st.bytes >= sample_direct(bank, 100, 0.01).nbytes and st.time_s > 0


def test_draw_estimate_bounds_the_empirical_set():
    from fscert.empirical import DrawConfig, draw_samples, plan_draws

    src = LatentSet(_latents(), counts=np.arange(1, 13))
    cfg = DrawConfig(trials=5, tau=1.5, kappa=0.5, seed=1)
    plan = plan_draws(src, cfg)
    E = draw_samples(src, cfg)
    assert plan.bytes >= E.latents.nbytes + E.counts.nbytes + E.source_index.nbytes
    assert "draw 390 latents" in plan.line()     # 5 trials × (1 + … + 12) images


def test_neighbour_work_counts_products():
    st = neighbour_step(100, 1000, 784, n_gammas=2, flops=1.0)
    assert st.time_s == pytest.approx(2 * 100 * 1000 * 784 + 2 * 2 * 100 * 100 * 784)
    assert neighbour_step(100, 1000, 784, self_search=True, flops=1.0).time_s == pytest.approx(
        2 * 100 * 1000 * 784 + 2 * 1000 * 1000 * 784)
    assert neighbour_step(200, 1000, 784).bytes > neighbour_step(100, 1000, 784).bytes >= 100 * 784 * 4


def test_calibrations_leave_every_random_state_alone(model):
    """Estimates run before the work; they must not change what the work produces."""
    torch.manual_seed(7)
    np_state = np.random.get_state()[1].copy()
    before = torch.get_rng_state()
    training_step(64, model, 16, epochs=1, decoder_epochs=1)
    decode_step(8, model)
    encode_step(8, model)
    assert torch.equal(torch.get_rng_state(), before)
    assert np.array_equal(np.random.get_state()[1], np_state)
    w0 = {k: v.clone() for k, v in model.state_dict().items()}
    training_step(64, model, 16, epochs=2)
    assert all(torch.equal(w0[k], v) for k, v in model.state_dict().items())


def test_training_estimate_counts_images_and_optimiser(model):
    st = training_step(500, model, 32, epochs=3, decoder_epochs=2)
    params = sum(p.numel() for p in model.parameters()) * 4
    assert st.bytes >= 500 * 32 * 32 * 4 + 3 * params and st.time_s > 0 and "5 epochs" in st.what


# ----------------------------------------------------------------------------- every long command


def _cmds(d):
    return {
        "train": ["train", "mnist", "--out", str(d / "o.pt"), "--limit", "8", "--epochs", "1",
                  "--finetune-epochs", "1", "--hidden", "8"],
        "encode": ["encode", str(d / "m.pt"), "mnist", "--limit", "8", "--out", str(d / "o.h5")],
        "sample": ["sample", "--latents", str(d / "z.h5"), "--model", str(d / "m.pt"), "-n", "20",
                   "--out", str(d / "o.h5")],
        "sample-network": ["sample", "--latents", str(d / "z.h5"), "--strategy", "network", "--network-epochs", "1",
                           "-n", "20", "--out", str(d / "o.h5")],
        "draw": ["draw", "--latents", str(d / "z.h5"), "--trials", "3", "--out", str(d / "o.h5")],
        "finetune": ["finetune", str(d / "m.pt"), str(d / "E.h5"), "--data", "mnist", "--epochs", "1",
                     "--out", str(d / "o.pt")],
        "enumerate": ["enumerate", "--latents", str(d / "E.h5"), "--rho", "4", "--model", str(d / "m.pt"),
                      "--train", "mnist", "--out", str(d / "o.h5")],
        "audit": ["audit", "--train", "mnist", "--generated", "mnist", "--limit", "30", "--json", str(d / "o.json")],
        "certify": ["certify", "mnist", "--out", str(d / "o"), "--n-train", "8", "--epochs", "1",
                    "--finetune-epochs", "1", "--draw-finetune-epochs", "1", "--hidden", "8", "--trials", "2"],
    }


@pytest.fixture(scope="module")
def with_empirical(files):
    r = CliRunner().invoke(cli, ["draw", "--latents", str(files / "z.h5"), "--trials", "2", "--out",
                                 str(files / "E.h5")])
    assert r.exit_code == 0, r.output
    import h5py

    with h5py.File(files / "E.h5", "a") as f:      # the 12 latents stand for the first 12 MNIST images
        f.attrs["limit"] = 12
    return files


@pytest.mark.parametrize("name", ["train", "encode", "sample", "sample-network", "draw", "finetune", "enumerate",
                                  "audit", "certify"])
def test_every_long_command_refuses_above_max_memory(with_empirical, name):
    d = with_empirical
    args = _cmds(d)[name]
    r = CliRunner().invoke(cli, [*args, "--max-memory", "1e-6"])
    assert r.exit_code == 1, r.output
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "--max-memory" in errors[0] and "Traceback" not in r.output
    assert not [p for p in d.iterdir() if p.name.startswith(("o.", "o", ".o"))], sorted(p.name for p in d.iterdir())


@pytest.mark.parametrize("name", ["encode", "sample", "draw", "enumerate", "audit"])
def test_estimate_is_printed_on_stderr_and_work_proceeds(with_empirical, name, tmp_path):
    d = with_empirical
    args = [a.replace(str(d / "o"), str(tmp_path / "o")) for a in _cmds(d)[name]]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "estimate:" in r.stderr and "estimate:" not in r.stdout


def test_audit_plan_counts_the_inputs_it_holds():
    from fscert.audit import plan_audit

    tr, ge = np.zeros((300, 1, 28, 28), np.float32), np.zeros((100, 1, 28, 28), np.float32)
    bare = plan_audit(100, 300, 784, 2)
    held = plan_audit(100, 300, 784, 2, [tr, ge])
    assert held.bytes == bare.bytes + tr.nbytes + ge.nbytes and held.line().startswith("estimate: hold 400 images")
