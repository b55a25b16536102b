"""fscert.experiments: every experiment runs at its tiny size and its JSON holds the figure's
numbers (finite where they must be, consistent with each other); every PNG opens in PIL; the CLI
runs a quick experiment and refuses an existing output folder."""
from __future__ import annotations

import json
import math
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fscert.errors import FscertError
from fscert.experiments import EXPERIMENTS, run_experiment
from fscert.noise import flip_probability
from fscert_cli.common import FscertGroup
from fscert_cli.experiment import NAMES, experiment

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECORDED = ("experiment", "seed", "quick", "settings", "paper", "summary", "seconds")   # run time recorded, not judged


def strict_json(path: Path) -> dict:
    """The file as JSON, refusing NaN / Infinity (non-finite values must be written as null)."""
    def refuse(name: str):
        raise AssertionError(f"{path.name} holds {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Every experiment once at its tiny size: name → (folder, the JSON it wrote)."""
    root = tmp_path_factory.mktemp("experiments")
    runs = {}
    for name in EXPERIMENTS:
        out = root / name
        out.mkdir()
        returned = run_experiment(name, out, seed=0, tiny=True)
        assert returned["experiment"] == name
        runs[name] = (out, strict_json(out / f"{name}.json"))
    return runs


def finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def frac(v) -> bool:
    return finite(v) and 0 <= v <= 1


def check_memorization(m: dict, n: int) -> None:
    """UIR / M-UIR of Eq. 9–10: strict ⊆ greedy ⊆ passing, so the rates are ordered."""
    assert m["n"] == n and 0 <= m["copies"] <= n
    for g in ("25", "30"):
        assert 0 <= m[f"m_uir_strict_{g}"] <= m[f"m_uir_{g}"] <= m[f"uir_{g}"] <= 1
    assert m["uir_25"] <= m["uir_30"]                        # PSNR < 25 implies PSNR < 30
    assert m["uir_30"] <= 1 - m["copies"] / n                # an exact copy never passes


def test_names_match_library():
    assert NAMES == list(EXPERIMENTS)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_writes_json_and_png(tiny, name):
    out, res = tiny[name]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{name}.json", f"{name}.png"])
    assert all(k in res for k in RECORDED)
    assert res["experiment"] == name and res["tiny"] is True and res["quick"] is False and res["seed"] == 0
    assert res["settings"] and res["paper"] and res["summary"] and all(isinstance(s, str) for s in res["summary"])
    with Image.open(out / f"{name}.png") as im:
        assert im.format == "PNG" and im.width > 200 and im.height > 100
        pixels = np.asarray(im.convert("L"))
    assert pixels.min() < pixels.max()                       # something was drawn


def test_training_history_fig9(tiny):
    _, res = tiny["training"]
    s, hist = res["settings"], res["history"]
    assert [h["phase"] for h in hist] == [1] * s["epochs"] + [2] * s["finetune_epochs"]
    assert [h["epoch"] for h in hist if h["phase"] == 1] == list(range(1, s["epochs"] + 1))
    for part in ("final_phase1", "final"):
        f = res[part]
        assert finite(f["mse"]) and f["mse"] > 0 and finite(f["psnr"])
        assert frac(f["binary_rate"]) and frac(f["mean_abs_latent"])
    assert res["final"] == {k: hist[-1][k] for k in res["final"]}
    assert s["train_tau"] == 1.0 and s["train_kappa"] == 2.0   # the library's TrainConfig() noise


def test_trials_curve_fig15(tiny):
    _, res = tiny["trials"]
    rows, n_train = res["rows"], res["settings"]["n_images"]
    assert [r["trials"] for r in rows] == res["settings"]["trials"] == [1, 2, 3]
    assert res["settings"]["q"] == pytest.approx(flip_probability(1.1, 0.5))
    counts = [r["reachable"] for r in rows]
    assert all(a <= b for a, b in zip(counts, counts[1:]))       # E(T) ⊂ E(T+1)
    assert finite(res["recon_psnr_db"])
    for r in rows:
        assert r["listed"] == r["reachable"] >= 1
        assert 0 <= r["training_copies"] <= n_train
        assert r["new"] == r["listed"] - r["training_copies"]
        assert r["stitched"] + r["empirical_copies"] == r["listed"]
        assert 0 <= r["unique"] <= r["listed"] and 0 <= r["unique_vs_train_images"] <= r["listed"]
        assert 1 <= r["distinct_images"] <= r["listed"]


def test_coverage_fig18_19(tiny):
    _, res = tiny["coverage"]
    draws = res["settings"]["draws"]
    for a in res["full_support_3x3"]:
        assert a["n_latents"] == 512 and abs(a["prob_sum"] - 1) < 1e-9
        assert a["q"] == pytest.approx(flip_probability(a["tau"], a["kappa"]))
        p = a["prob_sorted"]
        assert len(p) == 512 and all(x >= y for x, y in zip(p, p[1:]))
        assert 0 < a["mass_of_source_crops"] <= 1 + 1e-12
        assert 1 <= a["distinct_source_crops"] <= res["settings"]["n_images"]
    cert = res["certificate_8x8"]
    assert cert["listed"] >= 1 and 0 <= cert["dead_end_mass"] < 1
    curves = [(512, a["coverage"]) for a in res["full_support_3x3"]] + [(cert["listed"], cert["coverage"])]
    for listed, cov in curves:
        assert [c["n_draws"] for c in cov] == draws
        fr, mass = [c["fraction"] for c in cov], [c["mass"] for c in cov]
        assert all(frac(v) for v in fr) and all(0 <= v <= 1 + 1e-12 for v in mass)
        assert all(a <= b for a, b in zip(fr, fr[1:])) and all(a <= b + 1e-12 for a, b in zip(mass, mass[1:]))
        for c in cov:
            assert c["distinct"] <= min(c["n_draws"], listed) and c["fraction"] == pytest.approx(c["distinct"] / listed)
            assert c["outside"] == 0                             # every draw is in the listing


def test_tau_diversity_fig11(tiny):
    _, res = tiny["tau"]
    rows, n_train = res["rows"], res["settings"]["n_images"]
    assert [r["tau"] for r in rows] == res["settings"]["taus"] and res["settings"]["qs"] == [r["q"] for r in rows]
    assert rows[0]["q"] == 0 and all(a < b for a, b in zip(res["settings"]["qs"], res["settings"]["qs"][1:]))
    assert rows[0]["empirical_rows"] == n_train                  # q = 0: each image's T draws are one latent
    for r in rows:
        assert r["empirical_rows"] >= n_train and r["reachable"] >= 1
        assert r["log10_reachable"] == pytest.approx(math.log10(r["reachable"]))
        assert 0 <= r["dead_end_mass"] < 1 and finite(r["recon_psnr_db"])
        assert 0 <= r["sample_copies_of_recon"] <= r["n_samples"] == res["settings"]["n_samples"]
        # the median is +inf (null in JSON) exactly when the upper middle sample is a copy
        n = r["n_samples"]
        assert (r["sample_median_psnr_to_recon"] is None) == (r["sample_copies_of_recon"] >= n - n // 2)


def test_rho_rates_fig3(tiny):
    _, res = tiny["rho"]
    n = res["settings"]["n_samples"]
    assert [r["rho"] for r in res["rows"]] == res["settings"]["rhos"] and finite(res["recon_psnr_db"])
    for r in res["rows"]:
        assert frac(r["latent_copies"])
        for ref in ("vs_train", "vs_recon"):
            check_memorization(r[ref], n)
        # a copied latent decodes to its reconstruction exactly (PSNR = ∞ against "recon")
        assert r["vs_recon"]["copies"] >= round(r["latent_copies"] * n)


def test_consistency_maps_fig10(tiny):
    _, res = tiny["consistency"]
    stats = res["stats"]
    assert list(stats) == ["plain_shared_centre", "plain_eq27_printed", "transition_shared_centre",
                           "transition_eq27_printed"]
    for k, v in stats.items():
        prof = np.array(v["row_profile"])
        assert prof.shape == (32,) and (prof >= 0).all()
        assert v["centre_rows_mean"] == pytest.approx(prof[12:16].mean(), rel=1e-6)
        assert v["other_rows_mean"] == pytest.approx(np.r_[prof[:12], prof[16:]].mean(), rel=1e-6)
        if v["other_rows_mean"] > 0:
            assert v["centre_over_other"] == pytest.approx(v["centre_rows_mean"] / v["other_rows_mean"], rel=1e-6)
        else:
            assert v["centre_over_other"] is None
        assert finite(v["recon_psnr_db"])
    bad = {k.split("_")[0] for k, v in stats.items() if v["recon_psnr_db"] < 12}
    assert set(res.get("degenerate_models", [])) == bad


def test_network_vs_direct_fig12(tiny):
    _, res = tiny["network"]
    rows, n = res["rows"], res["settings"]["n_samples"]
    assert [r["rho"] for r in rows] == [1, 7] and [r["full_context"] for r in rows] == [False, True]
    for r in rows:
        assert finite(r["net_final_loss"]) and r["net_final_loss"] > 0
        for sampler in ("network", "direct"):
            s = r[sampler]
            assert frac(s["latent_copies"]) and frac(s["near_copies_30"])
            assert s["near_copies_30"] >= s["latent_copies"]        # a latent copy decodes to PSNR = ∞
            check_memorization(s["vs_recon"], n)
            check_memorization(s["vs_train"], n)
            assert s["vs_recon"]["uir_30"] == pytest.approx(1 - s["near_copies_30"])


def test_compare_generators(tiny):
    _, res = tiny["compare"]
    rows, n = res["rows"], res["settings"]["n_samples"]
    assert list(rows) == ["fslar_direct_rho1", "full_context_ar", "nfig", "nfig_var_order"] and res["nfig"] == "trained"
    assert res["settings"]["nfig"]["model"]["depth"] == 1          # the tiny NFIG is recorded
    assert rows["fslar_direct_rho1"]["recon_psnr_db"] == rows["full_context_ar"]["recon_psnr_db"]   # same autoencoder
    for v in rows.values():
        check_memorization(v, n)
        assert finite(v["recon_psnr_db"]) and finite(v["train_seconds"]) and finite(v["sample_seconds"])


# ----------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def cli() -> click.Group:
    g = FscertGroup("fscert")
    g.add_command(experiment)
    return g


def test_cli_quick_run(cli, tmp_path):
    """`fscert experiment consistency --quick` (its models may not train: a ratio is then "n/a")."""
    out = tmp_path / "c"
    r = CliRunner().invoke(cli, ["experiment", "consistency", "--out", str(out), "--quick"])
    assert r.exit_code == 0, r.output
    res = strict_json(out / "consistency.json")
    assert res["quick"] is True and "tiny" not in res and res["settings"]["pairs"] == 8
    assert "consistency" in r.output and all(line in r.output for line in res["summary"])
    for line, v in zip(res["summary"], res["stats"].values()):
        assert ("ratio n/a" in line) == (v["centre_over_other"] is None)
    with Image.open(out / "consistency.png") as im:
        assert im.format == "PNG"


def test_existing_output_needs_force(cli, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    r = CliRunner().invoke(cli, ["experiment", "training", "--out", str(out), "--quick"])
    assert r.exit_code != 0 and "already exists" in r.output
    r = CliRunner().invoke(cli, ["experiment", "nope", "--out", str(out)])
    assert r.exit_code != 0


def test_run_experiment_refuses_unknown_name_and_missing_folder(tmp_path):
    with pytest.raises(FscertError, match="unknown experiment"):
        run_experiment("nope", tmp_path)
    with pytest.raises(FscertError, match="does not exist"):
        run_experiment("training", tmp_path / "missing", tiny=True)
