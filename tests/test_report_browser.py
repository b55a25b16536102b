"""The HTML report in a real browser: headless Debian Chromium driven by selenium.

Nothing here downloads a browser or a driver: the Debian packages' binaries are named
explicitly (Service('/usr/bin/chromedriver'), binary_location='/usr/bin/chromium') and
selenium-manager is patched to fail if anything ever tried to call it. Without the packages
the tests skip and say how to install them.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from fscert.certificate import Certificate
from fscert.report import build_report
from test_report import make_certificate, written

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SKIP_REASON = "Debian chromium/chromium-driver not installed: apt-get install chromium chromium-driver"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason=SKIP_REASON),
]


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """One headless Chromium for the module, with a fresh profile and the performance log on."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    def no_manager(*args, **kwargs):
        raise AssertionError("selenium-manager must never run (it would download a browser)")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SeleniumManager, "binary_paths", no_manager)
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        profile = tmp_path_factory.mktemp("chromium-profile")
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        drv = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield drv
        finally:
            drv.quit()
            shutil.rmtree(profile, ignore_errors=True)


def open_report(driver, index: Path, timeout: float = 60.0) -> float:
    """Load index.html from file://, wait for the first page of cards; return seconds taken."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("performance")  # drop what earlier pages logged
    driver.get_log("browser")
    start = time.perf_counter()
    driver.get(index.resolve().as_uri())
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.readyState === 'complete' && "
                                   "(document.body.dataset.ready === '1' || !document.getElementById('grid'))"))
    return time.perf_counter() - start


def js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def text(driver, element_id: str) -> str:
    return js(driver, "return document.getElementById(arguments[0]).textContent.trim()", element_id)


def shown_indices(driver) -> list[int]:
    return js(driver, "return Array.from(document.querySelectorAll('#grid .card'), c => Number(c.dataset.index))")


def click(driver, element_id: str) -> None:
    driver.find_element("id", element_id).click()


def set_value(driver, element_id: str, value: str) -> None:
    """Set an input or select and fire `change`, as a user would."""
    js(driver, "const e = document.getElementById(arguments[0]); e.value = arguments[1];"
               "e.dispatchEvent(new Event('change', {bubbles: true}));", element_id, value)


def all_indices_by_paging(driver) -> list[int]:
    """Walk every page with the `next` button and collect the cards' indices."""
    click(driver, "first-page")
    seen = shown_indices(driver)
    pages = int(text(driver, "page-count"))
    for _ in range(pages - 1):
        click(driver, "next-page")
        seen += shown_indices(driver)
    assert driver.find_element("id", "next-page").get_attribute("disabled") is not None
    return seen


def assert_local_only(driver, index: Path) -> None:
    """Every resource the page loaded is a file:// URL, and the browser sent no network request.

    The devtools performance log sees every request (Chromium records no Resource Timing
    entries for file:// loads, so `performance.getEntriesByType('resource')` is checked too
    but is usually empty).
    """
    folder = index.parent.resolve().as_uri()
    entries = js(driver, "return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(u.startswith(folder + "/") for u in entries), entries

    page_urls, network = [], []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] != "Network.requestWillBeSent":
            continue
        params = msg["params"]
        url = params["request"]["url"]
        if params.get("documentURL", "").startswith("file:"):
            page_urls.append(url)
        if urlparse(url).scheme not in ("file", "data", "chrome", "about", "blob"):
            network.append(url)
    assert page_urls, "the devtools log saw none of the page's requests"
    assert all(u.startswith(folder + "/") for u in page_urls), page_urls
    assert not network, f"network requests: {network}"
    loaded = {u[len(folder) + 1:] for u in page_urls}
    assert {"index.html", "report.css", "data.js", "report.js"} <= loaded, loaded
    if js(driver, "return document.querySelector('#grid .tile:not(.missing)') !== null"):
        assert any(u.startswith("sprites/") for u in loaded), loaded


def assert_no_console_errors(driver) -> None:
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


# ---------------------------------------------------------------------------------------------


