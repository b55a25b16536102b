"""The verdict an auditor reads first (issue 12 item 6; fscert/verdict_statement.py): per γ a
sentence with the counts of near-copies, the fidelity floor — a γ the decoder cannot reach is
"not decidable", never novel —, guarantees, assumptions, baseline; the same words open
`fscert certify`'s summary lines and summary.json's ``verdict`` block."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fscert.glossary import GLOSSARY
from fscert.certify import CertifyConfig, make_summary, summary_lines
from fscert.verdict import verdict_words
from fscert.decidability import BADGE_COPY, BADGE_NO_COPY_FOUND, BADGE_NOT_DECIDABLE, BADGE_NOVEL, badge_codes
from fscert.verdict_statement import NO_BASELINE, statement, statement_lines
from test_report import add_fidelity, make_certificate
from test_report_search import make_searched

NON_CLEAR = ("not-decidable", "fidelity-unknown", "not-examined", "not-shown", "unresolved")


def listed(psnr_range: tuple[float, float], gammas=(25.0, 30.0), k: int = 60, seed: int = 0):
    """A complete listing whose images' PSNR lie in ``psnr_range`` (figures consistent with it)."""
    cert, train = make_certificate(k=k, n_train=40, gammas=list(gammas), seed=seed)
    rng = np.random.default_rng(seed)
    cert.psnr = rng.uniform(*psnr_range, k)
    cert.flags = cert.psnr[:, None] >= np.asarray(gammas)[None]
    cert.m_uir = ~cert.flags
    keys = [f"{g:g}" for g in gammas]
    cert.attrs["uir"] = json.dumps({kk: float(1 - cert.flags[:, j].mean()) for j, kk in enumerate(keys)})
    cert.attrs["m_uir"] = json.dumps({kk: float(cert.m_uir[:, j].mean()) for j, kk in enumerate(keys)})
    cert.attrs["memorization_mass"] = json.dumps({kk: float(cert.prob[cert.flags[:, j]].sum())
                                                  for j, kk in enumerate(keys)})
    return cert, train


def recon(lo: float, hi: float, n: int = 40, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, n)


# ----------------------------------------------------------------------------- complete listings


def test_complete_listing_counts_copies_with_their_probability():
    cert, _ = listed((10.0, 40.0))
    add_fidelity(cert, recon(31.0, 36.0))                   # sharp decoder: every γ decidable
    st = statement(cert)
    for j, g in enumerate((25, 30)):
        v = st["per_gamma"][str(g)]
        c = int(cert.flags[:, j].sum())
        mass = float(cert.prob[cert.flags[:, j]].sum())
        assert v["status"] == "copies" and v["label"] == "NEAR-COPIES" and v["decidable"] is True
        assert v["near_copies"] == {"low": c, "high": c, "exact": True, "of": "60"}
        assert v["sentence"] == (f"{c} of the 60 possible outputs are within {g} dB of a training image; an output "
                                 f"is within {g} dB of one with probability {mass:.4g} (exact)")
    assert st["headline"] == "γ = 25 dB: NEAR-COPIES; γ = 30 dB: NEAR-COPIES"
    json.dumps(st, allow_nan=False)                          # plain JSON, no NaN


def test_every_output_a_copy():
    cert, _ = listed((31.0, 45.0))
    add_fidelity(cert, recon(31.0, 36.0))
    v = statement(cert)["per_gamma"]["25"]
    assert v["sentence"] == ("every possible output (all 60) is within 25 dB of a training image; an output is "
                             "within 25 dB of one with probability 1 (exact)")


