"""The verdict an auditor reads first (issue 12 item 6): one sentence per γ with the counts of
near-copies, the decoder's fidelity floor, what the certificate guarantees and what it
assumes, and the held-out baseline.

Every reader (``fscert certify``'s summary lines, ``summary.json``'s ``verdict`` block, the
HTML report) uses :func:`statement`, so the wording lives here. Guarantees:

* **No false all-clear.** A γ is reported as free of near-copies (status ``novel``) only
  when the certificate proves that no reachable image is within γ dB of a training image
  (scope "complete" with its flags, or "searched" with an exact zero) *and* the decoder's
  fidelity record says that γ is decidable (the decoder reproduces the training images at a
  median PSNR ≥ γ). Where the decoder cannot reach γ the status is ``not-decidable``; where
  the fidelity record is absent (certificates written before it existed) the status is
  ``fidelity-unknown``; neither is ever worded as novel.
* **Counts with rates.** Every sentence gives how many of the reachable images are
  near-copies (exact, or a certified [low, high]) beside the probability that one output is.
* **Nothing not computed is a number.** An absent figure reads "unknown" or "not recorded",
  never 0; the statement holds only plain JSON values (``None`` where unknown).
* Per image, :func:`fscert.decidability.badge_codes` gives the same rule: "novel" only where the image is not a
  near-copy, γ is decidable, and its nearest training image's own reconstruction reaches γ
  (when the certificate records the reconstruction PSNR).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .certificate import Certificate, attr_json
from .decidability import decidable_at, fidelity_record, fidelity_unknown, fidelity_words
from .figure_words import (count_in_words, db, exact_int, fig, finite, gamma_lookup, gname, interval, psnr_value,
                           sentence_case)
from .verdict import (SCOPE_COMPLETE, SCOPE_NOT_EXAMINED, SCOPE_SEARCHED, verdict_scope, verdict_words)

STATUS_COPIES = "copies"                    # near-copies proven to exist
STATUS_NOVEL = "novel"                      # proven none, and the decoder can reach γ
STATUS_NOT_DECIDABLE = "not-decidable"      # none found, but the decoder cannot reach γ
STATUS_FIDELITY_UNKNOWN = "fidelity-unknown"  # none found, the decoder's fidelity is not recorded
STATUS_UNRESOLVED = "unresolved"            # a certified interval that contains 0 and more
STATUS_NOT_EXAMINED = "not-examined"        # the certificate does not cover every reachable image
STATUS_NOT_SHOWN = "not-shown"              # unknown scope, or the figures are missing
LABELS = {STATUS_COPIES: "NEAR-COPIES", STATUS_NOVEL: "NO NEAR-COPIES", STATUS_NOT_DECIDABLE: "NOT DECIDABLE",
          STATUS_FIDELITY_UNKNOWN: "NO NEAR-COPY FOUND, FIDELITY UNKNOWN", STATUS_UNRESOLVED: "UNRESOLVED",
          STATUS_NOT_EXAMINED: "NOT EXAMINED", STATUS_NOT_SHOWN: "NOT SHOWN"}

RECON_MEANS = ("Near-copies of the training images compare each output with the training image itself. Near-copies "
               "of the reconstructions compare it with the decoder's reconstruction of each training image (the "
               "image the decoder makes from that training image's own latent), the closest this decoder can come "
               "to it. A decoder that blurs can reproduce a training image's latent exactly and still stay below γ "
               "against the raw image: such copies show only in the reconstruction column.")
PSNR_LIMITS = ("A near-copy means PSNR ≥ γ on pixel values: an output that is a shifted, flipped or recoloured "
               "copy, or close to a training image only perceptually or in a feature space, is not counted.")
NO_BASELINE = ("No held-out baseline given: the certificate holds no measurement of how close genuinely new images "
               "(held-out real images the generator never saw) come to the training images, so the counts above "
               "cannot be read against one.")


# ----------------------------------------------------------------------------- per γ


def _complete_figures(cert: Certificate, j: int, g: float) -> dict[str, Any]:
    """Exact figures of a complete listing at γ (None where the certificate lacks them)."""
    flags = cert.flags
    if flags is None or flags.ndim != 2 or flags.shape[1] <= j:
        return {"low": None, "high": None, "exact": False, "mass_low": None, "mass_high": None}
    c = int(flags[:, j].sum())
    mass = finite(gamma_lookup(attr_json(cert, "memorization_mass", {}), g))
    if mass is None:
        mass = float(math.fsum(np.asarray(cert.prob, np.float64)[flags[:, j].astype(bool)].tolist()))
    return {"low": c, "high": c, "exact": True, "mass_low": mass, "mass_high": mass}


def _searched_figures(cert: Certificate, g: float) -> dict[str, Any]:
    """A searched certificate's proven figures at γ: exact, or [low, high] (None: unknown)."""
    def entry(key: str) -> Any:
        return gamma_lookup(attr_json(cert, key, {}), g)

    lo, hi = exact_int(entry("near_copy_count_low")), exact_int(entry("near_copy_count_high"))
    mlo, mhi = finite(entry("memorization_mass_low")), finite(entry("memorization_mass_high"))
    exact = bool(entry("near_copy_exact")) and lo is not None and mlo is not None
    return {"low": lo, "high": lo if exact else hi, "exact": exact, "mass_low": mlo,
            "mass_high": mlo if exact else mhi, "reason": entry("near_copy_reason")}


