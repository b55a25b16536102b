"""The HTML report of a searched certificate (issue 11, item 5): a certificate of 10^18 images
lists none of them, yet its report shows the verdict per γ in words, the exposure of every
training image (table, chart, CSV), every listed near-copy beside its training image, and the
most probable outputs — and never a figure the certificate does not prove."""
from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from markupsafe import escape

from fscert.certificate import Certificate, read_certificate, write_certificate
from fscert.enumerate import verdict_words
from fscert.errors import FscertError
from fscert.report import build_report, count_in_words, exposure_ranking
from test_report import read_data_js, sprite_tile

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GAMMAS = (20.0, 25.0)
MALICIOUS = "<script>alert(1)</script>"
#: wording that would read as an all-clear (or a non-number) where nothing proves it
FALSE_CLEAR = re.compile(r"near-copies:? 0\b|memorization mass 0\b|UIR 0|M-UIR 0|\bnan\b|mass nan|0\.0000|<td>0</td>",
                         re.I)


# ----------------------------------------------------------------------------- certificates


def make_searched(*, s: int = 6, k: int = 12, reachable: int = 75 * 10**17, exact: bool = True, seed: int = 0,
                  unknown: bool = False, bounds: bool = False, top: int = 0, train_name: str | None = "mnist",
                  reason: str | None = None, top_note: str | None = None,
                  attrs: dict | None = None) -> tuple[Certificate, np.ndarray]:
    """A synthetic searched certificate (format 2, nothing listed) and its training images.

    ``k`` listed near-copies (the first within γ of a second training image too); per training
    image an exposure at each γ that ranks differently per γ; ``exact`` False: intervals;
    ``unknown``: training image 1's upper ends, and the union's upper ends, are unknown (NaN /
    null); ``bounds``: training images 0 and 2 have only a PSNR bound for their best output;
    ``top``: the most probable outputs."""
    rng = np.random.default_rng(seed)
    c, size = 1, 16
    train = rng.random((s, c, size, size), dtype=np.float32)
    g = np.asarray(GAMMAS)
    psnr = rng.uniform(GAMMAS[0], 40.0, k)
    if k:
        psnr[0] = np.inf
    flags = psnr[:, None] >= g[None, :]
    nearest = rng.integers(0, s, k).astype(np.int64)
    prob = rng.random(k) * 1e-3 + 1e-6
    pair_row = np.concatenate([np.arange(k), np.zeros(min(k, 1), np.int64)]).astype(np.int64)
    pair_train = np.concatenate([nearest, (nearest[:1] + 1) % s]).astype(np.int64)
    lo = rng.random((s, 2)) * 0.1
    lo[:, 1] *= rng.random(s)                         # another ranking at the larger γ
    hi = lo if exact else lo + rng.random((s, 2)) * 0.01
    clo = np.floor(lo * 1e6)
    chi = clo if exact else clo + 7
    if unknown:
        hi, chi = hi.copy(), chi.copy()
        hi[1], chi[1] = np.nan, np.nan
    best_psnr = rng.uniform(15.0, 45.0, s)
    best_exact = np.ones(s, bool)
    if bounds:
        best_exact[[0, 2]] = False
    best_images = rng.integers(0, 256, (s, c, size, size), dtype=np.uint8)
    best_images[~best_exact] = 0
    best_prob = np.where(best_exact, rng.random(s) * 1e-4, np.nan)
    extra = dict(
        near_latents=rng.choice(np.array([-1, 1], np.int8), size=(k, 2, 4, 4)), near_prob=prob,
        near_log_prob=np.log(prob), near_images=rng.integers(0, 256, (k, c, size, size), dtype=np.uint8),
        near_nearest_train=nearest, near_psnr=psnr, near_flags=flags, pair_row=pair_row, pair_train=pair_train,
        pair_psnr=np.concatenate([psnr, psnr[:1]]) if k else np.zeros(0),
        exposure_low=lo, exposure_high=hi, exposure_count_low=clo, exposure_count_high=chi,
        best_latents=rng.choice(np.array([-1, 1], np.int8), size=(s, 2, 4, 4)), best_images=best_images,
        best_psnr=best_psnr, best_exact=best_exact, best_prob=best_prob)
    if top:
        tp = np.sort(rng.random(top))[::-1] * 1e-3
        extra.update(top_latents=rng.choice(np.array([-1, 1], np.int8), size=(top, 2, 4, 4)), top_prob=tp,
                     top_log_prob=np.log(tp), top_images=rng.integers(0, 256, (top, c, size, size), dtype=np.uint8))
    keys = [f"{x:g}" for x in GAMMAS]
    count = [int(flags[:, j].sum()) for j in range(2)]
    mass = [float(prob[flags[:, j]].sum()) for j in range(2)]
    why = reason or ("every near-copy listed" if exact else "2 training image(s) have too many near-copies to list")
    a = {"mode": "empirical", "reachable_count": str(reachable), "listed_count": 0, "count_only": False,
         "dead_end_mass": 0.25, "rho": 2, "anchoring": "position", "latents_sha256": "a" * 64,
         "model_sha256": "b" * 64, "train_sha256": "", "gammas": g, "verdict_scope": "searched",
         "config": json.dumps({"train": train_name, "max_images": 10, "rho": 2}),
         "near_copy_count_low": json.dumps({kk: str(n) for kk, n in zip(keys, count)}),
         "near_copy_count_high": json.dumps({kk: None if unknown else str(n if exact else 3 * n + 5)
                                             for kk, n in zip(keys, count)}),
         "near_copy_exact": json.dumps({kk: exact for kk in keys}),
         "near_copy_reason": json.dumps({kk: why for kk in keys}),
         "memorization_mass_low": json.dumps(dict(zip(keys, mass))),
         "memorization_mass_high": json.dumps({kk: None if unknown else (m if exact else min(1.0, 3 * m + 0.01))
                                               for kk, m in zip(keys, mass)}),
         "memorization_mass": json.dumps({kk: m if exact else None for kk, m in zip(keys, mass)}),
         "uir": json.dumps({kk: (1 - n / reachable) if exact else None for kk, n in zip(keys, count)}),
         "m_uir": json.dumps({kk: None for kk in keys}),
         "search": json.dumps({"windows_decoded": 7, "rounding_ties": 0, "unresolved_training_images": []})}
    if top:
        a.update(top_k=top, top_mass=float(math.fsum(extra["top_prob"].tolist())))
    if top_note:
        a["top_note"] = top_note
    a.update(attrs or {})
    cert = Certificate(latents=np.zeros((0, 2, 4, 4), np.int8), prob=np.zeros(0), attrs=a,
                       images=np.zeros((0, c, size, size), np.uint8), extra=extra)
    return cert, train


