"""`fscert.audit.audit` and the `fscert audit` command."""
from __future__ import annotations

import csv
import json
import math

import click
import numpy as np
import pytest
from click.testing import CliRunner

from fscert.audit import audit, check_gammas, gamma_key, report_json
from fscert.errors import FscertError
from fscert.metrics import m_uir_masks, nearest_train, passing_mask
from fscert_cli.audit import audit as audit_cmd
from fscert_cli.common import FscertGroup


@pytest.fixture
def sets():
    rng = np.random.default_rng(0)
    train = rng.random((60, 1, 8, 8)).astype(np.float32)
    gen = rng.random((30, 1, 8, 8)).astype(np.float32)
    gen[:10] = train[:10]                      # exact copies
    gen[10:15] = np.clip(train[20:25] + 0.02 * rng.standard_normal((5, 1, 8, 8)), 0, 1)  # ~34 dB
    gen[15:18] = gen[25:28]                    # duplicates among fresh images
    return train, gen


def test_audit_report(sets):
    train, gen = sets
    res = audit(train, gen, [30, 25.5], config=None)
    assert res["n_train"] == 60 and res["n_generated"] == 30
    assert set(res["uir"]) == {"25.5", "30"}
    _, psnr = nearest_train(gen, train)
    for g in (25.5, 30.0):
        k = gamma_key(g)
        pas = passing_mask(psnr, g)
        greedy, strict = m_uir_masks(gen, pas, g)
        assert res["uir"][k] == pas.mean()
        assert res["m_uir"][k] == greedy.mean() and res["m_uir_strict"][k] == strict.mean()
        assert np.array_equal(res["per_image"][f"m_uir_{k}"], greedy)
    assert res["uir"]["30"] == pytest.approx(15 / 30)
    assert res["m_uir"]["30"] == pytest.approx(12 / 30) and res["m_uir_strict"]["30"] == pytest.approx(9 / 30)
    assert res["psnr"]["n_identical"] == 10
    assert 0 <= res["authpct"] <= 100
    assert res["ct_test"]["test_source"] == "holdout" and "z" in res["ct_test"]
    assert res["nn_ratio"]["n_below"] >= 10
    js = report_json(res)
    json.dumps(js, allow_nan=False)
    assert "per_image" not in js and js["params"]["sha256"]["train"]


def test_audit_feature_space(sets):
    train, gen = sets
    ft, fg = train.reshape(60, -1)[:, :16] * 2, gen.reshape(30, -1)[:, :16] * 2
    res = audit(train, gen, [25], features=(ft, fg))
    assert res["params"]["space"] == "features" and res["params"]["dim"] == 16
    with pytest.raises(FscertError, match="rows"):
        audit(train, gen, [25], features=(ft[:5], fg))
    with pytest.raises(FscertError, match="length"):
        audit(train, gen, [25], features=(ft, fg[:, :3]))


def test_audit_refuses_bad_input(sets):
    train, gen = sets
    for bad in ([0], [-1], [float("nan")], ["x"], []):
        with pytest.raises(FscertError):
            audit(train, gen, bad)
    with pytest.raises(FscertError, match="native size"):
        audit(train, np.zeros((3, 1, 6, 6), np.float32), [25])
    with pytest.raises(FscertError, match="native size"):
        audit(train, gen, [25], test_NCHW=np.zeros((3, 3, 8, 8), np.float32))


def test_gamma_keys():
    assert [gamma_key(g) for g in (25, 25.0, 27.5, 1e-3)] == ["25", "25", "27.5", "0.001"]
    assert check_gammas([30, 25, 25.0]) == [25.0, 30.0]


# ---------------------------------------------------------------- CLI
@pytest.fixture
def cli():
    @click.group(cls=FscertGroup)
    @click.pass_context
    def group(ctx):
        ctx.ensure_object(dict)

    group.add_command(audit_cmd)
    return group


@pytest.fixture
def files(tmp_path, sets):
    train, gen = sets
    paths = {}
    for name, x in (("train", train), ("gen", gen), ("test", train[::-1][:30])):
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], np.round(x[:, 0] * 255).astype(np.uint8))  # N×H×W uint8
    paths["small"] = tmp_path / "small.npy"
    np.save(paths["small"], np.zeros((4, 6, 6), np.uint8))
    return paths


