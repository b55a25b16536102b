"""The opening of the report: the verdict (from :func:`fscert.verdict_statement.statement`) and
a glossary of the terms the page uses (from :mod:`fscert.glossary`).

Guarantees: the page's verdict is the statement's own sentences, unchanged (the CLI summary
and ``summary.json`` print the same ones); every term the page shows a figure for has its
definition in the glossary section.
"""
from __future__ import annotations

from typing import Any

from .glossary import terms
from .figure_words import gname

#: CSS class of each verdict status (report.css colours them; green only for "novel")
STATUS_CLASS = {"copies": "copy", "novel": "novel", "not-decidable": "undecided", "fidelity-unknown": "undecided",
                "unresolved": "interval", "not-examined": "undecided", "not-shown": "undecided"}


def verdict_page(st: dict[str, Any]) -> dict[str, Any]:
    """The template's ``v``: per γ its label, status class, sentence and reconstruction words, then
    the fidelity floor, guarantees, assumptions, baseline and what the reconstruction column means."""
    rows = [{"gamma": gname(r["gamma"]), "label": r["label"], "status": r["status"],
             "cls": STATUS_CLASS.get(r["status"], "undecided"), "sentence": r["sentence"],
             "recon": r["recon"]["words"]} for r in st["per_gamma"].values()]
    return {"rows": rows, "headline": st["headline"], "fidelity": st["fidelity"]["words"],
            "fidelity_recorded": st["fidelity"]["recorded"], "guarantees": st["guarantees"],
            "assumptions": st["assumptions"], "baseline": st["baseline"], "recon_means": st["recon_means"],
            "recon_recorded": any(r["recon"]["near_copies"] is not None for r in st["per_gamma"].values())}


def glossary_terms(summary: dict[str, Any], training_view: bool, histogram: bool) -> list[dict[str, str]]:
    """[{term, meaning}] for the terms this page shows, in reading order."""
    scope = summary.get("verdict_scope")
    has_gamma = bool(summary.get("per_gamma"))
    names = ["reachable images"]
    if has_gamma:
        names += ["γ", "PSNR", "near-copy", "memorization mass"]
        if scope == "complete":
            names += ["UIR", "M-UIR"]
        if scope == "searched" or training_view:
            names.append("exposure")
    names += ["dead-end mass", "fidelity floor", "not decidable", "reconstruction near-copy", "drawn set E", "baseline"]
    if scope in ("complete", "searched"):
        names.append("exact")
    if scope == "searched":
        names.append("certified interval")
    if histogram and "PSNR" not in names:
        names.append("PSNR")
    names.append("unknown")
    return [{"term": k, "meaning": v} for k, v in terms(*names)]
