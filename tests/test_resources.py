"""Resource guards: estimates are upper bounds of the arrays made; times are counts of work ×
per-unit costs (fscert/costs.json), computed without running a kernel; every long command prints
its estimate and refuses above --max-memory with one line."""
from __future__ import annotations

import json
import logging
import math
from dataclasses import fields

import numpy as np
import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner
from torch.overrides import TorchFunctionMode

import fscert.resources as res
from fscert.autoencoder import AEConfig, LocalAutoencoder, decode_batched, save_model
from fscert.errors import FscertError
from fscert.latents import LatentSet, write_latents
from fscert.resources import (Costs, Plan, Step, Work, decode_step, encode_step, evaluations, fit_seconds,
                              forward_seconds, memory_limit, model_work, network_work, neighbour_step,
                              parse_costs, reference_costs, sampling_step, size_str, time_str, training_step)
from fscert_cli.main import cli

#: round per-unit costs, so that expected seconds can be written down by hand
UNIT = Costs(machine="a test machine", train_step_s=1.0, train_param_s=0.01, train_mac_s=1e-6,
             train_pointwise_mac_s=2e-6, train_value_s=1e-5, forward_batch_s=0.5, forward_mac_s=1e-7,
             forward_pointwise_mac_s=2e-7, forward_value_s=1e-6, search_flop_s=1e-9, sample_candidate_s=1e-3,
             sample_word_s=1e-4, sample_cell_s=1e-2)


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


@pytest.fixture
def unit_costs(monkeypatch):
    monkeypatch.setattr(res, "reference_costs", lambda: UNIT)
    return UNIT


# ----------------------------------------------------------------------------- the plan


def test_plan_line_and_refusal(caplog):
    plan = Plan().add(Step("list 10 latents", 3 * 2**20, 0.2)).add(Step("decode 10 images", 5 * 2**30, 400.0))
    assert plan.bytes == 3 * 2**20 + 5 * 2**30 and plan.time_s == pytest.approx(400.2)
    with caplog.at_level(logging.DEBUG, logger="fscert"):
        plan.check(max_memory=6 * 2**30)
    # the estimate is one INFO record of fscert.resources, its parts one DEBUG record
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("fscert.resources", logging.INFO, "estimate: list 10 latents, decode 10 images: about 5.00 GiB and 6.7 min "
                                           f"(time from per-unit costs measured on {reference_costs().machine})"),
        ("fscert.resources", logging.DEBUG, "  list 10 latents: 3.0 MiB; decode 10 images: 5.00 GiB; limit 6.00 GiB")]
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


# ----------------------------------------------------------------------------- the shipped costs


def test_costs_file_is_in_the_package_and_loads():
    from importlib import resources

    f = resources.files("fscert").joinpath(res.COSTS_FILE)
    assert f.is_file()
    blob = json.loads(f.read_text(encoding="utf-8"))
    c = reference_costs()
    assert c.machine == blob["machine"] and "cores" in c.machine
    values = [getattr(c, k.name) for k in fields(Costs) if k.name != "machine"]
    assert all(math.isfinite(v) and v >= 0 for v in values)
    assert min(c.train_mac_s + c.train_pointwise_mac_s + c.train_value_s, c.search_flop_s,
               c.forward_mac_s + c.forward_pointwise_mac_s + c.forward_value_s,
               c.sample_candidate_s + c.sample_word_s) > 0                  # every kind of work takes time


def test_costs_with_a_missing_unit_are_refused_in_one_line():
    with pytest.raises(FscertError) as e:
        parse_costs(json.dumps({"machine": "m", "costs": {"train_step_s": 1.0}}))
    assert "\n" not in str(e.value) and "forward_mac_s" in str(e.value) and "make bench" in str(e.value)


# ----------------------------------------------------------------------------- counting work


def test_network_work_counts_products_and_values():
    """Conv 1→4 (3×3) on 8×8: 36 weights × 64 positions; ConvTranspose 4→2 (2×2, stride 2): 32
    weights × 64 input positions; pointwise: a 1×1 conv 2→3 on 16×16 (6 × 256) and a linear
    layer 16→5 on 3·16 rows (80 × 48); values: every leaf's output."""
    with torch.device("meta"):
        net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.LeakyReLU(), nn.ConvTranspose2d(4, 2, 2, stride=2),
                            nn.Conv2d(2, 3, 1), nn.Linear(16, 5))
    w = network_work(net, (1, 8, 8))
    assert w == Work(36 * 64 + 32 * 64, 6 * 256 + 80 * 48, 4 * 64 + 4 * 64 + 2 * 256 + 3 * 256 + 3 * 16 * 5)