def run(cli, *args):
    return CliRunner().invoke(cli, ["audit", *map(str, args)])


def test_cli_writes_json_and_csv(cli, files, tmp_path):
    out, per = tmp_path / "out.json", tmp_path / "per.csv"
    r = run(cli, "--train", files["train"], "--generated", files["gen"], "--gamma", 25, "--gamma", 30,
            "--json", out, "--csv", per)
    assert r.exit_code == 0, r.output
    assert "UIR" in r.output and "M-UIR" in r.output
    rep = json.loads(out.read_text())
    for key in ("n_train", "n_generated", "uir", "m_uir", "m_uir_strict", "authpct", "ct_test", "nn_ratio", "params"):
        assert key in rep
    assert set(rep["uir"]) == {"25", "30"} and rep["n_generated"] == 30
    assert rep["params"]["data"]["train"] == str(files["train"])
    assert rep["params"]["sha256"]["generated"] and rep["params"]["fscert_version"]
    rows = list(csv.DictReader(per.open()))
    assert len(rows) == 30 and rows[0]["psnr"] == "inf" and rows[0]["pass_25"] == "0"
    assert {"index", "nearest_train", "m_uir_30", "m_uir_strict_25"} <= set(rows[0])
    assert sum(int(r["pass_30"]) for r in rows) / 30 == rep["uir"]["30"]
    assert all(int(r["near_copy_30"]) == 1 - int(r["pass_30"]) for r in rows)
    assert not list(tmp_path.glob(".*tmp"))


def test_cli_refuses_overwrite_without_force(cli, files, tmp_path):
    out = tmp_path / "out.json"
    out.write_text("keep")
    r = run(cli, "--train", files["train"], "--generated", files["gen"], "--json", out)
    assert r.exit_code == 1 and "already exists" in r.output and out.read_text() == "keep"
    r = run(cli, "--train", files["train"], "--generated", files["gen"], "--json", out, "--force")
    assert r.exit_code == 0 and json.loads(out.read_text())["uir"].keys() == {"25", "30"}


@pytest.mark.parametrize("gamma", ["0", "-3", "abc", "nan", "inf"])
def test_cli_refuses_bad_gamma(cli, files, gamma):
    r = run(cli, "--train", files["train"], "--generated", files["gen"], "--gamma", gamma)
    assert r.exit_code == 2 and "gamma" in r.output.lower()


def test_cli_refuses_different_sizes(cli, files):
    r = run(cli, "--train", files["train"], "--generated", files["small"])
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "1×8×8" in lines[0]


def test_cli_test_set_limit_and_features(cli, files, tmp_path):
    ft, fg = tmp_path / "ft.npy", tmp_path / "fg.npy"
    rng = np.random.default_rng(1)
    np.save(ft, rng.random((60, 5)))
    np.save(fg, rng.random((30, 5)))
    out = tmp_path / "o.json"
    r = run(cli, "--train", files["train"], "--generated", files["gen"], "--test", files["test"],
            "--limit", 20, "--json", out, "--train-features", ft, "--generated-features", fg)
    assert r.exit_code == 1 and "test features" in r.output
    r = run(cli, "--train", files["train"], "--generated", files["gen"], "--test", files["test"],
            "--limit", 20, "--json", out, "--ct-cells", 1)
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert rep["n_train"] == 20 and rep["ct_test"]["test_source"] == "test" and rep["ct_test"]["cells"] == 1
    r = run(cli, "--train", files["train"], "--generated", files["gen"], "--json", out, "--force",
            "--train-features", ft, "--generated-features", fg)
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["params"]["space"] == "features"
    r = run(cli, "--train", files["train"], "--generated", files["gen"], "--train-features", ft)
    assert r.exit_code == 1 and "both" in r.output
    r = run(cli, "--train", files["train"], "--generated", tmp_path / "missing.npy")
    assert r.exit_code == 1 and "not found" in r.output


