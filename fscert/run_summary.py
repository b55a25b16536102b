"""The summary of a `fscert certify` run: ``OUT/summary.json`` and the lines the command prints.

Both open with the auditor's verdict (:func:`fscert.verdict_statement.statement`: per γ a
sentence with the counts of near-copies, the fidelity floor, guarantees, assumptions and
baseline), then the figures behind it, then a glossary of the terms used (summary.json).
Guarantees: a figure the certificate does not hold is null in summary.json and "unknown" in the
printed lines, never 0 or NaN (summary.json is valid JSON without NaN); an interval is never
given as one number; a γ the decoder cannot reach is never called novel.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .certify import CertifyConfig


def make_summary(cert, z_train: np.ndarray, job: CertifyConfig, audit_res: dict | None, seconds: float) -> dict:
    """The final numbers: the verdict, reachable images, training copies, UIR/M-UIR, memorization
    and dead-end mass.

    ``verdict`` is the auditor's statement (:func:`fscert.verdict_statement.statement`): per γ a
    sentence with the counts of near-copies, the fidelity floor (a γ the decoder cannot reach is
    "not decidable", never novel), guarantees, assumptions and baseline. Where the certificate
    did not examine every reachable image (``verdict_scope`` other than "complete") each per-γ
    figure is null (never 0) and ``scope_words`` says why, in words."""
    from .audit import gamma_key
    from .certificate import attr_json
    from .enumerate import has_figures, verdict_scope, verdict_words
    from .verdict_statement import statement

    keys = {row.tobytes() for row in z_train}
    copies = int(sum(l.tobytes() in keys for l in cert.latents))
    searched = verdict_scope(cert.attrs) == "searched"
    exact = has_figures(cert.attrs) or searched           # searched: the maps hold proven figures or null
    gk = [gamma_key(g) for g in cert.gammas]

    def figures(name: str) -> dict:
        m = attr_json(cert, name, {})
        return m if exact or not isinstance(m, dict) else {k: None for k in m}

    s = {"data": str(job.data), "n_train": int(len(z_train)), "trials": job.trials, "rho": job.rho,
         "tau": job.tau, "kappa": job.kappa,
         "reachable": str(cert.attrs.get("reachable_count")), "listed": int(len(cert.latents)),
         "training_latents_listed": copies,
         "near_copies": near_copy_counts(cert, gk),
         "uir": figures("uir"), "m_uir": figures("m_uir"),
         "memorization_mass": figures("memorization_mass"),
         "dead_end_mass": summary_float(cert.attrs.get("dead_end_mass")),
         "seconds": round(seconds, 1),
         "verdict_scope": verdict_scope(cert.attrs),
         "verdict": statement(cert),
         "scope_words": {k: verdict_words(cert.attrs, g) for k, g in zip(gk, cert.gammas)}}
    geo = attr_json(cert, "geometry", None)
    stored = geo.get("stored_hw") if isinstance(geo, dict) else None
    fit = getattr(job, "fit", None)
    s["images"] = fit.words(tuple(stored)) if fit is not None and stored else None
    s["latent_shape"] = "×".join(map(str, cert.latents.shape[1:]))
    if searched:
        s.update(search_summary(cert))
    if audit_res:
        s["authpct"] = audit_res.get("authpct")
        s["audit"] = "audit.json"
    else:
        s["audit"] = None
        s["audit_absent"] = ("no audit.json: the reachable images were searched for near-copies without listing "
                             "them (see the verdict above and the report), so there is no list of images to audit"
                             if searched else
                             "no audit.json: nothing was listed (the certificate only counts the reachable images), "
                             "so no generated image was compared with the training images"
                             if not len(cert.latents) else "no audit.json: the audit was not run")
    s["glossary"] = summary_glossary(s)
    return s


def near_copy_counts(cert, keys: list[str]) -> dict:
    """Per γ key the exact number of reachable images that are near-copies, or None (unknown):
    complete listings count their flags; searched certificates give the search's count only where
    it is exact (an interval is in ``near_copy_count``); anything else is None, never 0."""
    from .certificate import attr_json
    from .enumerate import has_figures, verdict_scope

    if verdict_scope(cert.attrs) == "searched":
        lo, ex = attr_json(cert, "near_copy_count_low", {}) or {}, attr_json(cert, "near_copy_exact", {}) or {}
        return {k: (int(str(lo[k])) if ex.get(k) and str(lo.get(k)).isdigit() else None) for k in keys}
    if cert.flags is None or cert.flags.ndim != 2:
        return {k: None for k in keys}
    exact = has_figures(cert.attrs)
    return {k: (int(cert.flags[:, j].sum()) if exact and j < cert.flags.shape[1] else None)
            for j, k in enumerate(keys)}


def summary_float(v: object) -> float | None:
    """A recorded number for summary.json: None (JSON null, "unknown") when absent or not finite."""
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def summary_glossary(s: dict) -> list[dict[str, str]]:
    """[{term, meaning}] for the terms summary.json and the summary lines use (fscert.glossary)."""
    from .glossary import terms

    names = ["reachable images", "γ", "PSNR", "near-copy", "UIR", "M-UIR", "memorization mass", "dead-end mass",
             "fidelity floor", "not decidable", "reconstruction near-copy", "drawn set E", "baseline", "exact",
             "unknown"]
    if s.get("verdict_scope") == "searched":
        names[7:7] = ["exposure", "certified interval"]
    if s.get("authpct") is not None:
        names.append("AuthPct")
    return [{"term": k, "meaning": v} for k, v in terms(*names)]


def search_summary(cert) -> dict:
    """The near-copy search in summary.json: per γ the union as [low, high], exact or not, and the
    training images most exposed (highest probability that an output is within γ of them)."""
    from .audit import gamma_key
    from .certificate import attr_json

    x = cert.extra
    out: dict = {"near_copies_listed": int(len(x.get("near_latents", ()))),
                 "near_copy_count": {}, "memorization_mass_interval": {}, "near_copy_exact": {}, "most_exposed": {}}
    lo, hi = attr_json(cert, "near_copy_count_low", {}), attr_json(cert, "near_copy_count_high", {})
    mlo, mhi = attr_json(cert, "memorization_mass_low", {}), attr_json(cert, "memorization_mass_high", {})
    ex = attr_json(cert, "near_copy_exact", {})
    for j, g in enumerate(cert.gammas):
        k = gamma_key(g)
        out["near_copy_count"][k] = [lo.get(k), hi.get(k)]
        out["memorization_mass_interval"][k] = [mlo.get(k), mhi.get(k)]
        out["near_copy_exact"][k] = ex.get(k)
        if "exposure_low" in x:
            e = x["exposure_low"][:, j]
            top = np.argsort(-e, kind="stable")[:5]
            ehi = x["exposure_high"][:, j]                      # NaN: unknown upper end, null in JSON
            out["most_exposed"][k] = [{"train_index": int(t), "exposure_low": float(e[t]),
                                       "exposure_high": float(ehi[t]) if np.isfinite(ehi[t]) else None}
                                      for t in top if e[t] > 0]
    if "best_psnr" in x:
        bp, be = x["best_psnr"], x["best_exact"]
        top = int(np.argmax(np.where(be, bp, -np.inf))) if be.any() else None
        out["best_psnr"] = {"exact_for": int(be.sum()), "bounded_for": int((~be).sum()),
                            "max": float(bp[top]) if top is not None else None, "max_train_index": top,
                            "median_exact": float(np.median(bp[be])) if be.any() else None}
    return out


def summary_lines(s: dict, glossary: bool = True) -> list[str]:
    """What `fscert certify` prints: first the verdict (per γ a sentence with the counts, the
    fidelity floor, guarantees, assumptions, baseline: :func:`fscert.verdict_statement.statement_lines`),
    then the figures behind it, then (``glossary``) the meaning of every term used. A figure the
    summary does not hold is never printed as 0."""
    from .verdict_statement import statement_lines

    verdict = s.get("verdict")
    lines = statement_lines(verdict) if isinstance(verdict, dict) and "per_gamma" in verdict else []
    exact = s.get("verdict_scope", "complete") == "complete"
    if s.get("images"):
        lines.append(f"images: {s['images']}; latent M×h×w = {s['latent_shape']}")
    if exact or s["listed"]:
        lines.append(f"reachable images: {s['reachable']} (listed {s['listed']}; "
                     f"{s['training_latents_listed']} are training latents)")
    elif s.get("verdict_scope") == "searched":
        lines.append(f"reachable images: {s['reachable']} (too many to list: every training image's near-copies "
                     f"were searched without listing; {s.get('near_copies_listed', 0)} near-copies listed)")
    else:
        lines.append(f"reachable images: {s['reachable']} (counted only: none listed)")

    def num(v: object, spec: str) -> str:
        return "unknown" if v is None else format(float(v), spec)

    words = s.get("scope_words") or {}
    for g in s["uir"] or {}:
        if exact:
            lines.append(f"γ = {g} dB: UIR {num(s['uir'][g], '.3f')}, M-UIR {num(s['m_uir'].get(g), '.3f')}, "
                         f"near-copies {s['near_copies'].get(g, 'unknown')}, "
                         f"memorization mass {num(s['memorization_mass'].get(g), '.4f')}")
        else:
            lines.append(f"γ = {g} dB: {words.get(g, 'figures NOT EXAMINED')}")
    for g, rows in (s.get("most_exposed") or {}).items():
        if rows:
            r = rows[0]
            span = (f"≥ {r['exposure_low']:.4g} (upper end unknown)" if r["exposure_high"] is None
                    else f"{r['exposure_low']:.4g}" if r["exposure_low"] == r["exposure_high"]
                    else f"[{r['exposure_low']:.4g}, {r['exposure_high']:.4g}]")
            lines.append(f"γ = {g} dB: most exposed training image #{r['train_index']} is reproduced with "
                         f"probability {span}")
    b = s.get("best_psnr")
    if b and b.get("max") is not None:
        lines.append(f"closest any output comes to a training image: {b['max']:.2f} dB (training image "
                     f"#{b['max_train_index']}, exact); median over the {b['exact_for']} training images with an "
                     f"exact best: {b['median_exact']:.2f} dB"
                     + (f"; {b['bounded_for']} more are only bounded" if b["bounded_for"] else ""))
    dead = s.get("dead_end_mass")
    lines.append(f"dead-end mass: {num(dead, '.4f')}")
    if s.get("audit_absent"):
        lines.append(s["audit_absent"])
    lines.append(f"report: {s['report']}")
    if glossary and s.get("glossary"):
        lines.append("terms:")
        lines += [f"  {t['term']}: {t['meaning']}" for t in s["glossary"]]
    return lines