def written(tmp_path: Path, cert: Certificate, name: str = "cert.h5") -> Certificate:
    """Through the file format (and its reader's checks), as `fscert report` sees it."""
    write_certificate(tmp_path / name, cert)
    return read_certificate(tmp_path / name)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Real searched certificates from the near-copy search: every near-copy listed (exact), and
    per-training-image listings capped so that the union's figures are certified intervals."""
    from fscert.blocks import decode_exact, generated_values
    from fscert.enumerate import EnumerateConfig, Inputs, certify
    from fscert.latents import LatentSet
    from test_nearcopy import _case, _model

    model = _model(2, 8, 3, False, seed=2)
    base, z, cnt, _ = _case(2, 8, 1, seed=21, flips=0.03, max_count=3000)
    train = generated_values(decode_exact(model, base))
    # a duplicated training image (common in real data): its near-copy set is the same as its
    # twin's, so the capped union cannot be an exact sum and stays a certified interval
    train = np.concatenate([train, train[:1]])
    folder = tmp_path_factory.mktemp("real")
    out = {}
    for name, cap in (("exact", 5000), ("interval", 10)):
        cert = certify(Inputs(LatentSet(z, cnt), model, train),
                       EnumerateConfig(rho=1, max_images=cap, gammas=GAMMAS, near_copies_only=True))
        out[name] = written(folder, cert, f"{name}.h5")
    assert out["exact"].attrs["verdict_scope"] == "searched" and len(out["exact"].extra["near_prob"]) > 0
    assert json.loads(out["interval"].attrs["near_copy_exact"]) == {"20": False, "25": False}
    return out, train


