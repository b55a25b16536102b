"""Unit tests of the static HTML report (fscert/report.py, cli/report.py); no browser."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import click
import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fscert.certificate import Certificate, read_certificate, write_certificate
from fscert.errors import FscertError
from fscert.report import build_report, latent_tiles
from fscert_cli.common import FscertGroup
from fscert_cli.report import COMMANDS

GAMMAS = [20.0, 30.0]
MALICIOUS = "<script>alert(1)</script>"


def make_certificate(k: int = 60, *, n_train: int = 40, channels: int = 1, size: int = 32,
                     model: bool = True, gammas: list[float] = GAMMAS, seed: int = 0,
                     reachable: int | None = None, attrs: dict | None = None) -> tuple[Certificate, np.ndarray]:
    """A synthetic but correctly shaped certificate and its training images (float32 in [0, 1]).

    Random ±1 latents (M=2, H=W=4), probabilities summing to 1, random uint8 images, PSNR in
    10..40 dB with one +inf (an exact copy), flags computed from the PSNR, M-UIR = not flagged.
    """
    rng = np.random.default_rng(seed)
    latents = rng.choice(np.array([-1, 1], np.int8), size=(k, 2, 4, 4))
    prob = rng.random(k) + 0.01
    prob /= prob.sum()
    train = rng.random((n_train, channels, size, size), dtype=np.float32)
    a = {"mode": "empirical", "reachable_count": str(reachable if reachable is not None else k),
         "listed_count": k, "count_only": k == 0, "dead_end_mass": 0.125, "rho": 0.5, "tau": 2.0,
         "kappa": 4.0, "anchoring": "none", "latents_sha256": "a" * 64, "model_sha256": "",
         "train_sha256": "", "config": json.dumps({"seed": 7})}
    cert = Certificate(latents=latents, prob=prob, attrs=a)
    if model:
        psnr = rng.uniform(10.0, 40.0, k)
        if k:
            psnr[0] = np.inf
        flags = psnr[:, None] >= np.asarray(gammas)[None, :]
        cert.images = rng.integers(0, 256, (k, channels, size, size), dtype=np.uint8)
        cert.nearest_train = rng.integers(0, n_train, k).astype(np.int64)
        cert.psnr = psnr
        cert.flags = flags
        cert.m_uir = ~flags
        a["gammas"] = np.asarray(gammas, np.float64)
        a["uir"] = json.dumps({f"{g:g}": float(1 - flags[:, j].mean()) if k else 1.0 for j, g in enumerate(gammas)})
        a["m_uir"] = json.dumps({f"{g:g}": float(cert.m_uir[:, j].mean()) if k else 1.0 for j, g in enumerate(gammas)})
        a["memorization_mass"] = json.dumps({f"{g:g}": float(prob[flags[:, j]].sum()) for j, g in enumerate(gammas)})
        a["model_sha256"] = "b" * 64
    if attrs:
        a.update(attrs)
    return cert, train


def add_fidelity(cert: Certificate, recon: np.ndarray | None = None, *, median: float | None = None,
                 recon_counts: dict | None = None, geometry: str | None = "images are compared at their stored size "
                                                                           "32×32", trials: int | None = 10) -> Certificate:
    """Give a hand-built certificate the records fscert.fidelity and fscert.geometry write: per
    training image the reconstruction PSNR (``recon``), the ``fidelity`` attribute (its median, or
    ``median`` when given, decides each γ), the reconstructions' near-copy maps and, for a listed
    certificate, ``recon_flags``; the drawn set's N·T (``trials``)."""
    gammas = cert.gammas
    keys = [f"{g:g}" for g in gammas]
    if recon is not None:
        cert.extra["recon_psnr"] = np.asarray(recon, np.float64)
        p = np.sort(cert.extra["recon_psnr"])
        med = float(np.percentile(p, 50, method="nearest")) if median is None else median
        cert.attrs["fidelity"] = json.dumps({
            "status": "computed", "reason": None, "n": len(p), "psnr_mean": float(p.mean()), "psnr_median": med,
            "psnr_min": float(p[0]), "psnr_max": float(p[-1]),
            "psnr_quantiles": {q: float(np.percentile(p, int(q), method="nearest")) for q in ("5", "25", "75", "95")},
            "reach": {k: float((p >= g).mean()) for k, g in zip(keys, gammas)},
            "decidable": {k: bool(med >= g) for k, g in zip(keys, gammas)}, "rule": "median ≥ γ"})
    if recon_counts is not None:
        cert.attrs["recon_near_copies"] = json.dumps({k: recon_counts.get(k) for k in keys})
        cert.attrs["recon_memorization_mass"] = json.dumps({k: (None if recon_counts.get(k) is None else 0.25)
                                                            for k in keys})
    if cert.flags is not None and len(cert.prob) and recon_counts is not None:
        rf = np.zeros((len(cert.prob), len(gammas)), bool)
        for j, k in enumerate(keys):
            rf[:recon_counts.get(k) or 0, j] = True
        cert.extra["recon_flags"] = rf
    if geometry:
        cert.attrs["geometry"] = json.dumps({"compared_hw": [32, 32], "canvas_hw": [32, 32], "offset": [0, 0],
                                             "how": "native", "words": geometry})
    if trials:
        cert.attrs.update(trials=trials, empirical_total=40 * trials, empirical_rows=40 * trials - 3)
    return cert


