"""The audit's figures in plain words: a verdict per γ, the peers' meaning, the glossary.

Every sentence gives counts ("100 of 200 generated images (50 %)"), never a rate alone, and
puts the held-out real images' figure (the baseline) beside the generated one. A figure that
was not computed is written "unknown" with the reason, never 0. Percentages are never
rounded to 0 % or 100 % unless the count is exactly none or all (:func:`pct`).

Used by :func:`fscert.audit.audit` (the ``verdict``, ``peers`` and ``glossary`` keys of its
report), by the CLI summary (:func:`summary_lines`) and by the HTML report.
"""
from __future__ import annotations


from . import figure_words
from .figure_words import gname
from .glossary import terms

#: C_T beyond ±this is read as data copying (below) or under-fitting (above), as in Meehan et al.
CT_LIMIT = 2.0
HELD_OUT = "held-out real images"


def pct(k: int, n: int) -> str:
    """``k`` of ``n`` as a percentage in words: "50 %", "33.3 %", "< 0.1 %", "> 99.9 %"; 0 % and
    100 % only for none and all."""
    if n <= 0:
        return "unknown"
    if k == 0 or k == n:
        return f"{100 * k // n} %"
    p = 100.0 * k / n
    if p < 0.1:
        return "< 0.1 %"
    if p > 99.9:
        return "> 99.9 %"
    text = f"{p:.1f}".removesuffix(".0")
    return f"{text} %"


def of(k: int, n: int) -> str:
    """"k of n (p %)"."""
    return f"{k:,} of {n:,} ({pct(k, n)})"


def db(v: float | None) -> str:
    """A PSNR for people: "31.2 dB", "∞ dB (identical)", or "unknown" for None."""
    return "unknown" if v is None else figure_words.db(v)


def verdict(result: dict) -> dict:
    """``{"headline", "sentences", "per_gamma"}``: per γ, the near-copies among the generated
    images (count, total, rate) beside the held-out real images' (or "unknown")."""
    from .audit import gamma_key

    base = result["baseline"]
    known = base.get("status") == "computed"
    n_gen = result["n_generated"]
    rows, sentences = [], []
    for g in result["params"]["gammas"]:
        k = gamma_key(g)
        c = result["counts"][k]
        row = {"gamma": g, "generated": {"near_copies": c["near_copies"], "n": c["n"],
                                         "rate": c["near_copies"] / c["n"]}}
        text = (f"γ = {gname(g)} dB: generated images: {of(c['near_copies'], c['n'])} are near-copies of a "
                f"training image (PSNR ≥ {gname(g)} dB); ")
        if known:
            b = base["counts"][k]
            row["held_out"] = {"near_copies": b["near_copies"], "n": b["n"], "rate": b["near_copies"] / b["n"]}
            r_gen, r_base = row["generated"]["rate"], row["held_out"]["rate"]
            how = "more often than" if r_gen > r_base else ("less often than" if r_gen < r_base else "as often as")
            row["comparison"] = how
            text += (f"{HELD_OUT}: {of(b['near_copies'], b['n'])}. Generated images are near-copies {how} "
                     f"real images the generator never saw.")
        else:
            row["held_out"] = "unknown"
            text += f"{HELD_OUT}: unknown (no --test set given, so there is no baseline)."
        row["sentence"] = text
        rows.append(row)
        sentences.append(text)
    headline = (f"{n_gen:,} generated images compared with {result['n_train']:,} training images"
                + (f"; baseline: {base['n']:,} {HELD_OUT}." if known else "; baseline: unknown (no held-out real images)."))
    return {"headline": headline, "sentences": sentences, "per_gamma": rows}


def _ct_words(ct: dict) -> str:
    z = ct.get("z")
    if z is None:
        why = ct.get("skipped") or "no k-means cell holds more than τ of the generated images"
        return f"unknown: {why}"
    if z < -CT_LIMIT:
        text = (f"generated images lie closer to the training set than {HELD_OUT}: data copying "
                f"(z < −{CT_LIMIT:g})")
    elif z > CT_LIMIT:
        text = (f"generated images lie farther from the training set than {HELD_OUT}: under-fitting "
                f"(z > {CT_LIMIT:g})")
    else:
        text = (f"generated images lie about as close to the training set as {HELD_OUT}: no sign of data "
                f"copying (−{CT_LIMIT:g} ≤ z ≤ {CT_LIMIT:g})")
    if ct.get("test_source") == "holdout":
        text += ("; the held-out images were taken from --train (the generator saw them), a weaker test: "
                 "give --test for Meehan's design")
    return text