def _copies_sentence(f: dict[str, Any], reach: int | None, reach_text: str, g: float) -> str:
    """"C of the N possible outputs are within γ dB of a training image; … probability p (exact)"."""
    lo, hi, exact = f["low"], f["high"], f["exact"]
    if exact and reach is not None and lo == reach:
        head = f"every possible output (all {reach_text}) is within {gname(g)} dB of a training image"
    elif exact:
        head = (f"{count_in_words(lo)} of the {reach_text} possible outputs "
                f"{'is' if lo == 1 else 'are'} within {gname(g)} dB of a training image")
    elif hi is None:
        head = (f"at least {count_in_words(lo)} of the {reach_text} possible outputs are within {gname(g)} dB of a "
                f"training image (the upper end is unknown)")
    else:
        head = (f"between {count_in_words(lo)} and {count_in_words(hi)} of the {reach_text} possible outputs are "
                f"within {gname(g)} dB of a training image")
    mlo, mhi = f["mass_low"], f["mass_high"]
    if mlo is None:
        mass = "the probability that an output is one is unknown"
    elif exact or mlo == mhi:
        mass = f"an output is within {gname(g)} dB of one with probability {fig(mlo)} (exact)"
    elif mhi is None:
        mass = f"an output is within {gname(g)} dB of one with probability in [{fig(mlo)}, 1] (upper end unknown)"
    else:
        mass = (f"an output is within {gname(g)} dB of one with probability in {interval(mlo, mhi)} "
                f"(certified interval)")
    return f"{head}; {mass}"


def gamma_statement(cert: Certificate, j: int, g: float, fid: dict | None) -> dict[str, Any]:
    """The verdict at one γ: status, label, sentence, figures (plain JSON values)."""
    scope = verdict_scope(cert.attrs)
    reach_raw = cert.attrs.get("reachable_count")
    reach = exact_int(reach_raw)
    reach_text = count_in_words(reach_raw) if reach is not None else "unknown number of"
    d = decidable_at(fid, g)
    med = psnr_value(fid.get("psnr_median")) if fid else None
    out: dict[str, Any] = {"gamma": float(g), "scope": scope, "decidable": d, "near_copies": None,
                           "memorization_mass": None, "scope_words": verdict_words(cert.attrs, g)}
    if scope == SCOPE_COMPLETE:
        f = _complete_figures(cert, j, g)
    elif scope == SCOPE_SEARCHED:
        f = _searched_figures(cert, g)
    else:
        status = STATUS_NOT_EXAMINED if scope == SCOPE_NOT_EXAMINED else STATUS_NOT_SHOWN
        out.update(status=status, label=LABELS[status], sentence=out["scope_words"])
        out["recon"] = _recon(cert, g, available=False)
        return out
    out["near_copies"] = {"low": f["low"], "high": f["high"], "exact": f["exact"], "of": str(reach_raw)}
    out["memorization_mass"] = {"low": f["mass_low"], "high": f["mass_high"], "exact": f["exact"]}
    floor = (f"the decoder reproduces the training images at a median {db(med)}" if med is not None
             else "the decoder cannot reproduce the training images at this γ")
    if f["low"] is None:
        status, sentence = STATUS_NOT_SHOWN, f"the near-copy figures at {gname(g)} dB are missing (unknown)"
    elif f["low"] > 0:
        status, sentence = STATUS_COPIES, _copies_sentence(f, reach, reach_text, g)
        if d is False:
            sentence += (f". This is a lower bound: {floor}, so at γ = {gname(g)} dB more copying may be hidden "
                         f"(novelty NOT DECIDABLE)")
    elif not f["exact"]:
        status = STATUS_UNRESOLVED
        sentence = (_copies_sentence(f, reach, reach_text, g)
                    + "; the certificate neither proves nor rules out near-copies at this γ")
    else:
        none = (f"no possible output is within {gname(g)} dB of a training image (all {reach_text} "
                f"{'checked' if scope == SCOPE_COMPLETE else 'searched'}, exact)")
        if d is True:
            reach_share = finite(gamma_lookup(fid.get("reach"), g)) if fid else None
            status, sentence = STATUS_NOVEL, none
            if med is not None:
                sentence += f", and the decoder reproduces the training images at a median {db(med)}, so it could have"
            if reach_share is not None and reach_share < 1.0:
                sentence += (f"; only {100 * reach_share:.1f} % of the training images' own reconstructions reach "
                             f"{gname(g)} dB, so for the others no verdict is possible")
        elif d is False:
            status = STATUS_NOT_DECIDABLE
            sentence = f"{none}, but {floor}; at γ = {gname(g)} dB no verdict is possible with this decoder"
        else:
            status = STATUS_FIDELITY_UNKNOWN
            why = fidelity_unknown(fid) or "this γ is not in its record"
            sentence = f"{none}, but the decoder's fidelity floor is unknown ({why}), so this does not show that the outputs are novel"
    out.update(status=status, label=LABELS[status], sentence=sentence)
    out["recon"] = _recon(cert, g, available=True)
    return out


