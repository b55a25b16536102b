"""The audit's static HTML report (`fscert audit --html`), without a browser: files, contents,
traceability, no network reference, atomic writing. The browser checks are in test_audit_browser.py."""
from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from fscert.audit import ImageSet, audit
from fscert.audit_report import SIDE_ROWS, build_audit_report
from fscert.errors import FscertError


def make_sets(n_train=40, n_gen=60, n_test=30, seed=0):
    """Random 8×8 images: generated 0–11 copy training images 0–5 twice each (exact, then ~34 dB),
    generated 12–14 copy training image 7; held-out 0–1 lie ~40 dB from training images 20–21."""
    rng = np.random.default_rng(seed)
    train = rng.random((n_train, 1, 8, 8)).astype(np.float32)
    gen = rng.random((n_gen, 1, 8, 8)).astype(np.float32)
    for i in range(6):
        gen[2 * i] = train[i]
        gen[2 * i + 1] = np.clip(train[i] + 0.02 * rng.standard_normal((1, 8, 8)), 0, 1)
    gen[12:15] = train[7]
    test = rng.random((n_test, 1, 8, 8)).astype(np.float32)
    test[:2] = np.clip(train[20:22] + 0.01 * rng.standard_normal((2, 1, 8, 8)), 0, 1)
    return (ImageSet(train, [f"normal/t{i}.png" for i in range(n_train)], "train/", "natural sort of file paths"),
            ImageSet(gen, [f"im{i}.png" for i in range(n_gen)], "gen/", "natural sort of file paths (im2 before im10)"),
            ImageSet(test, [f"#{i}" for i in range(n_test)], "test.npy", "stored order of the array"))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tr, ge, te = make_sets()
    res = audit(tr, ge, [25, 30], test_NCHW=te)
    out = tmp_path_factory.mktemp("audit") / "rep"
    index = build_audit_report(res, out, tr.images, ge.images, te.images, title="<script>alert(1)</script>")
    return res, index, (tr, ge, te)


class _Refs(HTMLParser):
    """Every URL-valued attribute of a page."""

    def __init__(self):
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("src", "href", "action", "data", "poster", "srcset")]


def test_report_files_and_no_network_reference(report):
    res, index, _ = report
    folder = index.parent
    assert {p.name for p in folder.iterdir()} >= {"index.html", "report.css", "audit.css", "audit.js", "data.js",
                                                  "psnr.png", "summary.json", "images.csv", "heldout.csv",
                                                  "groups.csv", "sprites"}
    html = index.read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html and "connect-src 'none'" in html
    p = _Refs()
    p.feed(html)
    for ref in p.refs:             # every reference is a file of the folder
        assert not re.match(r"^[a-z]+:|^//", ref), ref
        assert (folder / ref).exists(), ref
    for name in ("audit.js", "audit.css", "data.js"):
        assert not re.search(r"https?://|fetch\(|XMLHttpRequest|import\(", (folder / name).read_text()), name
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_verdict_and_glossary_come_first_config_last(report):
    res, index, _ = report
    html = index.read_text()
    pos = {k: html.index(f'id="{k}"') for k in ("verdict", "glossary", "sets", "side", "groups", "browser", "config")}
    assert pos["verdict"] < pos["glossary"] < pos["sets"] < pos["side"] < pos["groups"] < pos["browser"] < pos["config"]
    assert re.search(r'<details class="config" id="config">', html) and "open" not in html[pos["config"] - 40:pos["config"] + 30]
    for s in res["verdict"]["sentences"]:
        assert s.replace("'", "&#39;") in html
    assert "generated images: 15 of 60 (25 %) are near-copies" in html
    assert "held-out real images: 2 of 30 (6.7 %)" in html
    for t in res["glossary"]:
        assert f"<dt>{t['term']}</dt>" in html
    for k, v in res["params"]["sha256"].items():
        assert v in html[pos["config"]:]


def test_groups_match_a_brute_force_regrouping(report):
    res, index, (tr, ge, te) = report
    rows = list(csv.DictReader((index.parent / "groups.csv").open()))
    psnr, near = res["per_image"]["psnr"], res["per_image"]["nearest_train"]
    ref: dict = {}
    for i in range(len(psnr)):
        if psnr[i] >= 25:
            ref.setdefault(int(near[i]), []).append(ge.names[i])
    assert {int(r["train"]): sorted(r["generated"].split(" | ")) for r in rows} == {t: sorted(v) for t, v in ref.items()}
    assert rows[0]["train"] == "7" and rows[0]["near_copies_25"] == "3" and rows[0]["train_name"] == "normal/t7.png"
    assert [int(r["near_copies_25"]) for r in rows] == sorted((len(v) for v in ref.values()), reverse=True)
    html = index.read_text()
    assert 'id="group-7"' in html and "im12.png, im13.png, im14.png" in html


def test_side_by_side_and_tables_name_every_image(report):
    res, index, (tr, ge, te) = report
    html = index.read_text()
    order = np.lexsort((np.arange(60), -res["per_image"]["psnr"]))
    for r in range(SIDE_ROWS):
        i = order[r]
        row = html[html.index(f'id="side-{r}"'):html.index("</tr>", html.index(f'id="side-{r}"'))]
        assert f'data-set="gen" data-slot="{i}"' in row and ge.names[i] in row
        assert tr.names[res["per_image"]["nearest_train"][i]] in row and "held-out rank" in row
    rows = list(csv.DictReader((index.parent / "images.csv").open()))
    assert [r["name"] for r in rows] == ge.names
    assert all(r["nearest_train_name"] == tr.names[int(r["nearest_train"])] for r in rows)
    held = list(csv.DictReader((index.parent / "heldout.csv").open()))
    assert [r["name"] for r in held] == te.names and held[0]["nearest_train_name"] == "normal/t20.png"
    summary = json.loads((index.parent / "summary.json").read_text())
    assert summary["images"][3]["name"] == "im3.png" and summary["baseline"]["status"] == "computed"
    data = (index.parent / "data.js").read_text()
    obj = json.loads(data[data.index("{"):data.rindex("}") + 1])
    assert obj["name"] == ge.names and obj["n"] == 60
    assert obj["copy"][0] == [int(p >= 25) for p in res["per_image"]["psnr"]]


def test_without_held_out_set_the_page_says_unknown(tmp_path):
    tr, ge, _ = make_sets()
    res = audit(tr, ge, [25])
    index = build_audit_report(res, tmp_path / "rep", tr.images, ge.images)
    html = index.read_text()
    assert 'id="baseline-unknown"' in html and "unknown (no held-out set)" in html
    assert not (tmp_path / "rep" / "heldout.csv").exists()
    metrics = html[html.index('id="metrics-0"'):html.index("</tr>", html.index('id="metrics-0"'))]
    assert metrics.count("unknown") == 3                        # held-out near-copies, UIR and M-UIR
    with pytest.raises(FscertError, match="already exists"):
        build_audit_report(res, tmp_path / "rep", tr.images, ge.images)
    with pytest.raises(FscertError, match="together"):
        build_audit_report(res, tmp_path / "rep2", tr.images, ge.images, ge.images)
    assert not (tmp_path / "rep2").exists() and not list(tmp_path.glob(".rep*"))
