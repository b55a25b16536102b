"""`fscert draw`: the empirical set E of a latent file, written with its provenance (A.3.6, DESIGN §6.1).

Reads the training latents (`fscert encode`'s file), estimates the memory and time of the draws
(:func:`fscert.empirical.plan_draws`; refuses above the limit before any work), draws T
Rademacher samples of every latent (:func:`fscert.empirical.draw_samples`) and writes E
atomically: ``latents``, ``counts``, ``source_index`` and the attributes of
:func:`fscert.empirical.draw_attrs`. The same file and config give the same E, byte for byte.
"""
from __future__ import annotations

from pathlib import Path

from .certificate import latents_sha256
from .empirical import DrawConfig, Empirical, draw_attrs, draw_samples, plan_draws
from .fileio import check_output_path
from .latents import read_latents, write_latents


def draw_file(latents_path: str | Path, out: str | Path, cfg: DrawConfig, force: bool = False,
              max_memory: int | None = None) -> Empirical:
    """Draw E from the latents in ``latents_path`` and write it to ``out``; returns E.

    ``max_memory`` (bytes; None: ¾ of the machine's memory) bounds the estimate (logged at INFO)."""
    check_output_path(out, force)
    src = read_latents(latents_path)
    cfg.validate()
    plan_draws(src, cfg).check(max_memory)
    E = draw_samples(src, cfg)
    attrs = draw_attrs(cfg, src.attrs, latents_sha256(src.latents, src.counts))
    write_latents(out, E.latents, attrs, counts=E.counts, source_index=E.source_index)
    return E