def test_model_work_of_the_autoencoder_by_hand(model):
    """The tiny model (M = 1, 8×8 latent, hidden 16, R = 3) counted from Tab. 1's layers."""
    w = model_work(model)
    enc = 1 * 32 * 16 * 16 * 16 + 32 * 64 * 16 * 64                    # 4×4 convolutions to 16×16, then 8×8
    enc_pointwise = 64 * 1 * 64 + 2 * (1 * 64)                         # 1×1 to M, two residual 1×1
    dec_pointwise = 2 * 64 + (9 * 16 + 16 * 16 + 16 * 16) * 64 + (1 * 32 + 32 * 1) * 1024
    assert (w.encoder.macs, w.encoder.pointwise_macs) == (enc, enc_pointwise)
    assert (w.decoder.macs, w.decoder.pointwise_macs) == (0, dec_pointwise)
    assert w.encoder_params + w.decoder_params == sum(p.numel() for p in model.parameters())
    assert w.decoder_params == sum(p.numel() for p in model.decoder.parameters())


@pytest.mark.parametrize("points", [1, 7, 100])
def test_evaluation_count_is_the_training_loops(points):
    from fscert.training import _eval_now

    for epochs in (0, 1, 5, 99, 100, 101, 250, 600):
        assert evaluations(epochs, points) == sum(_eval_now(e, epochs, points) for e in range(epochs))


# ----------------------------------------------------------------------------- counts × costs


def test_fit_and_forward_seconds_are_counts_times_costs():
    w = Work(macs=1000, pointwise_macs=300, values=100)
    # 10 images in batches of 4: 3 steps per epoch, 9 in all; 30 image-epochs
    assert fit_seconds(w, 50, 10, 3, 4, UNIT) == pytest.approx(
        9 * (1.0 + 50 * 0.01) + 30 * (1000e-6 + 300 * 2e-6 + 100e-5))
    assert fit_seconds(w, 50, 0, 3, 4, UNIT) == 0 and fit_seconds(w, 50, 10, 0, 4, UNIT) == 0
    # 600 images in batches of 256: 3 batches
    assert forward_seconds(w, 600, 256, UNIT) == pytest.approx(600 * (1000e-7 + 300 * 2e-7 + 100e-6) + 3 * 0.5)


def test_training_estimate_is_both_phases_evaluations_and_encoding(model, unit_costs):
    """train 300 images, 4 + 2 epochs, batch 64: phase 1 and phase 2 fits, 4 + 2 evaluations of
    256 images through the whole model, one encoding of the 300 images; a fine-tune is the
    decoder fit alone."""
    w = model_work(model)
    both = w.encoder + w.decoder
    p1 = fit_seconds(both, w.encoder_params + w.decoder_params, 300, 4, 64, UNIT)
    p2 = fit_seconds(w.decoder, w.decoder_params, 300, 2, 64, UNIT)
    evals = 6 * forward_seconds(both, 256, 256, UNIT)
    enc = forward_seconds(w.encoder, 300, 512, UNIT)
    assert training_step(300, model, 64, epochs=4, decoder_epochs=2).time_s == pytest.approx(p1 + p2 + evals + enc)
    assert training_step(300, model, 64, decoder_epochs=2, what="fine-tune").time_s == pytest.approx(p2)
    assert training_step(0, model, 64, epochs=4).time_s == 0


def test_decode_encode_search_and_sampling_seconds(model, unit_costs):
    w = model_work(model)
    assert decode_step(1000, model).time_s == pytest.approx(
        1000 * (w.decoder.pointwise_macs * 2e-7 + (w.decoder.values + 4 * 1024) * 1e-6) + 4 * 0.5)
    assert encode_step(300, model).time_s == pytest.approx(
        300 * (w.encoder.macs * 1e-7 + w.encoder.pointwise_macs * 2e-7 + (w.encoder.values + 3 * 64) * 1e-6) + 2 * 0.5)
    assert decode_step(0, model).time_s == 0 and decode_step(10, model, sec_per_image=2.0).time_s == 20
    assert neighbour_step(100, 1000, 784).time_s == pytest.approx(2 * 100 * 1000 * 784 * 1e-9)
    from fscert.sampling import build_bank

    bank = build_bank(_latents(), rho=1)
    pools = [bank.pool(i)[0] for i in range(bank.n_cells)]
    per = sum(len(p) * 1e-3 + p.size * 1e-4 + 1e-2 for p in pools)
    assert sampling_step(bank, 50, 0.01).time_s == pytest.approx(50 * per)


