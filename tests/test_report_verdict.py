"""The report opens with the verdict and a glossary (issue 12 items 3, 6, 7): per γ the statement's
own sentence, the fidelity floor, guarantees, assumptions and baseline; per-image badges that
are never "novel" where the decoder cannot reach γ; near-copies of the reconstructions beside
those of the training images; which training images are copied; a PSNR histogram; the
configuration collapsed; and nothing that points outside the report."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from markupsafe import escape

from fscert.glossary import GLOSSARY
from fscert.report import build_report
from fscert.decidability import BADGE_COPY, BADGE_NOVEL
from fscert.verdict_statement import statement
from test_report import add_fidelity, make_certificate, read_data_js, sprite_tile, written
from test_report_search import make_searched
from test_verdict_statement import listed, recon

PNG = b"\x89PNG\r\n\x1a\n"
#: what a report that stands alone must never point to
OUTSIDE = re.compile(r"DESIGN|\.md\b|papers/|fs-lar\.txt|nfig\.txt|https?:", re.I)


def page(out: Path) -> tuple[str, dict]:
    return (out / "index.html").read_text(encoding="utf-8"), json.loads((out / "summary.json").read_text("utf-8"))


def glossary_terms(html: str) -> list[str]:
    body = html[html.index('id="glossary"'):html.index("</section>", html.index('id="glossary"'))]
    return [str(escape(t)) for t in re.findall(r"<dt>(.*?)</dt>", body)]


def assert_opens_with_verdict(html: str, s: dict) -> None:
    """The verdict section comes first after the title, then the glossary, then everything else;
    the configuration is collapsed; every glossary entry is fscert.glossary's."""
    first = html.index("<section")
    assert html.index('<section class="verdict" id="verdict">') == first
    assert html.index('id="glossary"') < html.index('class="summary"') < html.index('id="config"')
    assert '<details class="config" id="config">' in html and 'id="config" open' not in html
    for row in s["glossary"]:
        assert GLOSSARY[row["term"]] == row["meaning"]
        assert str(escape(row["meaning"])) in html
    assert glossary_terms(html) == [str(escape(r["term"])) for r in s["glossary"]]
    assert not OUTSIDE.search(html), OUTSIDE.search(html)
    for j, (key, v) in enumerate(s["verdict"]["per_gamma"].items()):
        assert f'id="verdict-{j}" data-status="{v["status"]}">' in html
        assert f'{escape(v["label"])}</span> γ = {key} dB: {escape(v["sentence"])}.' in html
    assert str(escape(s["verdict"]["fidelity"]["words"])) in html
    for w in s["verdict"]["guarantees"] + s["verdict"]["assumptions"] + [s["verdict"]["baseline"]]:
        assert str(escape(w)) in html


def test_complete_listing_opens_with_the_verdict(tmp_path):
    cert, train = listed((10.0, 40.0))
    add_fidelity(cert, recon(22.0, 34.0), recon_counts={"25": 9, "30": 4})
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = page(tmp_path / "rep")
    assert_opens_with_verdict(html, s)
    assert s["verdict"] == json.loads(json.dumps(statement(cert)))          # the statement, unchanged
    terms = [r["term"] for r in s["glossary"]]
    for t in ("γ", "PSNR", "near-copy", "UIR", "M-UIR", "memorization mass", "dead-end mass", "fidelity floor",
              "baseline", "exact", "unknown"):
        assert t in terms, t
    # near-copies of the reconstructions beside those of the training images, with what the difference means
    for j, g in enumerate(("25", "30")):
        row = html[html.index(f'id="metrics-row-{j}"'):html.index("</tr>", html.index(f'id="metrics-row-{j}"'))]
        assert f"<td>{int(cert.flags[:, j].sum())}</td>" in row and f"<td>{ {'25': 9, '30': 4}[g] }</td>" in row
    assert "Near-copies of the reconstructions compare it with the decoder" in html and 'id="recon-means"' in html
    assert 'id="verdict-recon-0">Against the decoder' in html


