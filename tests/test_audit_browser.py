"""The audit's HTML report in a real browser: headless Debian Chromium driven by selenium.

As in test_report_browser.py (whose driver fixture and helpers are reused): nothing downloads
a browser or a driver, selenium-manager is patched to fail if anything tried to call it, and
without the Debian packages the tests skip and say how to install them.
"""
from __future__ import annotations

import json
from urllib.parse import urlparse

import numpy as np
import pytest

from fscert.audit import audit
from fscert.audit_report import build_audit_report
from test_audit_report import make_sets
from test_report_browser import (CHROMEDRIVER, CHROMIUM, SKIP_REASON, click, driver, js, open_report,  # noqa: F401
                                 set_value, text)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason=SKIP_REASON),
]


def shown(drv) -> list[int]:
    return js(drv, "return Array.from(document.querySelectorAll('#grid .card'), c => Number(c.dataset.index))")


def every_shown(drv) -> list[int]:
    """Walk every page of the grid with `next` and collect the cards' indices."""
    while driver_enabled(drv, "prev-page"):
        click(drv, "prev-page")
    seen = shown(drv)
    for _ in range(int(text(drv, "page-count")) - 1):
        click(drv, "next-page")
        seen += shown(drv)
    return seen


def driver_enabled(drv, element_id: str) -> bool:
    return drv.find_element("id", element_id).get_attribute("disabled") is None


def local_only(drv, index) -> set[str]:
    """Every request the page made is a file of the report folder; returns their relative paths."""
    folder = index.parent.resolve().as_uri()
    urls = []
    for entry in drv.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    assert urls, "the devtools log saw none of the page's requests"
    remote = [u for u in urls if urlparse(u).scheme not in ("file", "data", "about", "blob", "chrome")]
    assert not remote, f"network requests: {remote}"
    assert all(u.startswith(folder + "/") for u in urls if u.startswith("file:")), urls
    return {u[len(folder) + 1:] for u in urls if u.startswith(folder + "/")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tr, ge, te = make_sets()
    res = audit(tr, ge, [25, 30], test_NCHW=te)
    index = build_audit_report(res, tmp_path_factory.mktemp("audit-browser") / "rep", tr.images, ge.images,
                               te.images, title="audit <b>title</b>")
    return res, index, (tr, ge, te)


def test_verdict_and_peers_read_in_the_browser(driver, built):  # noqa: F811
    res, index, _ = built
    open_report(driver, index)
    assert text(driver, "title") == "audit <b>title</b>"           # text, never markup
    for j, sentence in enumerate(res["verdict"]["sentences"]):
        assert text(driver, f"verdict-{j}") == sentence
    assert text(driver, "verdict-0").startswith("γ = 25 dB: generated images: 15 of 60 (25 %) are near-copies")
    assert "held-out real images: 2 of 30 (6.7 %)" in text(driver, "verdict-0")
    peers = js(driver, "return Array.from(document.querySelectorAll('#peers dd'), d => d.textContent.trim())")
    assert len(peers) == 3 and all(p for p in peers)
    terms = js(driver, "return Array.from(document.querySelectorAll('#glossary dt'), d => d.textContent)")
    assert {"UIR", "M-UIR", "baseline", "C_T", "near-copy"} <= set(terms)
    assert js(driver, "return document.getElementById('config').open") is False
    loaded = local_only(driver, index)
    assert {"index.html", "report.css", "audit.css", "data.js", "audit.js", "psnr.png"} <= loaded, loaded
    assert any(u.startswith("sprites/") for u in loaded), loaded
    assert js(driver, "return document.querySelectorAll('.tile-slot[data-set]').length") == 0   # every tile placed
    assert not [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_grouping_by_training_image(driver, built):  # noqa: F811
    res, index, (tr, ge, _) = built
    open_report(driver, index)
    rows = js(driver, "return Array.from(document.querySelectorAll('#groups-table tbody tr'),"
                      " r => [Number(r.dataset.train), r.querySelector('.group-count').textContent.trim(),"
                      "       r.querySelector('.gen-names').textContent.trim()])")
    psnr, near = res["per_image"]["psnr"], res["per_image"]["nearest_train"]
    ref: dict = {}
    for i in np.argsort(-psnr, kind="stable"):
        if psnr[i] >= 25:
            ref.setdefault(int(near[i]), []).append(ge.names[i])
    assert {t: sorted(names.split(", ")) for t, _, names in rows} == {t: sorted(v) for t, v in ref.items()}
    assert rows[0][:2] == [7, "3"] and [int(c) for _, c, _ in rows] == sorted((len(v) for v in ref.values()), reverse=True)
    # "show in the grid" filters the grid to that training image's generated images
    driver.find_element("css selector", "#group-7 button.show-group").click()
    assert text(driver, "count-shown") == "3" and sorted(shown(driver)) == [12, 13, 14]
    assert driver.find_element("id", "train-filter").get_attribute("value") == "#7"
    assert driver.find_element("id", "flag-0").get_attribute("value") == "copy"
    set_value(driver, "flag-0", "any")                                # every image whose nearest is #7
    assert sorted(shown(driver)) == sorted(np.flatnonzero(near == 7).tolist())
    set_value(driver, "train-filter", "normal/t3.png")                # by name too
    assert sorted(shown(driver)) == sorted(np.flatnonzero(near == 3).tolist())
    set_value(driver, "train-filter", "no such image")
    assert text(driver, "count-shown") == "0"
    click(driver, "reset-filters")
    assert text(driver, "count-shown") == "60"


def test_grid_sorts_and_filters(driver, built):  # noqa: F811
    res, index, _ = built
    open_report(driver, index)
    psnr = res["per_image"]["psnr"]
    assert text(driver, "count-total") == "60" and text(driver, "page-count") == "2"
    first = shown(driver)
    assert first == np.lexsort((np.arange(60), -psnr))[:48].tolist()       # PSNR, highest first
    assert sorted(every_shown(driver)) == list(range(60))
    set_value(driver, "sort", "psnr-asc")
    assert shown(driver)[:5] == np.lexsort((np.arange(60), psnr))[:5].tolist()
    for j, g in enumerate((25, 30)):
        copies = set(np.flatnonzero(psnr >= g).tolist())
        set_value(driver, f"flag-{j}", "copy")
        assert text(driver, "count-shown") == str(len(copies)) and set(every_shown(driver)) == copies
        set_value(driver, f"flag-{j}", "novel")
        assert set(every_shown(driver)) == set(range(60)) - copies
        set_value(driver, f"flag-{j}", "any")
    card = js(driver, "const c = document.querySelector('#grid .card'); return [c.querySelector('.gen-name').textContent,"
                      " c.querySelector('.train-name').textContent, c.querySelectorAll('.tile').length]")
    i = shown(driver)[0]
    assert card[0] == f"im{i}.png" and f"normal/t{res['per_image']['nearest_train'][i]}.png" in card[1] and card[2] == 2