class _NoKernels(TorchFunctionMode):
    """Records every torch call that makes a tensor off the meta device (a real kernel)."""

    def __init__(self):
        super().__init__()
        self.real: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if any(isinstance(o, torch.Tensor) and o.device.type != "meta" for o in outs):
            self.real.append(getattr(func, "__name__", str(func)))
        return out


def test_estimating_runs_no_kernel_and_changes_nothing(model, monkeypatch):
    """Training, decoding, encoding, searching and sampling are all estimated while every one of
    those kernels raises, no torch call makes a real tensor, and the random states and the
    model's weights stay as they were."""
    import importlib

    import fscert.autoencoder
    import fscert.sampling
    import fscert.training
    from fscert.sampling import build_bank

    nearest_module = importlib.import_module("fscert.metrics.nearest")     # fscert.metrics.nearest is also a function
    bank = build_bank(_latents(), rho=1)

    def forbidden(*a, **k):
        raise AssertionError("a kernel ran while estimating")

    for mod, name in [(fscert.training, "train"), (fscert.training, "_fit_decoder"), (fscert.training, "evaluate"),
                      (fscert.autoencoder, "decode_batched"), (fscert.autoencoder, "encode_batched"),
                      (fscert.sampling, "sample_direct"), (nearest_module, "nearest"),
                      (torch.optim.Adam, "step"), (torch.Tensor, "backward")]:
        monkeypatch.setattr(mod, name, forbidden)
    monkeypatch.setattr(LocalAutoencoder, "forward", forbidden)
    torch.manual_seed(7)
    np.random.seed(7)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    w0 = {k: v.clone() for k, v in model.state_dict().items()}
    with _NoKernels() as mode:
        plan = (Plan().add(training_step(640, model, 64, epochs=30, decoder_epochs=10))
                .add(training_step(900, model, 64, decoder_epochs=5, what="fine-tune"))
                .add(decode_step(5000, model)).add(encode_step(640, model))
                .add(neighbour_step(5000, 640, 784, n_gammas=2, self_search=True))
                .add(sampling_step(bank, 200, 0.01)))
        again = training_step(640, model, 64, epochs=30, decoder_epochs=10)
    assert mode.real == []
    assert plan.time_s > 0 and again.time_s == plan.steps[0].time_s     # the same estimate every time
    assert torch.equal(torch.get_rng_state(), torch_state) and np.array_equal(np.random.get_state()[1], np_state)
    assert all(torch.equal(w0[k], v) for k, v in model.state_dict().items())


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


def test_quiet_hides_and_debug_adds_log_lines(with_empirical, tmp_path):
    """The library logs its estimate at INFO and the parts at DEBUG; the CLI shows INFO lines by
    default, nothing with a command's --quiet, DEBUG lines too with the group's --debug; and it
    leaves the fscert logger as it found it (no handler, level and propagation restored)."""
    d = with_empirical
    enc = ["encode", str(d / "m.pt"), "mnist", "--limit", "8", "--force", "--out", str(tmp_path / "o.h5")]
    plain, quiet, debug = (CliRunner().invoke(cli, args) for args in (enc, [*enc, "--quiet"], ["--debug", *enc]))
    assert plain.exit_code == quiet.exit_code == debug.exit_code == 0, plain.output + quiet.output + debug.output
    detail = [ln for ln in debug.stderr.splitlines() if ln.startswith("  encode 8 images: ") and "; limit " in ln]
    assert [ln for ln in plain.stderr.splitlines() if ln.startswith("estimate: encode 8 images")]
    assert not any(ln.startswith("  encode 8 images: ") for ln in plain.stderr.splitlines()), plain.stderr
    assert quiet.stderr == "" and quiet.stdout == plain.stdout
    assert len(detail) == 1 and "estimate: encode 8 images" in debug.stderr, debug.stderr
    log = logging.getLogger("fscert")
    assert [type(h).__name__ for h in log.handlers] == ["NullHandler"] and log.level == logging.NOTSET
    assert log.propagate


def test_audit_plan_counts_the_inputs_it_holds():
    from fscert.audit import plan_audit

    tr, ge = np.zeros((300, 1, 28, 28), np.float32), np.zeros((100, 1, 28, 28), np.float32)
    bare = plan_audit(100, 300, 784, 2)
    held = plan_audit(100, 300, 784, 2, [tr, ge])
    assert held.bytes == bare.bytes + tr.nbytes + ge.nbytes and held.line().startswith("estimate: hold 400 images")
