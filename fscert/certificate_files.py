"""Certificates from files and checked against files: `fscert enumerate` and `fscert verify`.

:func:`enumerate_files` reads the empirical set E (DESIGN §6.1), the decoder and the training
images and latents, certifies them (:func:`fscert.enumerate.certify_to_file`: every reachable
latent with its exact probability, decoded and audited, DESIGN §6–7) and writes the
certificate; :func:`verify_files` reads a certificate and whichever of its inputs are given and
lists every difference (:func:`fscert.verify.verify`). Both refuse inconsistent inputs with one
line (:class:`~fscert.errors.FscertError`) before any work, and write nothing on failure.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from .certificate import Certificate, attr_json, read_certificate
from .enumerate import EnumerateConfig, Inputs, certify_to_file, has_figures, verdict_words, verify
from .errors import FscertError
from .fileio import check_output_path
from .latents import read_latents


def _model(path: str | Path | None) -> Any:
    if path is None:
        return None
    from .autoencoder import load_model        # torch's model code: loaded only when a model is given

    return load_model(path)


def _training(spec: str | None, limit: int | None, split: str, model, geometry: Any = None) -> tuple[Any, Any]:
    """The training images on the model's canvas (as it was trained on them; without a model,
    as the certificate's recorded ``geometry`` says) and their comparison geometry (or None, None)."""
    if spec is None:
        return None, None
    from .geometry import load_for_model

    return load_for_model(spec, model, limit=limit, split=split, geometry=geometry)


def enumerate_files(latents_path: str | Path, out: str | Path, cfg: EnumerateConfig, *,
                    model_path: str | Path | None = None, train_latents_path: str | Path | None = None,
                    graph_path: str | Path | None = None, force: bool = False, resume: bool = False,
                    progress: bool = False, client=None) -> tuple[Certificate, str]:
    """Certify the latents in ``latents_path`` (E, or with ``cfg.full_support`` the source
    latents) and write the certificate to ``out``; returns it and its content hash.

    ``cfg.train`` names the training images compared with every decoded image (needs
    ``model_path``); their number ``cfg.train_limit`` defaults to the ``limit`` recorded in E.
    ``train_latents_path``: the training images' own latents (the decoder's fidelity and the
    near-copies of its reconstructions). ``graph_path``: the compatible-patch graph as GraphML.
    ``resume``: continue from the decoding checkpoint an interrupted run left beside ``out``.
    ``client``: a Dask client for the near-copy searches (:func:`fscert.enumerate.certify`)."""
    check_output_path(out, force)
    if graph_path:
        check_output_path(graph_path, force)
    if cfg.train and not model_path:
        raise FscertError("--train needs --model (the images to compare are decoded by the model)")
    if cfg.near_copies_only and not (model_path and cfg.train):
        raise FscertError("--near-copies-only needs --model and --train (the near-copies of which images?)")
    if train_latents_path and not (model_path and cfg.train):
        raise FscertError("--train-latents needs --model and --train (their reconstructions are compared with them)")
    E = read_latents(latents_path)
    if cfg.train_limit is None and cfg.train and "limit" in E.attrs:
        cfg = replace(cfg, train_limit=int(E.attrs["limit"]))
    cfg.validate()
    model = _model(model_path)
    train, geometry = _training(cfg.train, cfg.train_limit, cfg.train_split, model)
    train_latents = read_latents(train_latents_path).latents if train_latents_path else None
    cert, digest = certify_to_file(Inputs(E, model, train, train_latents=train_latents, geometry=geometry), cfg,
                                   out, resume=resume, progress=progress, client=client)
    if graph_path:
        from .enumeration import write_graphml

        write_graphml(graph_path, E.latents, cfg.rho, E.counts)
    return cert, digest


def _json_attr(v: Any) -> Any:
    try:
        return json.loads(v) if isinstance(v, str) else v
    except ValueError:
        return v


def enumerate_lines(cert: Certificate, digest: str, out: str | Path) -> list[str]:
    """What `fscert enumerate` prints: the counts, then per γ the figures, or in words why the
    certificate holds none (:func:`fscert.verdict.verdict_words`)."""
    a = cert.attrs
    searched = a.get("verdict_scope") == "searched"
    lines = [f"{a['reachable_count']} reachable latents ({a['mode']}, ρ = {a['rho']}), {a['listed_count']} listed"
             + (f", near-copies searched without listing ({len(cert.extra.get('near_latents', ()))} listed)"
                if searched else "") + ", "
             f"dead-end mass {a['dead_end_mass']:.6g} → {out} (content {digest[:12]})"]
    mass = _json_attr(a.get("memorization_mass"))
    if isinstance(mass, dict):
        for g, v in mass.items():
            if has_figures(a):
                lines.append(f"  γ = {g}: memorization mass {v:.6g}, UIR {_json_attr(a['uir'])[g]:.4g}, "
                             f"M-UIR {_json_attr(a['m_uir'])[g]:.4g}")
            else:
                lines.append(f"  γ = {g}: {verdict_words(a, float(g))}")
    return lines


def verify_files(cert_path: str | Path, *, model_path: str | Path | None = None, train_spec: str | None = None,
                 latents_path: str | Path | None = None, train_latents_path: str | Path | None = None,
                 progress: bool = False) -> tuple[list[str], list[str], Certificate]:
    """Recompute the certificate in ``cert_path`` from the inputs given (:func:`fscert.verify.verify`):
    returns the differences (empty: verified), what was checked, and the certificate. The training
    images are read with the certificate's recorded ``train_limit`` and ``train_split``."""
    cert = read_certificate(cert_path)
    cfg = EnumerateConfig.from_json(attr_json(cert, "config", {}) or {})
    E = read_latents(latents_path) if latents_path else None
    model = _model(model_path)
    train, geometry = _training(train_spec, cfg.train_limit, cfg.train_split, model, cert.attrs.get("geometry"))
    tz = read_latents(train_latents_path).latents if train_latents_path else None
    diffs = verify(cert, E, model, train, progress=progress, train_latents=tz, geometry=geometry)
    checked = ["content hash"] + (["latents"] if E is not None else []) + (["model"] if model is not None else []) \
        + (["training set"] if train is not None else []) + (["training latents"] if tz is not None else [])
    return diffs, checked, cert
