"""`fscert verify`: recompute a certificate from its inputs and list every difference.

A certificate is only worth what anyone can re-derive: :func:`verify` recomputes the content
hash, and given the inputs, the enumeration (counts, dead-end mass, latents and probabilities
byte for byte), the decoded images, every metric, the near-copy search, the fidelity record
and the reconstructions' near-copies, in the certificate's own comparison geometry.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .certificate import Certificate, attr_json, content_hash, latents_sha256
from .errors import FscertError
from .fidelity import FIDELITY_ATTRS, add_fidelity, verify_sources
from .geometry import Geometry
from .latents import LatentSet
from .verdict import SCOPE_SEARCHED, SEARCH_MAPS, VERDICT_MAPS
from .enumerate import EnumerateConfig, Inputs, certify, add_images, add_metrics, check_inputs


def _same_array(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def verify(cert: Certificate, latents: LatentSet | None = None, model: Any = None, train: np.ndarray | None = None,
           progress: bool = False, train_latents: np.ndarray | None = None,
           geometry: Geometry | None = None) -> list[str]:
    """Every difference between ``cert`` and a recomputation from the given inputs (empty = verified).

    Always: the content hash. With ``latents``: its fingerprint and a re-enumeration (counts,
    dead-end mass, latents and probabilities byte for byte). With ``model``: its fingerprint and
    re-decoded images; with ``model`` and ``train``: the training fingerprint and every metric,
    the fidelity record and the reconstructions' near-copies, recomputed in the certificate's
    geometry (absent: the whole canvas, as files written before it compared) from its stored
    ``train_latents`` or ``train_latents`` given here (which must equal them). ``geometry``
    (the training images' stored-size geometry) is checked against the recorded one.
    """
    from .data import data_sha256
    from .hashing import sha256_state_dict

    diffs: list[str] = []
    a = cert.attrs
    stored = str(a.get("content_sha256", ""))
    actual = content_hash(cert)
    if stored != actual:
        diffs.append(f"content_sha256: stored {stored or '(none)'}, datasets hash to {actual}")
    if len(cert.prob) and not a.get("count_only") and str(len(cert.prob)) == str(a.get("reachable_count")):
        total = float(np.sum(cert.prob, dtype=np.float64))
        if not abs(total - 1.0) <= 1e-9:
            diffs.append(f"prob sums to {total!r}; a complete listing sums to 1")
    try:
        cfg = EnumerateConfig.from_json(attr_json(cert, "config", {}) or {})
    except (TypeError, ValueError) as e:
        return diffs + [f"config attribute is unreadable: {e}"]
    if model is not None:
        h = sha256_state_dict(model.state_dict())
        if h != a.get("model_sha256", ""):
            diffs.append(f"model_sha256: certificate {a.get('model_sha256') or '(none)'}, model {h}")
    if train is not None:
        h = data_sha256(np.asarray(train))
        if h != a.get("train_sha256", ""):
            diffs.append(f"train_sha256: certificate {a.get('train_sha256') or '(none)'}, training images {h}")
    if latents is None and model is None:
        return diffs
    geom = Geometry.from_json(a.get("geometry"), np.shape(train)[2:]) if train is not None else None
    tz, more = verify_sources(cert, latents, geometry, geom, train_latents)
    diffs += more
    if latents is not None and tz is not None and latents.attrs.get("source_latents_sha256"):
        latents = LatentSet(latents.latents, latents.counts, latents.source_index,   # checked above, not refused
                            {k: v for k, v in latents.attrs.items() if k != "source_latents_sha256"})
    redo: Certificate | None = None
    if latents is not None:
        h = latents_sha256(latents.latents, latents.counts)
        if h != a.get("latents_sha256"):
            diffs.append(f"latents_sha256: certificate {a.get('latents_sha256')}, latents file {h}")
        searched = a.get("verdict_scope") == SCOPE_SEARCHED
        redo_cfg = cfg
        if searched and (model is None or train is None):          # the search needs both: check the count
            redo_cfg = EnumerateConfig.from_json(cfg.to_json())
            redo_cfg.count_only = True
        try:
            redo = certify(Inputs(latents, model, train if model is not None else None, train_latents=tz,
                                  geometry=geom), redo_cfg, progress=progress)
            if redo_cfg is not cfg:
                redo.attrs.update(count_only=a.get("count_only"), listed_count=a.get("listed_count"),
                                  verdict_scope=a.get("verdict_scope"))
        except FscertError as e:
            return diffs + [f"re-enumeration failed: {e}"]
        for key in ("mode", "reachable_count", "listed_count", "count_only", "dead_end_mass", "rho", "verdict_scope"):
            if key == "verdict_scope" and key not in a:     # written before the attribute existed
                continue
            if str(redo.attrs.get(key)) != str(a.get(key)):
                diffs.append(f"{key}: certificate {a.get(key)}, recomputed {redo.attrs.get(key)}")
    elif model is not None:
        check_inputs(cert.latents.shape, model, train)
        redo = Certificate(cert.latents, cert.prob, {key: a[key] for key in ("count_only", "listed_count", "reachable_count")
                                                     if key in a}, log_prob=cert.log_prob)
        add_images(redo, model, batch=cfg.batch, progress=progress)
        if train is not None and a.get("verdict_scope") != SCOPE_SEARCHED:
            add_metrics(redo, train, tuple(cert.gammas) or tuple(cfg.gammas), geom)
        if train is not None:
            redo.attrs.update(gammas=np.asarray(cert.gammas or cfg.gammas, np.float64), geometry=geom.to_json())
            add_fidelity(redo, Inputs(LatentSet(cert.latents), model, train, train_latents=tz), cfg, geom,
                         recon=a.get("verdict_scope") != SCOPE_SEARCHED)           # the search needs E
        if a.get("verdict_scope") == SCOPE_SEARCHED:
            from .blocks import decode_exact

            redo.images = cert.images
            for name in ("near", "best", "top"):
                lat = cert.extra.get(f"{name}_latents")
                if lat is not None and f"{name}_images" in cert.extra:
                    ok = cert.extra["best_exact"] if name == "best" else np.ones(len(lat), bool)
                    img = np.zeros_like(cert.extra[f"{name}_images"])
                    img[ok] = decode_exact(model, lat[ok]) if ok.any() else img[ok]
                    redo.extra[f"{name}_images"] = img
    assert redo is not None
    names = ["latents", "prob", "log_prob"] if latents is not None else []
    if model is not None:
        names.append("images")
        if train is not None:
            names += ["nearest_train", "psnr", "flags", "m_uir"]
    for name in names:
        mine, theirs = getattr(cert, name), getattr(redo, name)
        if not _same_array(mine, theirs):
            diffs.append(f"dataset {name}: {_describe(mine, theirs)}")
    full_search = latents is not None and model is not None and train is not None
    for name in sorted(set(cert.extra) | set(redo.extra)):          # the near-copy search (format 2)
        if full_search or name in redo.extra:
            mine, theirs = cert.extra.get(name), redo.extra.get(name)
            if not _same_array(mine, theirs):
                diffs.append(f"dataset {name}: {_describe(mine, theirs)}")
    if model is not None and train is not None and (latents is not None or a.get("verdict_scope") != SCOPE_SEARCHED):
        keys = VERDICT_MAPS + (SEARCH_MAPS if a.get("verdict_scope") == SCOPE_SEARCHED else ())
        for key in keys:
            if attr_json(cert, key) != attr_json(redo, key):
                diffs.append(f"{key}: certificate {a.get(key)}, recomputed {redo.attrs.get(key)}")
    if model is not None and train is not None:
        for key in FIDELITY_ATTRS:                      # absent: written before fscert recorded it
            if key in a and key in redo.attrs and attr_json(cert, key) != attr_json(redo, key):
                diffs.append(f"{key}: certificate {a.get(key)}, recomputed {redo.attrs.get(key)}")
    return diffs


def _describe(mine: np.ndarray | None, theirs: np.ndarray | None) -> str:
    if mine is None or theirs is None:
        return f"{'missing' if mine is None else 'present'} in the certificate, " \
               f"{'missing' if theirs is None else 'present'} when recomputed"
    if mine.shape != theirs.shape or mine.dtype != theirs.dtype:
        return f"certificate {mine.dtype}{mine.shape}, recomputed {theirs.dtype}{theirs.shape}"
    rows = np.flatnonzero((mine.reshape(len(mine), -1) != theirs.reshape(len(theirs), -1)).any(1)) if mine.ndim else []
    return f"{len(rows)} of {len(mine)} rows differ (first: row {int(rows[0]) if len(rows) else '?'})"