# ---------------------------------------------------------------- brute-force references (issue 12)
def _bf_psnr(a, b):
    """Full PSNR matrix (peak 1) in float64 by explicit differences: the independent reference."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    mse = ((a[:, None, :] - b[None, :, :]) ** 2).mean(-1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(1 / mse)


def _bf_set(x, train, g):
    """Nearest training index and PSNR, UIR count, greedy and strict M-UIR counts, authentic count."""
    p = _bf_psnr(x, train)
    near = p.argmax(1)                      # highest PSNR = smallest distance; ties → lowest index
    psnr = p[np.arange(len(x)), near]
    passing = [i for i in range(len(x)) if psnr[i] < g]
    pp = _bf_psnr(x, x)
    kept = []
    for i in passing:
        if all(pp[i, j] < g for j in kept):
            kept.append(i)
    strict = [i for i in passing if all(pp[i, j] < g for j in passing if j != i)]
    d = lambda a, b: np.sqrt(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2).sum())
    auth = 0
    for i in range(len(x)):
        t = near[i]
        own = min(d(train[t], train[u]) for u in range(len(train)) if u != t)
        auth += d(x[i], train[t]) > own
    return near, psnr, len(passing), len(kept), len(strict), auth


@pytest.fixture
def with_test(sets):
    train, gen = sets
    rng = np.random.default_rng(5)
    test = rng.random((24, 1, 8, 8)).astype(np.float32)
    test[:3] = np.clip(train[40:43] + 0.01 * rng.standard_normal((3, 1, 8, 8)), 0, 1)   # ~40 dB
    return train, gen, test


def test_baseline_matches_brute_force(with_test):
    train, gen, test = with_test
    res = audit(train, gen, [25, 30], test_NCHW=test)
    base = res["baseline"]
    assert base["status"] == "computed" and base["n"] == 24
    for x, block, per in ((gen, res, res["per_image"]), (test, base, res["held_out_per_image"])):
        for g in (25, 30):
            k = gamma_key(g)
            near, psnr, n_pass, n_kept, n_strict, n_auth = _bf_set(x, train, g)
            assert np.array_equal(per["nearest_train"], near)
            np.testing.assert_allclose(per["psnr"], psnr, rtol=1e-9)
            c = block["counts"][k]
            assert (c["n"], c["unique"], c["near_copies"]) == (len(x), n_pass, len(x) - n_pass)
            assert (c["m_uir"], c["m_uir_strict"]) == (n_kept, n_strict)
            assert block["uir"][k] == n_pass / len(x) and block["m_uir"][k] == n_kept / len(x)
            assert block["authpct"] == pytest.approx(100 * n_auth / len(x))
            qs = block["psnr"]["quantiles"]
            srt = np.sort(per["psnr"])
            for q in (5, 25, 50, 75, 95):       # a sample value: the ceil(q·n/100)-th smallest
                assert qs[str(q)] == srt[max(0, math.ceil(q * len(x) / 100) - 1)]
    assert res["counts"]["30"]["near_copies"] == 15 and base["counts"]["30"]["near_copies"] == 3
    assert res["ct_test"]["test_source"] == "test" and res["ct_test"]["n_test"] == 24


def test_histogram_counts_every_image_once(with_test):
    train, gen, test = with_test
    res = audit(train, gen, [25], test_NCHW=test)
    h = res["psnr_histogram"]
    edges = np.asarray(h["edges_db"])
    for key, per in (("generated", res["per_image"]), ("held_out", res["held_out_per_image"])):
        p = per["psnr"]
        fin = p[np.isfinite(p)]
        ref = [int(((fin >= lo) & (fin < hi)).sum()) for lo, hi in zip(edges[:-1], edges[1:])]
        assert h[key] == ref and sum(ref) == fin.size
        assert h["identical"][key] == int(np.isinf(p).sum())
    assert edges[0] <= min(np.min(res["per_image"]["psnr"]), np.min(res["held_out_per_image"]["psnr"]))


def test_without_test_set_the_baseline_is_unknown_never_zero(sets):
    train, gen = sets
    res = audit(train, gen, [25, 30])
    assert res["baseline"]["status"] == "unknown" and "--test" in res["baseline"]["reason"]
    assert set(res["baseline"]) == {"status", "reason"}
    js = report_json(res, per_image=True)
    assert js["held_out_images"] is None
    for row in js["verdict"]["per_gamma"]:
        assert row["held_out"] == "unknown"
        assert "held-out real images: unknown" in row["sentence"] and "0 of" not in row["sentence"].split(";")[1]
    assert js["peers"]["AuthPct"]["held_out"] is None and "unknown" in js["peers"]["AuthPct"]["words"]
    assert "unknown" in [t["term"] for t in js["glossary"]]
    assert js["psnr_histogram"]["held_out"] is None


def test_json_opens_with_verdict_peers_and_glossary(with_test):
    train, gen, test = with_test
    js = report_json(audit(train, gen, [25, 30], test_NCHW=test), per_image=True)
    assert list(js)[:3] == ["verdict", "peers", "glossary"]
    s = js["verdict"]["sentences"][1]
    assert s.startswith("γ = 30 dB: generated images: 15 of 30 (50 %) are near-copies")
    assert "held-out real images: 3 of 24 (12.5 %)" in s and "more often than" in s
    assert js["verdict"]["per_gamma"][1]["held_out"] == {"near_copies": 3, "n": 24, "rate": 0.125}
    assert {t["term"] for t in js["glossary"]} >= {"PSNR", "γ", "near-copy", "UIR", "M-UIR", "baseline", "AuthPct",
                                                  "C_T", "NN ratio"}
    assert all(t["meaning"] for t in js["glossary"])
    assert set(js["peers"]) == {"AuthPct", "C_T", "NN ratio"} and all(p["words"] for p in js["peers"].values())
    json.dumps(js, allow_nan=False)


@pytest.mark.parametrize("z,words", [(-2.67, "closer to the training set than held-out real images: data copying (z < −2)"),
                                     (3.1, "under-fitting (z > 2)"), (0.4, "no sign of data copying"),
                                     (None, "unknown")])
def test_ct_interpretation(z, words):
    from fscert.audit_verdict import _ct_words

    ct = {"z": z, "test_source": "test"}
    assert words in _ct_words(ct)
    assert "weaker test" in _ct_words({**ct, "test_source": "holdout"}) or z is None


def test_percent_in_words_is_never_rounded_to_none_or_all():
    from fscert.audit_verdict import pct

    for n in range(1, 400, 7):
        for k in range(0, n + 1):
            text = pct(k, n)
            if 0 < k < n:
                assert text not in ("0 %", "100 %", "0.0 %", "100.0 %"), (k, n, text)
            else:
                assert text == ("0 %" if k == 0 else "100 %")
    assert pct(1, 100000) == "< 0.1 %" and pct(99999, 100000) == "> 99.9 %" and pct(1, 3) == "33.3 %"
    assert pct(0, 0) == "unknown"


def test_names_trace_every_image(sets):
    from fscert.audit import ImageSet
    from fscert.audit_tables import copied_training_images, image_rows

    train, gen = sets
    tnames = [f"train/t{i}.png" for i in range(len(train))]
    gnames = [f"im{i}.png" for i in range(len(gen))]
    res = audit(ImageSet(train, tnames, "train/", "natural sort of file paths"),
                ImageSet(gen, gnames, "gen/", "natural sort of file paths"), [25, 30])
    assert res["sets"]["generated"] == {"source": "gen/", "n": 30, "order": "natural sort of file paths", "skipped": {}}
    rows = image_rows(res)
    for i, r in enumerate(rows):
        assert r["name"] == gnames[i] and r["nearest_train_name"] == tnames[r["nearest_train"]]
    # grouping by training image against a brute-force regrouping of the rows
    groups = copied_training_images(res)
    ref: dict = {}
    for r in rows:
        if r["psnr"] >= 25:
            ref.setdefault(r["nearest_train"], []).append(r["name"])
    assert {g["train"]: sorted(g["generated"]) for g in groups} == {t: sorted(v) for t, v in ref.items()}
    assert all(g["train_name"] == tnames[g["train"]] for g in groups)
    counts = [g["near_copies"]["25"] for g in groups]
    assert counts == sorted(counts, reverse=True) and groups[0]["held_out_near_copies"] is None
    with pytest.raises(FscertError, match="names"):
        audit(ImageSet(train, tnames[:3]), gen, [25])


def test_cli_json_to_stdout_quiet_and_limits(cli, files, tmp_path):
    r = CliRunner().invoke(cli, ["audit", "--train", str(files["train"]), "--generated", str(files["gen"]),
                                 "--test", str(files["test"]), "--limit", "40", "--test-limit", "10", "--json", "-"])
    assert r.exit_code == 0, r.output
    js = json.loads(r.stdout)                                   # stdout holds the JSON and nothing else
    assert js["n_train"] == 40 and js["n_generated"] == 30 and js["baseline"]["n"] == 10
    assert js["params"]["limit"] == 40 and js["params"]["test_limit"] == 10
    assert len(js["images"]) == 30 and len(js["held_out_images"]) == 10
    assert js["images"][0]["name"] == "#0" and js["images"][0]["nearest_train_name"] == "#0"
    assert js["sets"]["generated"]["order"] and "verdict:" in r.stderr and "held-out real images:" in r.stderr
    r = CliRunner().invoke(cli, ["audit", "--train", str(files["train"]), "--generated", str(files["gen"]),
                                 "--generated-limit", "7", "--json", "-", "--quiet"])
    assert r.exit_code == 0 and r.stderr == "" and json.loads(r.stdout)["n_generated"] == 7
    r = CliRunner().invoke(cli, ["audit", "--train", str(files["train"]), "--generated", str(files["gen"])])
    assert "baseline: unknown" in r.stdout and "held-out: unknown" in r.stdout and "terms:" in r.stdout


def test_cli_generated_split_and_folder_order(cli, files, tmp_path):
    from PIL import Image

    train = np.load(files["train"])
    npz = tmp_path / "gen.npz"
    np.savez(npz, train_images=train[:5], test_images=train[10:14])
    r = run(cli, "--train", files["train"], "--generated", npz)
    assert r.exit_code == 1 and "--generated-split" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    out = tmp_path / "s.json"
    r = run(cli, "--train", files["train"], "--generated", npz, "--generated-split", "test", "--json", out)
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["n_generated"] == 4
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in (10, 2, 1):
        Image.fromarray(train[i]).save(folder / f"im{i}.png")
    per = tmp_path / "p.csv"
    r = run(cli, "--train", files["train"], "--generated", folder, "--csv", per, "--json", out, "--force")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(per.open()))
    assert [x["name"] for x in rows] == ["im1.png", "im2.png", "im10.png"]          # natural sort, not text order
    assert [x["nearest_train"] for x in rows] == ["1", "2", "10"] and rows[2]["nearest_train_name"] == "#10"
    assert "natural" in json.loads(out.read_text())["sets"]["generated"]["order"]
    assert "natural sort" in r.stdout


def test_cli_html_report_and_output_clashes(cli, files, tmp_path):
    html = tmp_path / "rep"
    r = run(cli, "--train", files["train"], "--generated", files["gen"], "--test", files["test"], "--html", html,
            "--ct-cells", "1")
    assert r.exit_code == 0, r.output
    assert {"index.html", "data.js", "audit.js", "report.css", "audit.css", "summary.json", "images.csv",
            "heldout.csv", "groups.csv"} <= {p.name for p in html.iterdir()}
    r = run(cli, "--train", files["train"], "--generated", files["gen"], "--html", html)
    assert r.exit_code == 1 and "already exists" in r.stderr
    r = run(cli, "--train", files["train"], "--generated", files["gen"], "--json", tmp_path / "x", "--csv", tmp_path / "x")
    assert r.exit_code == 1 and "different" in r.stderr
    r = run(cli, "--train", files["train"], "--generated", files["gen"], "--test-limit", "3")
    assert r.exit_code == 1 and "--test" in r.stderr
