"""Figures in words, shared by the verdict and the report: counts, probabilities, intervals, γ.

Guarantees: :func:`finite` and :func:`gamma_lookup` turn anything absent, null, NaN or
malformed into None, so a caller never mistakes a missing figure for 0; :func:`interval`
prints as many digits as it takes to tell the two ends apart; :func:`count_in_words` keeps
exact counts exact up to nine digits.
"""
from __future__ import annotations

import math
from typing import Any


def gamma_lookup(m: Any, g: float) -> Any:
    """The entry of a per-γ map (keys "25", "25.0", …) for γ = ``g``; None when absent."""
    if not isinstance(m, dict):
        return None
    for key, v in m.items():
        try:
            if float(key) == float(g):
                return v
        except (TypeError, ValueError):
            continue
    return None


def _number(v: Any) -> float | None:
    """``v`` as a float, None where absent, a bool or not a number."""
    if isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def finite(v: Any) -> float | None:
    """``v`` as a finite float, else None (absent, null, NaN, text)."""
    f = _number(v)
    return f if f is not None and math.isfinite(f) else None


def psnr_value(v: Any) -> float | None:
    """A PSNR as float: +inf allowed (identical images), None where absent, NaN or not a number."""
    f = _number(v)
    return None if f is None or math.isnan(f) else f


def db(v: float) -> str:
    """A PSNR in words: "17.6 dB", or "∞ dB (identical)"."""
    return "∞ dB (identical)" if v == math.inf else f"{v:.1f} dB"


def count_in_words(count: Any) -> str:
    """An exact decimal count, readable: "27210", or "7.5·10^18" above nine digits."""
    text = str(count).strip()
    if not text.isdigit() or len(text) <= 9:
        return text
    from decimal import Decimal

    mant, exp = f"{Decimal(text):.2e}".split("e")
    return f"{mant.rstrip('0').rstrip('.')}·10^{int(exp)}"


def fig(v: float) -> str:
    """A probability or mass, 4 significant digits ("0.981", "1.2e-07")."""
    return f"{v:.4g}"


def interval(lo: float, hi: float) -> str:
    """"[low, high]" with as many digits as it takes to tell the two ends apart; ends that agree to
    12 significant digits (they differ by floating-point rounding only) read as one figure."""
    d = 4
    while d <= 12 and f"{lo:.{d}g}" == f"{hi:.{d}g}":
        d += 1
    if d > 12:
        return f"{lo:.4g} (its certified interval agrees to 12 digits)"
    return f"[{lo:.{d}g}, {hi:.{d}g}]"


def sentence_case(text: str) -> str:
    """``text`` with a capital first letter and a final full stop (words recorded by other modules)."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def gname(g: float) -> str:
    return f"{float(g):g}"


def exact_int(v: Any) -> int | None:
    """A non-negative decimal count (int or digit string) as int, else None."""
    s = str(v).strip() if v is not None else ""
    return int(s) if s.isdigit() else None