def test_report_in_chromium(driver, tmp_path):
    cert, train = make_certificate(k=130, n_train=50)   # complete listing: the figures are shown
    cert = written(tmp_path, cert)
    index = build_report(cert, tmp_path / "rep", train_images=train, title="<script>alert(1)</script>")
    open_report(driver, index)
    k = len(cert.prob)

    # header counts match the certificate
    assert text(driver, "hdr-reachable") == str(len(cert.prob))
    assert text(driver, "hdr-listed") == str(k)
    for j in range(len(cert.gammas)):
        assert text(driver, f"hdr-copies-{j}") == str(int(cert.flags[:, j].sum()))
    assert text(driver, "title") == "<script>alert(1)</script>"  # shown as text, never run
    assert text(driver, "count-total") == str(k) and text(driver, "count-shown") == str(k)

    # first page: sorted by probability, highest first; both tiles are sprites
    first = shown_indices(driver)
    assert len(first) == 48
    assert first == list(np.argsort(-cert.prob, kind="stable")[:48])
    tiles = js(driver, "return Array.from(document.querySelectorAll('#grid .card:first-child .tile'),"
                       " t => getComputedStyle(t).backgroundImage)")
    assert len(tiles) == 2 and "sprites/gen-0000.png" in tiles[0] and "sprites/train-0000.png" in tiles[1]
    assert js(driver, "return getComputedStyle(document.querySelector('#grid .tile')).imageRendering") == "pixelated"
    assert js(driver, "return document.querySelector('#grid .tile').clientWidth") == 96  # whole 32×32 tile, ×3

    # pagination: 3 pages of 48, every image exactly once
    assert text(driver, "page-count") == "3"
    assert sorted(all_indices_by_paging(driver)) == list(range(k))
    click(driver, "prev-page")
    assert driver.find_element("id", "page-input").get_attribute("value") == "2"
    set_value(driver, "page-size", "96")
    assert text(driver, "page-count") == "2"

    # filters change what is shown
    set_value(driver, "flag-1", "copy")
    copies = set(np.flatnonzero(cert.flags[:, 1]).tolist())
    assert text(driver, "count-shown") == str(len(copies))
    assert set(all_indices_by_paging(driver)) == copies
    set_value(driver, "flag-1", "novel")
    assert text(driver, "count-shown") == str(k - len(copies))
    set_value(driver, "flag-1", "any")

    threshold = float(np.median(cert.prob))
    set_value(driver, "min-prob", repr(threshold))
    assert text(driver, "count-shown") == str(int((cert.prob >= threshold).sum()))
    set_value(driver, "min-prob", "")
    set_value(driver, "psnr-min", "25")
    set_value(driver, "psnr-max", "35")
    in_range = set(np.flatnonzero((cert.psnr >= 25) & (cert.psnr <= 35)).tolist())
    assert set(all_indices_by_paging(driver)) == in_range
    click(driver, "reset-filters")
    assert text(driver, "count-shown") == str(k)

    # sorting
    set_value(driver, "sort", "index-asc")
    assert shown_indices(driver)[:5] == [0, 1, 2, 3, 4]
    set_value(driver, "sort", "psnr-desc")
    assert shown_indices(driver)[0] == 0  # the +inf PSNR (an exact copy) comes first
    assert shown_indices(driver)[1] == int(np.argsort(-cert.psnr[1:])[0]) + 1

    assert_local_only(driver, index)
    assert_no_console_errors(driver)


def test_latents_only_and_count_only_pages(driver, tmp_path):
    cert, _ = make_certificate(k=30, model=False)
    index = build_report(written(tmp_path, cert), tmp_path / "latents")
    open_report(driver, index)
    note = js(driver, "const n = document.querySelector('.note-latents'); return n && n.textContent")
    assert note and "no decoded images" in note
    assert text(driver, "count-total") == "30" and len(shown_indices(driver)) == 30
    assert_local_only(driver, index)
    assert_no_console_errors(driver)

    cert, _ = make_certificate(k=0, model=False, reachable=10**25)
    index = build_report(written(tmp_path, cert, "count.h5"), tmp_path / "count")
    open_report(driver, index)
    assert text(driver, "hdr-reachable") == str(10**25) and text(driver, "hdr-listed") == "0"
    assert "Nothing was listed" in text(driver, "nothing-listed")
    assert js(driver, "return document.getElementById('grid')") is None
    assert_no_console_errors(driver)