def test_training_view_counts_every_copy_once(tmp_path):
    cert, train = listed((10.0, 40.0), k=200)
    rec = recon(22.0, 34.0)
    add_fidelity(cert, rec)
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = page(tmp_path / "rep")
    assert 'id="training-view"' in html and "Which training images are copied" in html
    rows = list(csv.DictReader((tmp_path / "rep" / "training.csv").open(encoding="utf-8")))
    assert [int(r["training_index"]) for r in rows] == list(range(40))
    for j, g in enumerate(("25", "30")):
        f = cert.flags[:, j]
        want = np.bincount(cert.nearest_train[f], minlength=40)
        mass = np.bincount(cert.nearest_train[f], weights=cert.prob[f], minlength=40)
        assert [int(r[f"near_copies_{g}"]) for r in rows] == want.tolist()
        assert np.allclose([float(r[f"mass_{g}"]) for r in rows], mass)
        assert sum(int(r[f"near_copies_{g}"]) for r in rows) == int(f.sum())      # each output once
        assert s["training"]["copied"][j]["copied"] == int((want > 0).sum())
        ranks = sorted(range(40), key=lambda t: int(rows[t][f"rank_{g}"]))
        assert [mass[t] for t in ranks] == sorted(mass, reverse=True)
    for t, r in enumerate(rows):                               # the closest output attributed to it
        mine = np.flatnonzero(cert.nearest_train == t)
        if len(mine):
            assert float(r["closest_psnr"]) == cert.psnr[mine].max()
        else:
            assert r["closest_output"] == "" and r["closest_psnr"] == ""
        assert float(r["reconstruction_psnr"]) == rec[t]
    data = read_data_js(tmp_path / "rep")
    e = data["exposure"]
    assert e["n"] == 40 and e["bestSet"] == "gen" and e["reconText"][0] == f"{rec[0]:.2f} dB"
    t = int(np.argmax(cert.psnr == cert.psnr[cert.nearest_train == 3].max()))
    assert e["bestSlot"][3] == t and np.array_equal(sprite_tile(tmp_path / "rep", data["gen"], t), cert.images[t, 0])
    assert np.array_equal(sprite_tile(tmp_path / "rep", data["sprites"]["train"], 3),
                          np.rint(train[3, 0] * 255).astype(np.uint8))
    # a 0 where the training image's own reconstruction is below γ is marked, never a bare all-clear
    median = s["verdict"]["fidelity"]["median_psnr"]
    for j, g in enumerate((25.0, 30.0)):
        for i in range(40):
            if e["cntText"][j][i].startswith("0"):
                assert (e["cntText"][j][i] == "0 (not decidable)") == bool(rec[i] < g or median < g)


@pytest.mark.parametrize("fidelity", ["blurry", "per-image", "absent"])
def test_no_novel_badge_where_not_decidable(tmp_path, fidelity):
    cert, train = listed((10.0, 40.0))
    if fidelity == "blurry":
        add_fidelity(cert, recon(15.0, 19.0), median=17.6)            # neither γ decidable
    elif fidelity == "per-image":
        add_fidelity(cert, np.where(np.arange(40) % 4 == 3, 20.0, 35.0))  # decidable, but some reconstruct at 20 dB
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = page(tmp_path / "rep")
    codes = np.asarray(read_data_js(tmp_path / "rep")["badges"]["codes"])
    assert ((codes == BADGE_COPY) == cert.flags.T).all()
    if fidelity == "blurry":
        assert not (codes == BADGE_NOVEL).any()
    elif fidelity == "per-image":
        odd = cert.nearest_train % 4 == 3                             # nearest training image reconstructs at 20 dB
        assert not (codes[:, odd] == BADGE_NOVEL).any()
        assert ((codes[:, ~odd] == BADGE_NOVEL) == ~cert.flags[~odd].T).all()
    else:
        assert not (codes == BADGE_NOVEL).any() and "not recorded" in html
    assert 'class="badge undecided">not decidable</span>' in html    # the legend explains the badge
    for v in s["verdict"]["per_gamma"].values():
        assert v["status"] != "novel" or v["decidable"] is True