@pytest.mark.parametrize("fidelity", ["sharp", "blurry", "absent", "not computed"])
def test_no_copies_is_novel_only_where_decidable(fidelity):
    cert, _ = listed((5.0, 15.0))                            # no output within 25 dB of a training image
    if fidelity == "sharp":
        add_fidelity(cert, recon(31.0, 36.0))
    elif fidelity == "blurry":
        add_fidelity(cert, recon(15.0, 19.0), median=17.6)
    elif fidelity == "not computed":
        cert.attrs["fidelity"] = json.dumps({"status": "unknown", "reason": "no model given", "psnr_median": None,
                                             "decidable": {"25": None, "30": None}})
    st = statement(cert)
    for g in ("25", "30"):
        v = st["per_gamma"][g]
        assert v["near_copies"]["low"] == 0 and v["sentence"].startswith(
            f"no possible output is within {g} dB of a training image (all 60 checked, exact)")
        if fidelity == "sharp":
            assert v["status"] == "novel" and v["label"] == "NO NEAR-COPIES"
        else:
            assert v["status"] in NON_CLEAR and v["label"] != "NO NEAR-COPIES"
    if fidelity == "blurry":
        v = st["per_gamma"]["25"]
        assert v["status"] == "not-decidable" and v["label"] == "NOT DECIDABLE"
        assert ("but the decoder reproduces the training images at a median 17.6 dB; at γ = 25 dB no verdict is "
                "possible with this decoder") in v["sentence"]
        assert "At γ = 25 dB no verdict is possible with this decoder" in st["fidelity"]["words"]
        assert "NOT DECIDABLE" in st["fidelity"]["words"] and st["fidelity"]["median_psnr"] == 17.6
    if fidelity in ("absent", "not computed"):
        assert st["fidelity"]["recorded"] is False and "unknown" in st["fidelity"]["words"]
        assert st["per_gamma"]["25"]["status"] == "fidelity-unknown"
        assert "does not show that the outputs are novel" in st["per_gamma"]["25"]["sentence"]
    if fidelity == "not computed":
        assert "no model given" in st["fidelity"]["words"]


def test_copies_above_the_fidelity_floor_are_a_lower_bound():
    cert, _ = listed((10.0, 40.0))
    add_fidelity(cert, recon(15.0, 19.0), median=17.6)
    v = statement(cert)["per_gamma"]["30"]
    assert v["status"] == "copies" and v["decidable"] is False
    assert "This is a lower bound: the decoder reproduces the training images at a median 17.6 dB" in v["sentence"]
    assert "(novelty NOT DECIDABLE)" in v["sentence"]


# ----------------------------------------------------------------------------- searched and not examined


def test_searched_exact_and_intervals():
    cert, _ = make_searched(exact=True)
    st = statement(cert)
    lo = json.loads(cert.attrs["near_copy_count_low"])
    for g in ("20", "25"):
        v = st["per_gamma"][g]
        n = int(lo[g])
        assert v["near_copies"]["exact"] and v["near_copies"]["low"] == n
        assert f"{n} of the 7.5·10^18 possible outputs are within {g} dB of a training image" in v["sentence"]
        assert v["sentence"].endswith("(exact)") and v["status"] == "copies"
    cert, _ = make_searched(exact=False)
    hi = json.loads(cert.attrs["near_copy_count_high"])
    mlo, mhi = (json.loads(cert.attrs[k]) for k in ("memorization_mass_low", "memorization_mass_high"))
    v = statement(cert)["per_gamma"]["20"]
    lo = json.loads(cert.attrs["near_copy_count_low"])
    assert f"between {lo['20']} and {hi['20']} of the 7.5·10^18 possible outputs" in v["sentence"]
    assert "(certified interval)" in v["sentence"] and not v["near_copies"]["exact"]
    assert v["memorization_mass"] == {"low": mlo["20"], "high": mhi["20"], "exact": False}
    cert, _ = make_searched(exact=False, unknown=True)
    assert "upper end unknown" in statement(cert)["per_gamma"]["20"]["sentence"]