def written(tmp_path: Path, cert: Certificate, name: str = "cert.h5") -> Certificate:
    """Round-trip through the file format, as the CLI sees it."""
    path = tmp_path / name
    write_certificate(path, cert)
    return read_certificate(path)


def read_data_js(folder: Path) -> dict:
    text = (folder / "data.js").read_text(encoding="utf-8")
    body = text[text.index("=") + 1:].strip().rstrip(";")
    return json.loads(body)


def sprite_tile(folder: Path, info: dict, slot: int) -> np.ndarray:
    """Cut tile ``slot`` out of a sprite sheet with the layout report.js uses."""
    sheet, k = divmod(slot, info["perSheet"])
    row, col = divmod(k, info["cols"])
    img = np.asarray(Image.open(folder / info["sheets"][sheet]))
    h, w = info["tileH"], info["tileW"]
    return img[row * h:(row + 1) * h, col * w:(col + 1) * w]


def leftovers(parent: Path, name: str) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]


# ---------------------------------------------------------------------------------------------


def test_full_report_contents(tmp_path):
    cert, train = make_certificate(k=1234)       # complete: figures shown (partial: tests/test_no_false_clear.py)
    cert = written(tmp_path, cert)
    out = tmp_path / "rep"
    index = build_report(cert, out, train_images=train)
    assert index == out / "index.html"
    names = {p.name for p in out.iterdir()}
    assert {"index.html", "summary.json", "images.csv", "data.js", "report.css", "report.js", "sprites"} <= names
    assert sorted(p.name for p in (out / "sprites").iterdir()) == ["gen-0000.png", "gen-0001.png", "train-0000.png"]

    rows = list(csv.reader((out / "images.csv").open(encoding="utf-8")))
    assert rows[0] == ["index", "probability", "nearest_train", "psnr", "near_copy_20", "near_copy_30",
                       "m_uir_20", "m_uir_30"]
    assert len(rows) - 1 == len(cert.prob)
    for i in (0, 1, 777, 1233):
        r = rows[i + 1]
        assert int(r[0]) == i
        assert float(r[1]) == cert.prob[i]  # full precision
        assert int(r[2]) == cert.nearest_train[i]
        assert float(r[3]) == cert.psnr[i]
        assert [bool(int(v)) for v in r[4:6]] == cert.flags[i].tolist()
        assert [bool(int(v)) for v in r[6:8]] == cert.m_uir[i].tolist()

    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["reachable_count"] == "1234" and s["verdict_scope"] == "complete"
    assert s["listed_count"] == 1234
    assert s["dead_end_mass"] == 0.125
    assert s["gammas"] == GAMMAS
    assert s["computed"] == []
    assert s["config"] == {"mode": "empirical", "rho": 0.5, "tau": 2.0, "kappa": 4.0, "anchoring": "none"}
    assert s["hashes"]["content_sha256"] == cert.attrs["content_sha256"]
    uir, muir, mass = (json.loads(cert.attrs[key]) for key in ("uir", "m_uir", "memorization_mass"))
    for j, row in enumerate(s["per_gamma"]):
        key = f"{GAMMAS[j]:g}"
        assert row["gamma"] == GAMMAS[j]
        assert row["near_copies"] == int(cert.flags[:, j].sum())
        assert row["uir"] == uir[key] and row["m_uir"] == muir[key] and row["memorization_mass"] == mass[key]

    data = read_data_js(out)
    assert data["n"] == 1234 and data["prob"] == cert.prob.tolist()
    assert data["psnr"][0] == "Infinity" and data["psnr"][1] == cert.psnr[1]
    assert data["flags"][1] == cert.flags[:, 1].astype(int).tolist()
    # the sprite layout report.js uses shows image i and the training image nearest to it
    for i in (0, 999, 1000, 1233):
        assert np.array_equal(sprite_tile(out, data["gen"], i), cert.images[i, 0])
        want = np.rint(train[cert.nearest_train[i], 0] * 255).astype(np.uint8)
        assert np.array_equal(sprite_tile(out, data["train"], data["trainSlot"][i]), want)

    html = index.read_text(encoding="utf-8")
    assert 'id="hdr-reachable">1234<' in html
    assert 'id="hdr-listed">1234<' in html
    assert f'id="hdr-copies-1">{int(cert.flags[:, 1].sum())}<' in html
    assert "http://" not in html and "https://" not in html and "//" not in html.replace("file://", "")
    assert "Content-Security-Policy" in html
    assert '<script src="data.js"></script>' in html
    assert not leftovers(tmp_path, "rep")