def _recon(cert: Certificate, g: float, available: bool) -> dict[str, Any]:
    """Near-copies of the decoder's reconstructions of the training images at γ: the exact count and
    mass (``recon_near_copies``, ``recon_memorization_mass``), else the searched interval or the
    reason in ``recon_verdict``; None where not established, never 0."""
    count = exact_int(gamma_lookup(attr_json(cert, "recon_near_copies", {}), g)) if available else None
    mass = finite(gamma_lookup(attr_json(cert, "recon_memorization_mass", {}), g)) if available else None
    rv = attr_json(cert, "recon_verdict")
    rv = rv if isinstance(rv, dict) else {}
    what = f"within {gname(g)} dB of the decoder's reconstruction of a training image"
    per = gamma_lookup(rv.get("per_gamma"), g)
    low = high = None
    if count is not None:
        m = "unknown" if mass is None else f"{fig(mass)} (exact)"
        words = f"{count_in_words(count)} possible output{'' if count == 1 else 's'} {what}; probability {m}"
    elif isinstance(per, dict) and exact_int(per.get("count_low")) is not None:
        low, high = exact_int(per.get("count_low")), exact_int(per.get("count_high"))
        mlo, mhi = finite(per.get("mass_low")), finite(per.get("mass_high"))
        c = (f"between {count_in_words(low)} and {count_in_words(high)}" if high is not None
             else f"at least {count_in_words(low)}")
        m = ("unknown" if mlo is None else f"in [{fig(mlo)}, 1] (upper end unknown)" if mhi is None
             else f"{fig(mlo)} (exact)" if mlo == mhi else f"in {interval(mlo, mhi)} (certified interval)")
        words = f"{c} possible outputs {what}; probability {m}"
    else:
        said = rv.get("words")
        words = (f"unknown ({said})" if isinstance(said, str) and said else "not recorded (unknown)")
    return {"near_copies": count, "memorization_mass": mass, "near_copies_low": low, "near_copies_high": high,
            "words": words}


# ----------------------------------------------------------------------------- guarantees, assumptions


def guarantee_words(cert: Certificate) -> list[str]:
    """What the certificate guarantees, by scope."""
    a = cert.attrs
    scope = verdict_scope(a)
    reach = count_in_words(a.get("reachable_count", "unknown"))
    if scope == SCOPE_COMPLETE and cert.gammas:
        first = (f"Every one of the {reach} images this generator can produce was listed with its exact "
                 f"probability, decoded and compared with every training image: the counts and probabilities are "
                 f"exact, not estimates from samples.")
    elif scope == SCOPE_COMPLETE:
        first = (f"Every one of the {reach} images this generator can produce was listed with its exact probability; "
                 f"none was decoded or compared (the certificate was made without a model), so it says nothing about "
                 f"memorization.")
    elif scope == SCOPE_SEARCHED:
        first = (f"Every one of the {reach} images this generator can produce was examined by the near-copy search "
                 f"without listing them: each figure is exact, or a certified interval [low, high] proven to contain "
                 f"the true value.")
    else:
        first = (f"The number of images this generator can produce ({reach}) is exact, but not every one was "
                 f"examined: the certificate guarantees nothing about memorization.")
    return [first, "The figures can be re-derived from the inputs with `fscert verify` (hashes, enumeration, decoding)."]