def test_searched_interval_from_zero_is_unresolved_and_zero_exact_needs_fidelity():
    cert, _ = make_searched(k=0, exact=False, attrs={"near_copy_count_low": json.dumps({"20": "0", "25": "0"}),
                                                     "near_copy_count_high": json.dumps({"20": "9", "25": "9"})})
    st = statement(cert)
    assert {v["status"] for v in st["per_gamma"].values()} == {"unresolved"}
    cert, _ = make_searched(k=0, exact=True)                 # proven: no near-copy at all
    assert {v["status"] for v in statement(cert)["per_gamma"].values()} == {"fidelity-unknown"}
    add_fidelity(cert, recon(10.0, 14.0, n=6))
    assert {v["status"] for v in statement(cert)["per_gamma"].values()} == {"not-decidable"}
    add_fidelity(cert, recon(30.0, 36.0, n=6))
    assert {v["status"] for v in statement(cert)["per_gamma"].values()} == {"novel"}


def test_not_examined_says_so_in_the_scope_words():
    cert, _ = make_certificate(k=50, reachable=10**40)
    add_fidelity(cert, recon(31.0, 36.0))
    for g, v in statement(cert)["per_gamma"].items():
        assert v["status"] == "not-examined" and v["near_copies"] is None and v["memorization_mass"] is None
        assert v["sentence"] == verdict_words(cert.attrs, float(g)) and "NOT EXAMINED" in v["sentence"]


def test_reconstruction_near_copies_exact_interval_or_unknown():
    cert, _ = listed((10.0, 40.0))
    add_fidelity(cert, recon(31.0, 36.0), recon_counts={"25": 7, "30": None})
    per = statement(cert)["per_gamma"]
    assert per["25"]["recon"]["near_copies"] == 7 and "7 possible outputs within 25 dB" in per["25"]["recon"]["words"]
    assert per["30"]["recon"]["near_copies"] is None and "unknown" in per["30"]["recon"]["words"]
    cert.attrs["recon_verdict"] = json.dumps({"scope": "searched", "per_gamma": {"30": {
        "exact": False, "count_low": "3", "count_high": "11", "mass_low": 0.1, "mass_high": 0.2, "reason": "r"}}})
    words = statement(cert)["per_gamma"]["30"]["recon"]["words"]
    assert "between 3 and 11 possible outputs" in words and "[0.1, 0.2] (certified interval)" in words


# ----------------------------------------------------------------------------- per image, assumptions


def test_badge_codes_never_novel_where_not_decidable():
    flags = np.array([[1, 0], [0, 0], [0, 0], [0, 1]], bool)
    nearest = np.array([0, 1, 2, 0])
    rec = np.array([40.0, 20.0, np.nan])                     # training image 1 reconstructs at 20 dB only
    g = [25.0, 30.0]
    codes = badge_codes(flags, nearest, g, [True, False], rec)
    assert codes[0].tolist() == [BADGE_COPY, BADGE_NOT_DECIDABLE, BADGE_NOVEL, BADGE_NOVEL]
    assert codes[1].tolist() == [BADGE_NOT_DECIDABLE, BADGE_NOT_DECIDABLE, BADGE_NOT_DECIDABLE, BADGE_COPY]
    codes = badge_codes(flags, nearest, g, [None, None], None)
    assert set(codes[~flags.T].tolist()) == {BADGE_NO_COPY_FOUND}
    rng = np.random.default_rng(0)
    for _ in range(20):                                      # the rule, on random inputs
        f = rng.random((30, 2)) < 0.3
        near = rng.integers(0, 5, 30)
        dec = [bool(rng.random() < 0.5), None]
        c = badge_codes(f, near, g, dec, rng.uniform(15, 40, 5))
        assert not (c[0] == BADGE_NOVEL).any() if dec[0] is False else True
        assert ((c == BADGE_COPY) == f.T).all()