# ----------------------------------------------------------------------------- helpers


def parts(out: Path) -> tuple[str, dict]:
    return (out / "index.html").read_text(encoding="utf-8"), json.loads((out / "summary.json").read_text("utf-8"))


def table_order(html: str) -> list[int]:
    body = html[html.index('id="exposure-body"'):html.index("</tbody>", html.index('id="exposure-body"'))]
    return [int(t) for t in re.findall(r'<tr data-train="(\d+)">', body)]


def ranked(cert: Certificate, j: int) -> list[int]:
    """The ranking, written out independently: upper end (unknown = ∞) desc, lower end desc, index."""
    lo, hi = cert.extra["exposure_low"][:, j], cert.extra["exposure_high"][:, j]
    key = [(-(math.inf if math.isnan(h) else h), -lo_, t) for t, (lo_, h) in enumerate(zip(lo, hi))]
    return [t for *_, t in sorted(key)]


def assert_near_copies_everywhere(out: Path, cert: Certificate, train: np.ndarray) -> None:
    """Every listed near-copy is in data.js, images.csv and summary.json, with its own tile and
    its nearest training image's tile."""
    e = cert.extra
    k = len(e["near_prob"])
    data = read_data_js(out)
    assert data["n"] == k and data["prob"] == e["near_prob"].tolist()
    if k == 0:
        assert len(list(csv.reader((out / "images.csv").open(encoding="utf-8")))) == 1
        return
    assert data["nearest"] == e["near_nearest_train"].tolist()
    assert [float(v) for v in data["psnr"]] == e["near_psnr"].tolist()
    for j in range(len(GAMMAS)):
        assert data["flags"][j] == e["near_flags"][:, j].astype(int).tolist()
    for i in sorted({0, k // 2, k - 1}):
        assert np.array_equal(sprite_tile(out, data["gen"], i), e["near_images"][i, 0])
        want = np.rint(train[e["near_nearest_train"][i], 0] * 255).astype(np.uint8)
        assert np.array_equal(sprite_tile(out, data["train"], data["trainSlot"][i]), want)
    rows = list(csv.DictReader((out / "images.csv").open(encoding="utf-8")))
    assert len(rows) == k
    pairs: dict[int, set[int]] = {}
    for r, t in zip(e["pair_row"].tolist(), e["pair_train"].tolist()):
        pairs.setdefault(r, set()).add(t)
    for i, r in enumerate(rows):
        assert int(r["index"]) == i and float(r["probability"]) == e["near_prob"][i]
        assert int(r["nearest_train"]) == e["near_nearest_train"][i] and float(r["psnr"]) == e["near_psnr"][i]
        assert float(r["log_probability"]) == e["near_log_prob"][i]
        assert [bool(int(r[f"near_copy_{g:g}"])) for g in GAMMAS] == e["near_flags"][i].tolist()
        assert {int(t) for t in r["within_smallest_gamma_of"].split(";")} == pairs[i]
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))["search"]
    assert s["near_copies_listed"] == k and s["near_copies"] == {"rows": k, "csv": "images.csv"}