def test_rgb_images_and_summary_computed_without_metric_attrs(tmp_path):
    cert, train = make_certificate(k=30, channels=3)
    for key in ("uir", "m_uir", "memorization_mass"):
        del cert.attrs[key]
    out = tmp_path / "rep"
    build_report(cert, out, train_images=train)
    data = read_data_js(out)
    assert np.array_equal(sprite_tile(out, data["gen"], 7), cert.images[7].transpose(1, 2, 0))
    s = json.loads((out / "summary.json").read_text())
    assert s["computed"] == ["m_uir", "memorization_mass", "uir"]
    assert math.isclose(s["per_gamma"][0]["memorization_mass"], cert.prob[cert.flags[:, 0]].sum())
    assert math.isclose(s["per_gamma"][1]["uir"], 1 - cert.flags[:, 1].mean())


def test_malicious_strings_are_escaped(tmp_path):
    cert, train = make_certificate(k=5, attrs={"mode": MALICIOUS, "anchoring": '"><img src=x onerror=alert(1)>',
                                               "config": json.dumps({MALICIOUS: "</script><b>x</b>"})})
    src = tmp_path / "<script>alert(1)<\\script>"
    src.mkdir()
    path = src / "c.h5"
    write_certificate(path, cert)
    out = tmp_path / "rep"
    build_report(path, out, train_images=train, title=MALICIOUS)
    html = (out / "index.html").read_text(encoding="utf-8")
    assert MALICIOUS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "</script><b>" not in html
    assert html.count("<script") == 2  # only data.js and report.js
    js = (out / "data.js").read_text(encoding="utf-8")
    assert "<" not in js and ">" not in js
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["title"] == MALICIOUS and s["source"] == str(path)  # stored as data, escaped only where shown


def test_existing_folder_refused_then_replaced_with_force(tmp_path):
    cert, train = make_certificate(k=10)
    out = tmp_path / "rep"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FscertError, match="already exists"):
        build_report(cert, out, train_images=train)
    assert (out / "keep.txt").read_text() == "mine"
    build_report(cert, out, train_images=train, force=True)
    assert not (out / "keep.txt").exists() and (out / "index.html").exists()
    assert not leftovers(tmp_path, "rep")


def test_latents_only_certificate(tmp_path):
    cert, train = make_certificate(k=25, model=False)
    cert = written(tmp_path, cert)
    out = tmp_path / "rep"
    build_report(cert, out, train_images=train)
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "no decoded images" in html and "note-latents" in html
    assert "training images were given" in html.lower()
    data = read_data_js(out)
    assert data["gen"]["source"] == "latents" and data["train"] is None and data["psnr"] is None
    tiles = latent_tiles(cert.latents)
    assert tiles.shape == (25, 4, 9)  # 2 channels of 4×4 side by side, a 1-pixel line between
    assert np.array_equal(sprite_tile(out, data["gen"], 3), tiles[3])
    assert set(np.unique(tiles[:, :, :4])) <= {0, 255}
    s = json.loads((out / "summary.json").read_text())
    assert s["has_images"] is False and s["per_gamma"] == [] and s["tile_source"] == "latents"
    rows = list(csv.reader((out / "images.csv").open()))
    assert len(rows) == 26 and rows[1][2:] == ["", ""]