def test_guarantees_assumptions_and_baseline():
    cert, _ = listed((10.0, 40.0))
    st = statement(cert)                                      # nothing recorded: unknown, never 0
    assert "comparison geometry" in " ".join(st["assumptions"]) and "not recorded" in " ".join(st["assumptions"])
    assert st["baseline"] == NO_BASELINE and st["baseline"].startswith("No held-out baseline given")
    assert "T not recorded" in st["assumptions"][0]
    add_fidelity(cert, recon(31.0, 36.0), geometry="images are compared at their stored size 28×28")
    st = statement(cert)
    assert st["assumptions"][0].startswith("Relative to the drawn set E of N·T = 40·10 = 400 samples")
    assert "renormalised over a dead-end mass of 0.125" in st["assumptions"][1]
    assert "Images are compared at their stored size 28×28." in st["assumptions"]
    assert st["guarantees"][0].startswith("Every one of the 60 images this generator can produce was listed")
    cert.attrs["baseline"] = json.dumps({"words": "held-out images: UIR 0.99 at 25 dB"})
    assert statement(cert)["baseline"] == "Held-out images: UIR 0.99 at 25 dB."


# ----------------------------------------------------------------------------- summary.json and the CLI lines


def test_summary_opens_with_the_verdict():
    cert, _ = listed((5.0, 15.0))
    add_fidelity(cert, recon(15.0, 19.0), median=17.6, recon_counts={"25": 0, "30": 0})
    s = make_summary(cert, cert.latents[:5], CertifyConfig(), None, 0.0)
    s["report"] = "r/index.html"
    json.dumps(s, allow_nan=False)
    assert s["verdict"]["per_gamma"]["25"]["status"] == "not-decidable"
    assert [t["term"] for t in s["glossary"]][:3] == ["reachable images", "γ", "PSNR"]
    lines = summary_lines(s)
    assert lines[0].startswith("verdict at γ = 25 dB: NOT DECIDABLE — no possible output is within 25 dB")
    assert lines[1].startswith("  against the decoder's reconstructions: 0 possible outputs within 25 dB")
    for head in ("fidelity floor: The decoder reproduces the 40 training images at a median 17.6 dB", "guarantees: ",
                 "assumes: Relative to the drawn set E", "baseline: No held-out baseline given"):
        assert any(ln.startswith(head) for ln in lines), head
    assert lines.index(next(ln for ln in lines if ln.startswith("reachable images:"))) > 5
    assert "novel" not in "\n".join(lines).lower().replace("outputs are novel", "")
    assert statement_lines(s["verdict"])[0] == lines[0]
    at = lines.index("terms:")                                # every term used, with its meaning, at the end
    assert lines[at + 1:] == [f"  {t['term']}: {t['meaning']}" for t in s["glossary"]]
    assert "  fidelity floor: " + GLOSSARY["fidelity floor"] in lines and lines[at - 1] == "report: r/index.html"


def test_summary_of_a_searched_certificate_has_no_false_numbers():
    cert, _ = make_searched(exact=False, unknown=True)
    s = make_summary(cert, np.zeros((6, 2, 4, 4), np.int8), CertifyConfig(), None, 0.0)
    s["report"] = "r"
    json.dumps(s, allow_nan=False)                            # unknown ends are null, not NaN
    assert s["near_copies"] == {"20": None, "25": None}       # intervals are never one number
    assert any(r["exposure_high"] is None for r in s["most_exposed"]["20"]) or not s["most_exposed"]["20"]
    text = "\n".join(summary_lines(s))
    assert "nan" not in text.lower() and "certified interval" in text


def test_identical_reconstructions_are_infinite_psnr_not_unknown():
    cert, _ = listed((5.0, 15.0))
    rec = np.full(40, np.inf)
    rec[:5] = 20.0
    add_fidelity(cert, rec)                                   # median ∞: the decoder reproduces most exactly
    st = statement(cert)
    json.dumps(st, allow_nan=False)
    assert st["fidelity"]["recorded"] is True and st["fidelity"]["median_psnr"] is None
    assert st["fidelity"]["median_psnr_text"] == "∞ dB (identical)"
    assert "at a median ∞ dB (identical) PSNR" in st["fidelity"]["words"]
    assert {v["status"] for v in st["per_gamma"].values()} == {"novel"}
    codes = badge_codes(cert.flags, cert.nearest_train, cert.gammas, [True, True], rec)
    assert ((codes == BADGE_NOT_DECIDABLE) == (cert.nearest_train < 5)[None]).all()   # those reconstruct at 20 dB
