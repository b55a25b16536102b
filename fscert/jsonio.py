"""The one JSON helper: numpy values → plain JSON values, with a stated rule for non-finite floats.

Strict JSON has no NaN or infinity. Files read by programs (``audit.json``, ``summary.json``,
experiment results) write them as ``null``; the HTML report's embedded data writes them as the
strings JavaScript's ``Number()`` reads back (``"NaN"``, ``"Infinity"``, ``"-Infinity"``), so a
PSNR of +inf (an exact copy) survives the trip into the page.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np


def js_number(v: float) -> float | str:
    """A float for the report's JSON; ±inf and NaN become the strings JavaScript's Number() understands."""
    if math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def jsonable(v: Any, nonfinite: Literal["null", "js"] = "null") -> Any:
    """``v`` with numpy scalars/arrays turned into Python values, dict keys into strings, bytes
    into text, and non-finite floats into ``None`` (``nonfinite="null"``) or JavaScript's
    strings (``"js"``)."""
    if isinstance(v, dict):
        return {str(k): jsonable(x, nonfinite) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x, nonfinite) for x in v]
    if isinstance(v, np.ndarray):
        return jsonable(v.tolist(), nonfinite)
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if nonfinite == "js":
            return js_number(f)
        return f if math.isfinite(f) else None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v