def test_not_decidable_gamma_is_never_shown_as_novel(tmp_path):
    cert, train = listed((5.0, 15.0))                                 # no near-copy at any γ
    add_fidelity(cert, recon(15.0, 19.0), median=17.6)
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = page(tmp_path / "rep")
    verdict = html[html.index('id="verdict"'):html.index('id="glossary"')]
    assert verdict.count('class="badge undecided">NOT DECIDABLE</span>') == 2
    assert "NO NEAR-COPIES" not in html and 'class="badge novel">' not in verdict
    assert "at a median 17.6 dB; at γ = 25 dB no verdict is possible with this decoder" in html
    assert not (np.asarray(read_data_js(tmp_path / "rep")["badges"]["codes"]) == BADGE_NOVEL).any()
    cert, train = listed((5.0, 15.0))
    add_fidelity(cert, recon(31.0, 36.0))                             # a sharp decoder: the same zero is novelty
    build_report(cert, tmp_path / "sharp", train_images=train)
    html, _ = page(tmp_path / "sharp")
    assert html.count('class="badge novel">NO NEAR-COPIES</span>') == 2


def test_psnr_histogram_for_listed_and_searched(tmp_path):
    cert, train = listed((10.0, 40.0))
    add_fidelity(cert, recon(22.0, 34.0))
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = page(tmp_path / "rep")
    assert (tmp_path / "rep" / "psnr.png").read_bytes()[:8] == PNG
    assert '<img class="chart" id="psnr-histogram" src="psnr.png"' in html and s["psnr_histogram"]["file"] == "psnr.png"
    assert [d["values"] for d in s["psnr_histogram"]["series"]] == [60, 60, 40]
    assert "The dotted line is the" in html                           # the fidelity floor is drawn and explained
    cert, train = make_searched()
    build_report(written(tmp_path, cert), tmp_path / "srep", train_images=train)
    html, s = page(tmp_path / "srep")
    assert (tmp_path / "srep" / "psnr.png").read_bytes()[:8] == PNG and 'id="psnr-histogram"' in html
    assert "The dotted line" not in html                              # no fidelity recorded: no floor drawn
    cert, _ = make_certificate(k=0, model=False, reachable=10**9)     # nothing to plot: no file, no image
    build_report(cert, tmp_path / "none")
    html, s = page(tmp_path / "none")
    assert s["psnr_histogram"] is None and not (tmp_path / "none" / "psnr.png").exists() and "psnr.png" not in html


def test_searched_report_opens_with_the_verdict(tmp_path):
    cert, train = make_searched(exact=False)
    cert.extra["recon_psnr"] = np.array([10.0, 40.0, 40.0, 10.0, 40.0, 40.0])
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = page(tmp_path / "rep")
    assert_opens_with_verdict(html, s)
    assert html.index('id="verdict"') < html.index('id="search-verdict"') < html.index('id="exposure"')
    assert {"exposure", "certified interval", "exact"} <= {r["term"] for r in s["glossary"]}
    assert "its own reconstruction: PSNR" in html                    # the exposure table's reconstruction column
    e = read_data_js(tmp_path / "rep")["exposure"]
    assert e["reconText"][0] == "10.00 dB" and e["reconText"][1] == "40.00 dB"
    for v in s["verdict"]["per_gamma"].values():
        assert v["status"] in ("copies", "unresolved") and "(certified interval)" in v["sentence"]
        assert v["recon"]["near_copies"] is None and "not recorded" in v["recon"]["words"]
    assert "<td>not recorded</td>" in html                           # reconstructions: never a 0


def test_not_examined_report_opens_with_no_verdict(tmp_path):
    cert, train = make_certificate(k=50, reachable=10**40)
    add_fidelity(cert, recon(31.0, 36.0), recon_counts={"25": None, "30": None})
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = page(tmp_path / "rep")
    assert_opens_with_verdict(html, s)
    assert html.count('class="badge undecided">NOT EXAMINED</span>') == 2
    assert 'id="training-view"' not in html and s["training"] is None and not (tmp_path / "rep" / "training.csv").exists()
    assert "listed outputs (not every possible one)" in json.dumps(s["psnr_histogram"])
    assert "The figures can be re-derived" in html and "guarantees nothing about memorization" in html


def test_count_only_and_latents_only_reports_still_open_with_the_verdict(tmp_path):
    cert, _ = make_certificate(k=0, model=False, reachable=10**25)
    build_report(written(tmp_path, cert), tmp_path / "count")
    html, s = page(tmp_path / "count")
    assert html.index('id="verdict"') == html.index("<section") + len('<section class="verdict" ')
    assert 'id="verdict-none"' in html and "made without a model" in html
    assert '<details class="config" id="config">' in html