def peer_words(result: dict) -> dict:
    """Each peer statistic with its value, its baseline and what it means here, in words."""
    base = result["baseline"]
    known = base.get("status") == "computed"
    n = result["n_generated"]
    out: dict = {}
    a = result.get("authpct")
    if a is None:
        out["AuthPct"] = {"value": None, "held_out": None, "words": "unknown: needs at least 2 training images"}
    else:
        b = base.get("authpct") if known else None
        words = (f"generated images: {of(result['n_authentic'], n)} are authentic (farther from their nearest "
                 f"training image than it lies from its own nearest other training image)")
        words += (f"; {HELD_OUT}: {of(base['n_authentic'], base['n'])}" if b is not None else
                  f"; {HELD_OUT}: unknown (no --test)")
        out["AuthPct"] = {"value": a, "held_out": b, "words": words}
    ct = result["ct_test"]
    z = ct.get("z")
    out["C_T"] = {"value": z, "test_source": ct.get("test_source"), "words": _ct_words(ct)}
    r = result["nn_ratio"]
    if "n_below" in r:
        words = (f"generated images: {of(r['n_below'], n)} lie much closer to one training image than to any other "
                 f"(distance ratio < {r['threshold']:.3g})")
        rb = base.get("nn_ratio", {}) if known else {}
        words += (f"; {HELD_OUT}: {of(rb['n_below'], base['n'])}" if "n_below" in rb else
                  f"; {HELD_OUT}: unknown" + ("" if known else " (no --test)"))
        out["NN ratio"] = {"value": r["frac_below"], "count": r["n_below"],
                           "held_out": rb.get("frac_below"), "words": words}
    else:
        out["NN ratio"] = {"value": None, "held_out": None, "words": f"unknown: {r.get('skipped', 'not computed')}"}
    return out


def _has_unknown(result: dict) -> bool:
    peers = result.get("peers") or peer_words(result)
    return result["baseline"].get("status") != "computed" or any(p.get("value") is None for p in peers.values())


def glossary_used(result: dict) -> list[dict]:
    """The glossary entries of the terms the audit's outputs use, as ``{"term", "meaning"}``."""
    names = ["PSNR", "γ", "near-copy", "UIR", "M-UIR", "baseline", "AuthPct", "C_T", "NN ratio"]
    if _has_unknown(result):
        names.append("unknown")
    return [{"term": t, "meaning": m} for t, m in terms(*names)]


def _set_line(what: str, s: dict | None) -> str:
    if not s:
        return f"{what}: none"
    skipped = ", ".join(f"{v} {k}" for k, v in s.get("skipped", {}).items() if v)
    return f"{what}: {s['n']:,} from {s['source']} ({s['order']}{'; skipped ' + skipped if skipped else ''})"


def summary_lines(result: dict, glossary: bool = True) -> list[str]:
    """The CLI summary: the verdict per γ with counts and baseline, the sets and their order, the
    metrics per γ, the peers with their meaning, then the glossary of the terms used."""
    from .audit import gamma_key

    v = result.get("verdict") or verdict(result)
    p = result["params"]
    base = result["baseline"]
    known = base.get("status") == "computed"
    lines = ["verdict: " + v["headline"]] + ["  " + s for s in v["sentences"]]
    sets = result.get("sets") or {}
    lines.append("sets:")
    for key, what in (("generated", "generated"), ("train", "training"), ("test", "held-out (--test)")):
        if key in sets:
            lines.append("  " + _set_line(what, sets[key]))
    lines.append(f"metrics ({p['space']}, {p['dim']:,} values per row; {result['psnr']['n_identical']:,} generated "
                 f"images identical to a training image; median nearest-training PSNR {db(result['psnr']['median'])}"
                 + (f", {HELD_OUT} {db(base['psnr']['median'])}" if known else f", {HELD_OUT} unknown") + "):")
    for g in p["gammas"]:
        k = gamma_key(g)
        c = result["counts"][k]
        line = (f"  γ={k}: UIR {result['uir'][k]:.4f} ({c['unique']:,} of {c['n']:,} not near-copies)  "
                f"M-UIR {result['m_uir'][k]:.4f} ({c['m_uir']:,}; strict {result['m_uir_strict'][k]:.4f}, "
                f"{c['m_uir_strict']:,})")
        if known:
            b = base["counts"][k]
            line += (f"  | held-out: UIR {base['uir'][k]:.4f} ({b['unique']:,} of {b['n']:,})  "
                     f"M-UIR {base['m_uir'][k]:.4f} ({b['m_uir']:,})")
        else:
            line += "  | held-out: unknown"
        lines.append(line)
    peers = result.get("peers") or peer_words(result)
    lines.append("peers:")
    a = peers["AuthPct"]
    lines.append(f"  AuthPct {'unknown' if a['value'] is None else format(a['value'], '.1f') + ' %'}: {a['words']}")
    ct = result["ct_test"]
    if ct.get("z") is None:
        lines.append(f"  C_T: {peers['C_T']['words']}")
    else:
        zt = f"{ct['z']:.2f}".replace("-", "−")
        lines.append(f"  C_T z {zt} ({ct['cells_used']}/{ct['cells']} cells, held-out set: {ct['test_source']}): "
                     f"{peers['C_T']['words']}")
    r = peers["NN ratio"]
    lines.append(f"  NN ratio: {r['words']}")
    if glossary:
        lines.append("terms:")
        lines += [f"  {t['term']}: {t['meaning']}" for t in (result.get("glossary") or glossary_used(result))]
    return lines
