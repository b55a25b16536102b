"""Formatting shared by the report's modules: JSON-safe values, numbers in words, per-γ maps.

Guarantees: :func:`fscert.jsonio.jsonable` (``"js"``) turns numpy values and non-finite floats into plain JSON values
("NaN", "Infinity" as strings that JavaScript's Number() reads), so ``summary.json`` and
``data.js`` are always valid JSON; :func:`safe_json` is safe inside a ``<script>`` element;
:func:`fmt_num` never shows an absent or NaN value as a number ("n/a", "unknown").
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from .jsonio import js_number, jsonable  # noqa: F401  (the report modules import them from here)

from .figure_words import count_in_words, fig, finite, gname, interval  # noqa: F401  (re-exported)


def safe_json(obj: Any) -> str:
    """JSON that is safe inside a script (``<``, ``>``, ``&`` and U+2028/9 escaped; no NaN).

    ``obj`` must hold plain Python values (see :func:`fscert.jsonio.jsonable`); the per-image columns are
    built with ``tolist()``, which is much faster than converting a million values one by one.
    """
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def gamma_map(m: Any) -> dict[float, Any]:
    """A JSON map keyed by γ (keys like "30" or "30.0") → {30.0: value}."""
    out: dict[float, Any] = {}
    if isinstance(m, dict):
        for key, v in m.items():
            try:
                out[float(key)] = v
            except (TypeError, ValueError):
                continue
    return out


def column(arr: np.ndarray | None, j: int) -> np.ndarray | None:
    """Column ``j`` of a (K, G) per-γ dataset as bool, or None where it does not exist."""
    if arr is None or arr.ndim != 2 or arr.shape[1] <= j:
        return None
    return arr[:, j].astype(bool)


def fmt_num(v: Any) -> str:
    """Numbers for the header: floats to 6 significant digits, everything else as text."""
    if v is None or v == "":
        return "n/a"
    if v == "NaN" or (isinstance(v, float) and math.isnan(v)):      # τ, κ: NaN when not recorded
        return "unknown"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def approx(count: str) -> str:
    """"≈ 1.23e+30" for an exact decimal count too long to read at a glance, else ""."""
    try:
        return f"≈ {int(count):.3e}" if len(count) > 9 else ""
    except ValueError:
        return ""


def psnr_text(v: float) -> str:
    return "∞" if v == math.inf else ("unknown" if not math.isfinite(v) else f"{v:.2f}")


def note(kind: str, text: str) -> dict[str, str]:
    """A notice shown above the figures (kind: info, warn, latents)."""
    return {"kind": kind, "text": text}


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(int(s)) for s in shape)


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Images as uint8: float in [0, 1] scaled by 255 and rounded (NaN → 0); uint8 unchanged."""
    if x.dtype == np.uint8:
        return x
    return np.rint(np.clip(np.nan_to_num(x.astype(np.float32)), 0.0, 1.0) * 255.0).astype(np.uint8)