def assert_exposure(out: Path, html: str, s: dict, cert: Certificate) -> None:
    """The exposure table, chart and CSV exist and rank every training image correctly."""
    n = len(cert.extra["exposure_low"])
    assert (out / "exposure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'src="exposure.png"' in html and s["search"]["chart"] == "exposure.png"
    assert ("The exposure of a training image at γ is the probability that one image drawn from the generator "
            "is within γ dB PSNR of this training image.") in html
    j0 = int(np.argmin(GAMMAS))
    assert table_order(html) == ranked(cert, j0)[:25]
    for j, g in enumerate(GAMMAS):
        assert s["search"]["exposure_ranking"][f"{g:g}"] == ranked(cert, j)
        assert exposure_ranking(cert.extra["exposure_low"], cert.extra["exposure_high"], j).tolist() == ranked(cert, j)
    rows = list(csv.DictReader((out / "exposure.csv").open(encoding="utf-8")))
    assert [int(r["training_index"]) for r in rows] == list(range(n))
    for j, g in enumerate(GAMMAS):
        by_rank = sorted(range(n), key=lambda t: int(rows[t][f"rank_{g:g}"]))
        assert by_rank == ranked(cert, j)
        for t in range(n):
            hi = cert.extra["exposure_high"][t, j]
            assert float(rows[t][f"exposure_low_{g:g}"]) == cert.extra["exposure_low"][t, j]
            assert rows[t][f"exposure_high_{g:g}"] == ("" if math.isnan(hi) else repr(float(hi)))
    data = read_data_js(out)["exposure"]
    assert data["n"] == n and data["defaultGamma"] == j0


def assert_config_below(html: str) -> None:
    """The configuration and hashes come after the verdict, the exposure and the near-copies."""
    cfg = html.index('id="config"')
    for anchor in ('id="verdict"', 'id="exposure"', 'id="near-copies"'):
        assert html.index(anchor) < cfg, anchor
    assert 'id="config" open' not in html


# ----------------------------------------------------------------------------- real certificates


def test_searched_with_near_copies_exact(real, tmp_path):
    certs, train = real
    cert = certs["exact"]
    index = build_report(cert, tmp_path / "rep", train_images=train, title="searched")
    html, s = parts(tmp_path / "rep")
    reach = cert.attrs["reachable_count"]
    assert s["verdict_scope"] == "searched"
    assert f"covered every one of the {reach} reachable" in html
    for j, g in enumerate(GAMMAS):
        words = verdict_words(cert.attrs, g)
        assert words.endswith("(exact)")
        assert f'id="search-verdict-{j}">γ = {g:g} dB: <span class="badge exact">exact</span> {escape(words)}</li>' in html
        row = s["per_gamma"][j]
        count = int(json.loads(cert.attrs["near_copy_count_low"])[f"{g:g}"])
        assert row["exact"] and row["near_copies"] == count == int(cert.extra["near_flags"][:, j].sum())
        assert row["memorization_mass"] == json.loads(cert.attrs["memorization_mass"])[f"{g:g}"]
        assert f'id="hdr-copies-{j}">{count}<' in html
    k = len(cert.extra["near_prob"])
    assert f"all {k} reachable images within 20 dB PSNR of a training image are shown below" in html
    assert s["search"]["near_copies_all_listed"] is True
    assert_exposure(tmp_path / "rep", html, s, cert)
    assert_near_copies_everywhere(tmp_path / "rep", cert, train)
    assert_config_below(html)
    assert 'id="grid"' in html and html.count("<script") == 2
    if "top_prob" in cert.extra:                    # the k most probable outputs, when the search stored them
        assert f"The {len(cert.extra['top_prob'])} most probable of all reachable images" in html
    assert "http://" not in html and "https://" not in html
    assert index == tmp_path / "rep" / "index.html"


def test_searched_with_intervals(real, tmp_path):
    certs, train = real
    cert = certs["interval"]
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = parts(tmp_path / "rep")
    low, high = (json.loads(cert.attrs[key]) for key in ("near_copy_count_low", "near_copy_count_high"))
    for j, g in enumerate(GAMMAS):
        words = verdict_words(cert.attrs, g)
        assert "certified interval" in words
        assert f'<span class="badge interval">certified interval</span> {escape(words)}' in html
        row = s["per_gamma"][j]
        assert not row["exact"] and row["near_copies"] is None and row["memorization_mass"] is None
        assert row["uir"] is None and row["m_uir"] is None
        assert row["memorization_mass_low"] is not None and row["memorization_mass_high"] is not None
        key = f"{g:g}"
        assert f'id="hdr-copies-{j}">[{low[key]}, {high[key]}]<' in html
    k = len(cert.extra["near_prob"])
    if k:
        assert "so only the listed ones are shown" in html
    else:
        assert "none listed — the certificate proves there are between" in html and 'id="grid"' not in html
        assert 'id="hdr-listed">none<' in html
    assert_exposure(tmp_path / "rep", html, s, cert)
    assert_near_copies_everywhere(tmp_path / "rep", cert, train)
    assert not FALSE_CLEAR.search(html), FALSE_CLEAR.search(html)
    assert_config_below(html)


# ----------------------------------------------------------------------------- synthetic certificates


def test_searched_without_near_copies_and_a_huge_count(tmp_path):
    cert, train = make_searched(k=0, reachable=75 * 10**17)
    cert = written(tmp_path, cert)
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = parts(tmp_path / "rep")
    assert count_in_words(75 * 10**17) == "7.5·10^18" and s["search"]["reachable_in_words"] == "7.5·10^18"
    assert "covered every one of the 7.5·10^18 reachable" in html
    assert "the search proved that no reachable image is within 20 dB PSNR of any training image" in html
    assert 'id="grid"' not in html and "Nothing was listed" not in html and "count-only" not in html
    for j, g in enumerate(GAMMAS):
        assert verdict_words(cert.attrs, g) in html and s["per_gamma"][j]["near_copies"] == 0
    data = read_data_js(tmp_path / "rep")
    assert data["n"] == 0 and data["exposure"]["n"] == 6
    assert list(csv.reader((tmp_path / "rep" / "images.csv").open())) == [
        ["index", "probability", "log_probability", "nearest_train", "training_image", "psnr", "near_copy_20",
         "near_copy_25", "within_smallest_gamma_of"]]
    assert_exposure(tmp_path / "rep", html, s, cert)
    assert html.count("<script") == 2                 # the exposure table is sorted and paged by report.js


def test_unknown_upper_ends_and_psnr_bounds_are_never_numbers(tmp_path):
    cert, train = make_searched(exact=False, unknown=True, bounds=True, s=30)
    cert = written(tmp_path, cert)
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = parts(tmp_path / "rep")
    assert table_order(html)[0] == 1                  # unknown upper end: may be 1, so it ranks first
    assert "≥ " in html and "(upper end unknown)" in html and "at least " in html
    lo = cert.extra["exposure_low"][1, 0]
    assert f"≥ {lo:.4g} (upper end unknown)" in html
    bound = f"< {cert.extra['best_psnr'][0]:.2f} dB (bound)"
    data = read_data_js(tmp_path / "rep")["exposure"]
    assert data["bestText"][0] == bound and data["bestExact"][:3] == [0, 1, 0] and data["probText"][0] == "—"
    shown = table_order(html)
    for t in (0, 2):
        assert (str(escape(f"< {cert.extra['best_psnr'][t]:.2f} dB (bound)")) in html) == (t in shown)
    assert "no image: only a PSNR bound" in html
    assert not FALSE_CLEAR.search(html), FALSE_CLEAR.search(html)
    assert "NaN" not in html
    for row in s["per_gamma"]:
        assert row["memorization_mass"] is None and row["memorization_mass_high"] is None
        assert row["near_copies"] is None and row["near_copies_high"] is None
        assert "1] (upper end unknown)" in row["memorization_mass_text"]
    ex = s["search"]["exposure"]
    rec = dict(zip(ex["columns"], ex["rows"][1]))
    assert rec["exposure_high_20"] is None and rec["near_copies_high_20"] is None
    rec = dict(zip(ex["columns"], ex["rows"][0]))
    assert rec["best_psnr_exact"] is False and rec["best_probability"] is None
    assert 'id="exposure-pages">2<' in html and len(table_order(html)) == 25
    assert_exposure(tmp_path / "rep", html, s, cert)


def test_top_k_outputs(tmp_path):
    cert, train = make_searched(top=7)
    cert = written(tmp_path, cert)
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = parts(tmp_path / "rep")
    p = cert.extra["top_prob"]
    mass = cert.attrs["top_mass"]
    assert "The 7 most probable of all reachable images" in html
    assert f"together they have probability {mass:.4g}" in html and f"remaining {1 - mass:.4g}" in html
    assert html.count('data-set="top"') == 7 and 'id="glance-top"' in html
    for r in range(7):
        assert f'data-rank="{r + 1}"' in html and f"p = {p[r]:.6g}" in html
    assert s["top"]["k"] == 7 and s["top"]["covered_mass"] == mass
    rows = list(csv.DictReader((tmp_path / "rep" / "top.csv").open()))
    assert [float(r["probability"]) for r in rows] == p.tolist()
    info = read_data_js(tmp_path / "rep")["sprites"]["top"]
    assert np.array_equal(sprite_tile(tmp_path / "rep", info, 3), cert.extra["top_images"][3, 0])
    assert html.index('id="near-copies"') < html.index('id="top"') < html.index('id="config"')


def test_user_strings_are_escaped(tmp_path):
    cert, train = make_searched(exact=False, train_name=MALICIOUS, reason=MALICIOUS, top=2, top_note=MALICIOUS,
                                attrs={"mode": MALICIOUS, "anchoring": '"><img src=x onerror=alert(1)>'})
    cert = written(tmp_path, cert)
    build_report(cert, tmp_path / "rep", train_images=train, title=MALICIOUS)
    html, s = parts(tmp_path / "rep")
    assert MALICIOUS not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;[" in html        # the training image's name, in the table
    assert html.count("<script") == 2
    js = (tmp_path / "rep" / "data.js").read_text(encoding="utf-8")
    assert "<" not in js and ">" not in js
    assert read_data_js(tmp_path / "rep")["exposure"]["names"][0] == f"{MALICIOUS}[0]"
    rows = list(csv.DictReader((tmp_path / "rep" / "images.csv").open(encoding="utf-8")))
    assert rows[0]["training_image"] == f"{MALICIOUS}[{cert.extra['near_nearest_train'][0]}]"
    assert s["top"]["note"] == MALICIOUS and s["search"]["training_data"] == MALICIOUS


def test_without_training_images_and_with_the_wrong_ones(tmp_path):
    cert, train = make_searched()
    build_report(cert, tmp_path / "rep", train_images=None)
    html, s = parts(tmp_path / "rep")
    assert "The training images were not provided" in html and "training image #" in html
    data = read_data_js(tmp_path / "rep")
    assert data["train"] is None and "train" not in data["sprites"] and data["n"] == 12
    assert len(table_order(html)) == 6
    with pytest.raises(FscertError, match="6 training images but the training set has 5"):
        build_report(cert, tmp_path / "bad", train_images=train[:5])
    with pytest.raises(FscertError, match="does not match"):
        build_report(cert, tmp_path / "bad", train_images=np.repeat(train, 3, axis=1))
    assert not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------- in a browser


@pytest.mark.browser
def test_exposure_table_in_chromium(tmp_path):
    """report.js sorts and pages the exposure table and fills every tile (skipped without chromium)."""
    from test_report_browser import CHROMEDRIVER, CHROMIUM, SKIP_REASON

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(SKIP_REASON)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    from test_report_browser import assert_local_only, assert_no_console_errors, js, open_report, text

    cert, train = make_searched(s=30, exact=False, unknown=True, bounds=True, top=3)
    index = build_report(written(tmp_path, cert), tmp_path / "rep", train_images=train)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        open_report(driver, index)
        rows = "return Array.from(document.querySelectorAll('#exposure-body tr'), r => Number(r.dataset.train))"
        assert js(driver, rows) == ranked(cert, 0)[:25]
        driver.find_element("css selector", "button.sort[data-sort='exp-1']").click()
        assert js(driver, rows) == ranked(cert, 1)[:25]
        driver.find_element("id", "exposure-next").click()
        assert js(driver, rows) == ranked(cert, 1)[25:] and text(driver, "exposure-page") == "2"
        driver.find_element("css selector", "button.sort[data-sort='exp-1']").click()   # again: reversed
        assert js(driver, rows) == ranked(cert, 1)[::-1][:25]
        tiles = "return document.querySelectorAll('#exposure-body tr:first-child .tile').length"
        assert js(driver, tiles) in (1, 2)
        assert js(driver, "return document.querySelectorAll('.tile-slot[data-set]').length") == 0   # all filled
        assert js(driver, "return document.querySelectorAll('#top-grid .tile').length") == 3
        assert text(driver, "count-total") == "12" and len(js(driver, "return document.querySelectorAll('#grid .card')")) == 12
        assert_local_only(driver, index)
        assert_no_console_errors(driver)
    finally:
        driver.quit()