def assumption_words(cert: Certificate) -> list[str]:
    """What the figures are relative to: the drawn set E, the dead-end renormalisation, the
    comparison geometry, and what PSNR does not see."""
    a = cert.attrs
    out: list[str] = []
    if a.get("mode") == "full-support":
        out.append("The generator certified samples the full support of its latents (every ±1 latent with the "
                   "recorded τ and κ); every figure is relative to that sampler.")
    else:
        t, total, rows = exact_int(a.get("trials")), exact_int(a.get("empirical_total")), exact_int(a.get("empirical_rows"))
        n = total // t if t and total is not None and total % t == 0 else None
        nt = (f"N·T = {n}·{t} = {total} samples" if n is not None else
              f"{total} samples" if total is not None else "an unrecorded number of samples")
        trials = f"T = {t} Rademacher trials of each of the N = {n} training latents" if n is not None else \
            "T Rademacher trials of each training latent (T not recorded)"
        distinct = f", {rows} distinct latents" if rows is not None else ""
        out.append(f"Relative to the drawn set E of {nt} ({trials}{distinct}): the generator certified is the FS-LAR "
                   f"sampler over this E; another draw of E is another generator, with another certificate.")
    dead = finite(a.get("dead_end_mass"))
    if dead is None:
        out.append("The dead-end mass is not recorded (unknown), so it is unknown how much of the sampler's runs the "
                   "probabilities leave out.")
    elif dead > 0:
        out.append(f"Probabilities are renormalised over a dead-end mass of {fig(dead)}: {100 * dead:.2f} % of sampler "
                   f"runs reach a state with no compatible continuation and are discarded; the figures describe the "
                   f"outputs of the runs that complete.")
    else:
        out.append("No sampler run reaches a dead end (dead-end mass 0): the probabilities need no renormalisation.")
    geo = attr_json(cert, "geometry")
    words = geo.get("words") if isinstance(geo, dict) else None
    out.append(sentence_case(str(words)) if words else "The comparison geometry (the size at which outputs and training images are "
                                        "compared) is not recorded in this certificate (unknown).")
    out.append(PSNR_LIMITS)
    return out


def baseline_words(cert: Certificate) -> str:
    """The held-out baseline in words, or that none was given."""
    b = attr_json(cert, "baseline")
    if b is None or b == "" or b == {}:
        return NO_BASELINE
    if isinstance(b, dict) and isinstance(b.get("words"), str) and b["words"].strip():
        return sentence_case(b["words"])
    return f"Held-out baseline (as recorded): {b}"


# ----------------------------------------------------------------------------- the statement


def statement(cert: Certificate) -> dict[str, Any]:
    """The whole verdict block (``summary.json``'s ``verdict``): ``per_gamma`` (γ key → the
    verdict at γ, :func:`gamma_statement`), ``fidelity`` (the record and its words), ``guarantees``,
    ``assumptions``, ``baseline``, ``recon_means`` and ``headline`` (one line over every γ)."""
    from .audit import gamma_key

    fid = fidelity_record(cert)
    gammas = cert.gammas
    per = {gamma_key(g): gamma_statement(cert, j, g, fid) for j, g in enumerate(gammas)}
    if per:
        headline = "; ".join(f"γ = {gname(v['gamma'])} dB: {v['label']}" for v in per.values())
    else:
        headline = "no thresholds γ: the certificate was made without a model, so no image was compared"
    return {"headline": headline, "per_gamma": per,
            "fidelity": {"recorded": fidelity_unknown(fid) is None, "words": fidelity_words(fid, gammas),
                         "median_psnr": finite(fid.get("psnr_median")) if fid else None,     # ∞ or unknown: null
                         "median_psnr_text": db(psnr_value(fid.get("psnr_median"))) if fid and psnr_value(
                             fid.get("psnr_median")) is not None else "unknown",
                         "decidable": {k: decidable_at(fid, g) for k, g in zip(per, gammas)}},
            "guarantees": guarantee_words(cert), "assumptions": assumption_words(cert),
            "baseline": baseline_words(cert), "recon_means": RECON_MEANS}


def statement_lines(st: dict[str, Any]) -> list[str]:
    """The statement as the first lines of a CLI summary: the verdict per γ, the fidelity floor,
    guarantees, assumptions and baseline."""
    lines = []
    for v in st["per_gamma"].values():
        lines.append(f"verdict at γ = {gname(v['gamma'])} dB: {v['label']} — {v['sentence']}")
        if v["status"] not in (STATUS_NOT_EXAMINED, STATUS_NOT_SHOWN):
            lines.append(f"  against the decoder's reconstructions: {v['recon']['words']}")
    if not lines:
        lines = [f"verdict: {st['headline']}"]
    lines.append(f"fidelity floor: {st['fidelity']['words']}")
    lines += [f"guarantees: {w}" for w in st["guarantees"]]
    lines += [f"assumes: {w}" for w in st["assumptions"]]
    lines.append(f"baseline: {st['baseline']}")
    return lines
