"""Never a false all-clear (issue 11, item 1): a certificate that did not examine every reachable
image stores null (never 0) for near-copies, UIR, M-UIR and memorization mass, records
``verdict_scope`` "not-examined", and every reader (enumerate, certify's summary lines and
summary.json, the HTML report) says so in the words of ``fscert.enumerate.verdict_words``."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from fscert.certificate import attr_json, read_certificate, write_certificate
from fscert.enumerate import (SCOPE_COMPLETE, SCOPE_NOT_EXAMINED, VERDICT_MAPS, EnumerateConfig, Inputs, certify,
                            verdict_scope, verdict_words, verify)
from fscert.errors import FscertError
from fscert.latents import LatentSet, write_latents
from fscert.certify import CertifyConfig, make_summary, summary_lines
from fscert.report import build_report
from fscert_cli.main import cli
from test_report import make_certificate

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GAMMAS = (25.0, 30.0)
FALSE_CLEAR = re.compile(r"near-copies 0\b|memorization mass 0|UIR 0|M-UIR 0|UIR nan|mass nan", re.I)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def inputs():
    """A tiny untrained 2×8×8 model, random ±1 latents and random training images."""
    import torch

    from fscert.autoencoder import AEConfig, LocalAutoencoder

    torch.manual_seed(0)
    model = LocalAutoencoder(AEConfig(latent_channels=2, hidden=8))
    rng = np.random.default_rng(0)
    z = rng.choice(np.array([-1, 1], np.int8), size=(6, 2, 8, 8))
    train = rng.random((5, 1, 32, 32), dtype=np.float32)
    return LatentSet(z), model, train


def not_examined(words: str) -> bool:
    return "NOT EXAMINED" in words and "none was decoded or compared" in words


def assert_no_figures(cert) -> None:
    assert cert.attrs["verdict_scope"] == SCOPE_NOT_EXAMINED
    for key in VERDICT_MAPS:
        assert attr_json(cert, key) == {"25": None, "30": None}, key


# ----------------------------------------------------------------------------- library


def test_count_only_certificate_has_null_figures_round_trips_and_verifies(inputs, tmp_path):
    E, model, train = inputs
    cert = certify(Inputs(E, model, train), EnumerateConfig(count_only=True, gammas=GAMMAS))
    assert cert.attrs["count_only"] and cert.attrs["listed_count"] == 0 and int(cert.attrs["reachable_count"]) > 0
    assert_no_figures(cert)
    assert cert.flags.shape == (0, 2) and cert.m_uir.shape == (0, 2)
    write_certificate(tmp_path / "c.h5", cert)
    back = read_certificate(tmp_path / "c.h5")
    assert_no_figures(back)
    assert verify(back, E, model, train) == []                  # with the latents: re-enumerated
    assert verify(back, None, model, train) == []               # model and training images only
    words = verdict_words(back.attrs, 25.0)
    assert not_examined(words) and "run without --count-only" in words


def test_complete_listing_is_unchanged(inputs, tmp_path):
    E, model, train = inputs
    cert = certify(Inputs(E, model, train), EnumerateConfig(gammas=GAMMAS))
    k = len(cert.latents)
    assert k == cert.reachable_count and cert.attrs["verdict_scope"] == SCOPE_COMPLETE
    for j, g in enumerate(("25", "30")):
        passing = ~cert.flags[:, j]
        assert attr_json(cert, "uir")[g] == float(passing.mean())
        assert attr_json(cert, "uir_weighted")[g] == float(cert.prob[passing].sum())
        assert attr_json(cert, "m_uir")[g] == float(cert.m_uir[:, j].mean())
        assert attr_json(cert, "m_uir_weighted")[g] == float(cert.prob[cert.m_uir[:, j]].sum())
        assert attr_json(cert, "memorization_mass")[g] == float(cert.prob[cert.flags[:, j]].sum())
    write_certificate(tmp_path / "c.h5", cert)
    assert verify(read_certificate(tmp_path / "c.h5"), E, model, train) == []
    s = make_summary(cert, E.latents, CertifyConfig(), None, 0.0)
    s["report"] = "r"
    assert s["verdict_scope"] == SCOPE_COMPLETE and s["near_copies"]["25"] == int(cert.flags[:, 0].sum())
    lines = summary_lines(s)
    verdicts = [ln for ln in lines if ln.startswith("verdict at")]
    assert lines[0] == verdicts[0] and verdicts[0].startswith("verdict at γ = 25 dB: ")
    assert verdicts[1].startswith("verdict at γ = 30 dB: ")
    at = next(i for i, ln in enumerate(lines) if ln.startswith("reachable images:"))
    assert lines[at] == f"reachable images: {k} (listed {k}; {s['training_latents_listed']} are training latents)"
    mass = attr_json(cert, "memorization_mass")["25"]
    assert lines[at + 1] == (f"γ = 25 dB: UIR {attr_json(cert, 'uir')['25']:.3f}, M-UIR {attr_json(cert, 'm_uir')['25']:.3f}, "
                        f"near-copies {int(cert.flags[:, 0].sum())}, memorization mass {mass:.4f}")
    assert verdict_words(cert.attrs, 25.0).startswith("complete")


def test_summary_of_a_count_only_certificate_says_not_examined(inputs):
    E, model, train = inputs
    cert = certify(Inputs(E, model, train), EnumerateConfig(count_only=True, gammas=GAMMAS))
    s = make_summary(cert, E.latents, CertifyConfig(), None, 0.0)
    s["report"] = "r"
    assert s["verdict_scope"] == SCOPE_NOT_EXAMINED
    for key in ("near_copies", "uir", "m_uir", "memorization_mass"):
        assert s[key] == {"25": None, "30": None}, key
    assert s["scope_words"] == {"25": verdict_words(cert.attrs, 25.0), "30": verdict_words(cert.attrs, 30.0)}
    for g in ("25", "30"):                            # the verdict block says it first, in the same words
        v = s["verdict"]["per_gamma"][g]
        assert v["status"] == "not-examined" and v["near_copies"] is None and v["memorization_mass"] is None
        assert v["sentence"] == s["scope_words"][g]
    assert s["audit"] is None and "nothing was listed" in s["audit_absent"]
    lines = summary_lines(s)
    assert lines[0] == f"verdict at γ = 25 dB: NOT EXAMINED — {s['scope_words']['25']}"
    text = "\n".join(lines)
    assert f"γ = 30 dB: {s['scope_words']['30']}" in text and "no audit.json" in text
    assert not FALSE_CLEAR.search(text), text


def test_number_map_attributes_accept_null():
    from fscert.h5input import check_attrs

    kinds = {"memorization_mass": "number-map"}
    check_attrs("f", {"memorization_mass": '{"25": null, "30": 0.5}'}, kinds)
    for bad in ('{"25": "0"}', '{"25": [0]}', "[null]"):
        with pytest.raises(FscertError, match="numbers or nulls"):
            check_attrs("f", {"memorization_mass": bad}, kinds)


def test_scope_is_never_complete_without_a_complete_listing():
    base = {"reachable_count": "10", "listed_count": 0, "count_only": True}
    assert verdict_scope(base) == SCOPE_NOT_EXAMINED                              # a file written before the attribute
    assert verdict_scope({**base, "verdict_scope": SCOPE_COMPLETE}) == SCOPE_NOT_EXAMINED      # a false claim
    assert verdict_scope({"reachable_count": "10", "listed_count": 4, "count_only": False}) == SCOPE_NOT_EXAMINED
    assert verdict_scope({"reachable_count": "10", "listed_count": 10, "count_only": False}) == SCOPE_COMPLETE
    words = verdict_words({**base, "verdict_scope": "bounds"}, 25.0)             # a scope this fscert does not know
    assert "NOT SHOWN" in words and "'bounds'" in words
    big = verdict_words({**base, "reachable_count": str(75 * 10**17),
                         "config": json.dumps({"max_images": 100})}, 25.0)
    assert not_examined(big) and "7.5e+18 reachable images" in big and "--max-images than 100" in big


# ----------------------------------------------------------------------------- report


def report_parts(out):
    html = (out / "index.html").read_text(encoding="utf-8")
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return html, s


def assert_report_not_examined(html: str, s: dict, n_gammas: int) -> None:
    assert s["verdict_scope"] == SCOPE_NOT_EXAMINED and len(s["per_gamma"]) == n_gammas
    for j, row in enumerate(s["per_gamma"]):
        assert row["near_copies"] is None and row["uir"] is None and row["m_uir"] is None
        assert row["memorization_mass"] is None and "NOT EXAMINED" in row["scope_words"]
        assert f'id="hdr-copies-{j}">not examined<' in html
        assert f'id="scope-{j}">γ = ' in html
        assert f'id="verdict-{j}" data-status="not-examined"><span class="badge undecided">NOT EXAMINED</span>' in html
    assert 'id="verdict"' in html and 'id="metrics"' not in html and 'id="training-view"' not in html
    assert "<td>0</td>" not in html and "0.0000" not in html and not FALSE_CLEAR.search(html)


def test_report_of_a_count_only_certificate(inputs, tmp_path):
    E, model, train = inputs
    cert = certify(Inputs(E, model, train), EnumerateConfig(count_only=True, gammas=GAMMAS))
    write_certificate(tmp_path / "c.h5", cert)
    build_report(tmp_path / "c.h5", tmp_path / "rep", train_images=train)
    html, s = report_parts(tmp_path / "rep")
    assert_report_not_examined(html, s, 2)
    assert s["per_gamma"][0]["scope_words"] == verdict_words(cert.attrs, 25.0)
    assert "none was decoded or compared" in html


def test_report_of_an_old_count_only_file_with_zero_figures(tmp_path):
    """A count-only file written before verdict_scope existed, with 0 stored as its figures."""
    cert, train = make_certificate(k=0, reachable=10**40)
    assert cert.attrs["count_only"] and json.loads(cert.attrs["memorization_mass"]) == {"20": 0.0, "30": 0.0}
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = report_parts(tmp_path / "rep")
    assert_report_not_examined(html, s, 2)
    assert "1e+40 reachable images were counted" in html


def test_report_of_a_partial_listing(tmp_path):
    cert, train = make_certificate(k=50, reachable=10**40)
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = report_parts(tmp_path / "rep")
    assert s["verdict_scope"] == SCOPE_NOT_EXAMINED and all(row["memorization_mass"] is None for row in s["per_gamma"])
    assert "only 50 of the 1e+40 reachable images were listed" in html and 'id="metrics"' not in html
    assert 'id="hdr-copies-0">not examined<' in html


def test_report_of_a_complete_listing_shows_figures(tmp_path):
    cert, train = make_certificate(k=50)
    build_report(cert, tmp_path / "rep", train_images=train)
    html, s = report_parts(tmp_path / "rep")
    assert s["verdict_scope"] == SCOPE_COMPLETE and 'id="metrics"' in html and 'id="scope-note"' not in html
    assert f'id="hdr-copies-0">{int(cert.flags[:, 0].sum())}<' in html
    assert s["per_gamma"][0]["memorization_mass"] == json.loads(cert.attrs["memorization_mass"])["20"]


# ----------------------------------------------------------------------------- CLI


def test_enumerate_count_only_cli(inputs, tmp_path):
    from fscert.autoencoder import save_model

    E, model, _ = inputs
    save_model(model, tmp_path / "m.pt")
    write_latents(tmp_path / "e.h5", E.latents)
    common = ["--latents", tmp_path / "e.h5", "--rho", 1, "--model", tmp_path / "m.pt", "--train", "mnist",
              "--limit", 8]
    r = invoke("enumerate", *common, "--count-only", "--out", tmp_path / "c.h5")
    assert r.exit_code == 0, r.output
    cert = read_certificate(tmp_path / "c.h5")
    assert_no_figures(cert)
    for g in ("25", "30"):
        assert f"  γ = {g}: {verdict_words(cert.attrs, float(g))}" in r.output
    assert not FALSE_CLEAR.search(r.output), r.output
    r = invoke("verify", tmp_path / "c.h5", "--model", tmp_path / "m.pt", "--train", "mnist",
               "--latents", tmp_path / "e.h5")
    assert r.exit_code == 0 and r.output.startswith("verified"), r.output
    r = invoke("enumerate", *common, "--out", tmp_path / "full.h5")                 # complete: figures as before
    assert r.exit_code == 0 and "memorization mass" in r.output and "NOT EXAMINED" not in r.output, r.output
    assert read_certificate(tmp_path / "full.h5").attrs["verdict_scope"] == SCOPE_COMPLETE


@pytest.fixture(scope="module")
def certify_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nfc") / "run"
    r = invoke("certify", "mnist", "--out", out, "--n-train", 8, "--epochs", 2, "--finetune-epochs", 1,
               "--draw-finetune-epochs", 1, "--hidden", 16, "--trials", 2, "--rho", 4, "--max-images", 1)
    assert r.exit_code == 0, r.output
    return out, r.output


def test_certify_above_max_images_searches_instead(certify_run):
    """Above --max-images, certify searches every training image's near-copies without listing:
    the figures are proven (exact or certified intervals) and worded as such, never a bare 0."""
    out, output = certify_run
    cert = read_certificate(out / "cert.h5")
    assert cert.attrs["verdict_scope"] == "searched" and not cert.attrs["count_only"]
    assert cert.attrs["listed_count"] == 0 and not (out / "audit.json").exists()
    exact = attr_json(cert, "near_copy_exact")
    for g in (25.0, 30.0):
        words = verdict_words(cert.attrs, g)
        assert words.startswith("searched every one of the") and f"γ = {g:g} dB: {words}" in output
        k = str(int(g))
        mass = attr_json(cert, "memorization_mass")[k]
        assert (mass is not None) == exact[k]                  # a number only where it is proven
        assert "(exact)" in words if exact[k] else "certified interval" in words
    s = json.loads((out / "summary.json").read_text())
    assert s["verdict_scope"] == "searched" and s["scope_words"]["25"] == verdict_words(cert.attrs, 25.0)
    assert output.index("\nverdict at γ = 25 dB: ") < output.index("\nreachable images:")   # the verdict opens the summary
    for g in ("25", "30"):
        v = s["verdict"]["per_gamma"][g]
        assert v["status"] != "novel" or v["decidable"] is True           # never novel where not decidable
        assert s["near_copies"][g] is None or exact[g]                    # an interval is never one number
    assert s["audit"] is None and "searched for near-copies" in s["audit_absent"]
    html = (out / "report" / "index.html").read_text()
    assert "searched every one of the" in html


def test_certify_count_only_certificate_verifies(certify_run):
    out, _ = certify_run
    r = invoke("verify", out / "cert.h5", "--model", out / "model_ft.pt", "--train", "mnist",
               "--latents", out / "empirical.h5")
    assert r.exit_code == 0, r.output