def test_count_only_certificate(tmp_path):
    cert, _ = make_certificate(k=0, model=False, reachable=123456789012345678901234567890)
    cert = written(tmp_path, cert)
    out = tmp_path / "rep"
    build_report(cert, out)
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "Nothing was listed" in html and "123456789012345678901234567890" in html
    assert 'id="grid"' not in html
    s = json.loads((out / "summary.json").read_text())
    assert s["listed_count"] == 0 and s["count_only"] is True and s["reachable_count"] == "123456789012345678901234567890"
    assert list(csv.reader((out / "images.csv").open())) == [["index", "probability", "nearest_train", "psnr"]]
    assert list((out / "sprites").iterdir()) == []


def test_training_images_not_provided(tmp_path):
    cert, _ = make_certificate(k=8)
    out = tmp_path / "rep"
    build_report(cert, out)
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "training images were not provided" in html
    data = read_data_js(out)
    assert data["train"] is None and data["nearest"] == cert.nearest_train.tolist()


@pytest.mark.parametrize("content", ["h5", "text"])
def test_not_a_certificate(tmp_path, content):
    path = tmp_path / "x.h5"
    if content == "h5":
        with h5py.File(path, "w") as f:
            f["latents"] = np.zeros((2, 1, 2, 2), np.int8)
    else:
        path.write_text("not hdf5 at all\n")
    with pytest.raises(FscertError):
        build_report(path, tmp_path / "rep")
    assert not (tmp_path / "rep").exists() and not leftovers(tmp_path, "rep")


def test_mismatched_training_set(tmp_path):
    cert, train = make_certificate(k=20, n_train=40)
    out = tmp_path / "rep"
    with pytest.raises(FscertError, match="training image .* has 5 images"):
        build_report(cert, out, train_images=train[:5])
    with pytest.raises(FscertError, match="3×32×32 .* 1×32×32"):
        build_report(cert, out, train_images=np.repeat(train, 3, axis=1))
    assert not out.exists() and not leftovers(tmp_path, "rep")


def test_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    import fscert.report as report

    cert, train = make_certificate(k=10)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "write_csv", boom)
    with pytest.raises(RuntimeError):
        build_report(cert, tmp_path / "rep", train_images=train)
    assert not (tmp_path / "rep").exists() and not leftovers(tmp_path, "rep")


# ---------------------------------------------------------------------------------------------
# CLI


def cli() -> click.Group:
    """A throwaway group (cli/main.py registers the real one) with the same error handling."""
    @click.group(cls=FscertGroup)
    def group() -> None:
        """Throwaway test group."""

    for cmd in COMMANDS:
        group.add_command(cmd)
    return group


def test_cli_report(tmp_path):
    cert, train = make_certificate(k=12)
    write_certificate(tmp_path / "c.h5", cert)
    np.save(tmp_path / "train.npy", train)
    out = tmp_path / "rep"
    args = ["report", str(tmp_path / "c.h5"), "--html", str(out), "--train", str(tmp_path / "train.npy"),
            "--title", MALICIOUS]
    r = CliRunner().invoke(cli(), args)
    assert r.exit_code == 0, r.output
    assert r.output.strip() == str(out / "index.html")
    assert json.loads((out / "summary.json").read_text())["has_train"] is True

    r = CliRunner().invoke(cli(), args)
    assert r.exit_code == 1 and "already exists (use --force" in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(cli(), args + ["--force"])
    assert r.exit_code == 0, r.output


def test_cli_errors_are_one_line(tmp_path):
    cert, train = make_certificate(k=12, n_train=40)
    write_certificate(tmp_path / "c.h5", cert)
    (tmp_path / "notes.txt").write_text("hello")
    np.save(tmp_path / "few.npy", train[:3])
    np.save(tmp_path / "rgb.npy", np.repeat(train, 3, axis=1))
    out = str(tmp_path / "rep")
    cases = [
        (["report", str(tmp_path / "notes.txt"), "--html", out], "cannot read"),
        (["report", str(tmp_path / "missing.h5"), "--html", out], "not found"),
        (["report", str(tmp_path / "c.h5"), "--html", out, "--train", str(tmp_path / "few.npy")], "does not match"),
        (["report", str(tmp_path / "c.h5"), "--html", out, "--train", str(tmp_path / "rgb.npy")], "does not match"),
    ]
    for args, message in cases:
        r = CliRunner().invoke(cli(), args)
        assert r.exit_code == 1, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.output
        assert not Path(out).exists()