def test_verdict_glossary_config_and_histogram_in_chromium(driver, tmp_path):
    """The page opens with the verdict, then the glossary; the configuration is collapsed; the PSNR
    histogram loads; the per-training-image table is filled; no card says "novel" at a γ the
    decoder cannot reach (issue 12 items 6 and 7)."""
    from selenium.webdriver.support.ui import WebDriverWait

    from test_report import add_fidelity
    from test_verdict_statement import listed, recon

    cert, train = listed((10.0, 40.0), k=80)
    add_fidelity(cert, recon(24.0, 32.0), median=27.0, recon_counts={"25": 5, "30": 2})   # γ 30 not decidable
    index = build_report(written(tmp_path, cert), tmp_path / "rep", train_images=train)
    s = json.loads((tmp_path / "rep" / "summary.json").read_text())
    open_report(driver, index)

    order = js(driver, "return Array.from(document.querySelectorAll('body > section, body > header'), e => e.id || e.className)")
    assert order[:3] == ["top", "verdict", "glossary"], order
    tops = js(driver, "return ['verdict', 'glossary', 'metrics', 'grid'].map(i => "
                      "document.getElementById(i).getBoundingClientRect().top)")
    assert tops == sorted(tops), tops
    assert text(driver, "verdict-1").startswith("NEAR-COPIES γ = 30 dB:")
    assert "NOT DECIDABLE" in text(driver, "verdict-1") and "NOT DECIDABLE" in text(driver, "fidelity-floor")
    assert js(driver, "return document.querySelectorAll('#glossary dt').length") == len(s["glossary"])
    assert js(driver, "return document.getElementById('glossary').offsetHeight") > 0
    assert js(driver, "return document.getElementById('config').open") is False
    assert js(driver, "return document.querySelector('#config table.kv').checkVisibility()") is False   # hidden

    WebDriverWait(driver, 30).until(lambda d: d.execute_script(
        "const i = document.getElementById('psnr-histogram'); return i.complete && i.naturalWidth > 0"))
    assert js(driver, "return document.getElementById('psnr-histogram').naturalWidth") > 300

    assert js(driver, "return document.querySelectorAll('#exposure-body tr').length") == 25
    assert js(driver, "return document.querySelectorAll('.tile-slot[data-set]').length") == 0          # all filled
    set_value(driver, "page-size", "96")
    badges = js(driver, "return Array.from(document.querySelectorAll('#grid .badge'), b => b.textContent)")
    assert len(badges) == 2 * 80
    assert not [b for b in badges if b == "γ30 novel"], badges                  # γ 30 is not decidable
    assert {b for b in badges if b.startswith("γ30")} <= {"γ30 copy", "γ30 not decidable"}
    assert any(b == "γ30 not decidable" for b in badges)
    assert js(driver, "return document.querySelectorAll('#grid .recon').length") == 5   # near-copies of a reconstruction
    assert_local_only(driver, index)
    assert_no_console_errors(driver)


def big_certificate(k: int = 100_000, n_train: int = 5_000, seed: int = 1) -> tuple[Certificate, np.ndarray]:
    """A generation-sized certificate in memory: k random 32×32 grey images, 3 thresholds."""
    rng = np.random.default_rng(seed)
    gammas = [20.0, 25.0, 30.0]
    prob = rng.random(k)
    prob /= prob.sum()
    psnr = rng.uniform(8.0, 40.0, k)
    flags = psnr[:, None] >= np.asarray(gammas)[None]
    cert = Certificate(
        latents=rng.choice(np.array([-1, 1], np.int8), size=(k, 4, 8, 8)), prob=prob,
        images=rng.integers(0, 256, (k, 1, 32, 32), dtype=np.uint8),
        nearest_train=rng.integers(0, n_train, k).astype(np.int64), psnr=psnr, flags=flags, m_uir=~flags,
        attrs={"mode": "empirical", "reachable_count": str(k), "listed_count": k, "count_only": False,
               "dead_end_mass": 0.0, "rho": 0.5, "tau": 1.0, "kappa": 2.0, "gammas": np.asarray(gammas)})
    return cert, rng.random((n_train, 1, 32, 32), dtype=np.float32)


@pytest.mark.slow
def test_100k_images_render_and_paginate(driver, tmp_path, capsys):
    cert, train = big_certificate()
    start = time.perf_counter()
    index = build_report(cert, tmp_path / "big", train_images=train)
    build_s = time.perf_counter() - start
    load_s = open_report(driver, index, timeout=120)
    first_render_ms = int(js(driver, "return document.body.dataset.firstRenderMs"))

    assert text(driver, "count-total") == "100000" and text(driver, "hdr-listed") == "100000"
    assert len(shown_indices(driver)) == 48
    assert text(driver, "page-count") == str(-(-100_000 // 48))
    start = time.perf_counter()
    click(driver, "next-page")
    next_s = time.perf_counter() - start
    assert shown_indices(driver) == list(np.argsort(-cert.prob, kind="stable")[48:96])
    click(driver, "last-page")
    assert len(shown_indices(driver)) == 100_000 - 48 * (100_000 // 48)
    start = time.perf_counter()
    set_value(driver, "flag-2", "copy")
    filter_s = time.perf_counter() - start
    assert text(driver, "count-shown") == str(int(cert.flags[:, 2].sum()))
    assert_local_only(driver, index)
    assert_no_console_errors(driver)

    size_mb = sum(p.stat().st_size for p in index.parent.rglob("*") if p.is_file()) / 1e6
    with capsys.disabled():  # figures for the record; never asserted
        print(f"\n100k report: build_report {build_s:.1f} s, {size_mb:.0f} MB; page load to first cards "
              f"{load_s:.2f} s (in-page {first_render_ms} ms); next page {next_s * 1000:.0f} ms; "
              f"flag filter {filter_s * 1000:.0f} ms")
