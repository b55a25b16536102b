"""Per-image and per-training-image tables of an audit (CSV and JSON rows).

Every row names its image (``name``: the path relative to the folder it was read from, or
``#i``, its index in a file) and its nearest training image (``nearest_train`` index and
``nearest_train_name``), so each figure can be traced back to the files. Rows follow the
set's order (stated in the audit's ``sets``).

:func:`copied_training_images` groups the generated near-copies by the training image they
copy: a generated image at PSNR ≥ γ to its nearest training image counts for that training
image (the nearest one only, even when it is within γ of others too).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def _which(result: dict, which: str) -> dict:
    if which == "generated":
        return result["per_image"]
    if which == "held_out":
        per = result.get("held_out_per_image")
        if per is None:
            raise ValueError("the audit has no held-out set")
        return per
    raise ValueError(f"unknown set {which!r}")


def columns(result: dict, which: str = "generated") -> list[str]:
    """Column names of the per-image table: index, name, nearest_train, nearest_train_name, psnr,
    then per γ key ``near_copy_K`` (1: PSNR ≥ γ, a near-copy of a training image), ``pass_K`` (its
    complement, the UIR indicator of Eq. 9), ``m_uir_K``, ``m_uir_strict_K`` (1: kept as unique), then
    ``nn_ratio`` and ``authentic`` where computed."""
    from .audit import gamma_key

    per = _which(result, which)
    cols = ["index", "name", "nearest_train", "nearest_train_name", "psnr"]
    for g in result["params"]["gammas"]:
        k = gamma_key(g)
        cols += [f"near_copy_{k}", f"pass_{k}", f"m_uir_{k}", f"m_uir_strict_{k}"]
    return cols + [c for c in ("nn_ratio", "authentic") if c in per]


def _value(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    return v


def image_rows(result: dict, which: str = "generated") -> list[dict]:
    """One dict per image of ``which`` ("generated" or "held_out"), in the set's order, with the
    :func:`columns` as keys (PSNR +inf for identical images; JSON writers turn it into null)."""
    per = _which(result, which)
    cols = columns(result, which)
    data = {c: per[c].tolist() if isinstance(per[c], np.ndarray) else list(per[c]) for c in cols}
    return [{c: data[c][i] for c in cols} for i in range(len(data["index"]))]


def write_csv(path: str | Path, result: dict, which: str = "generated") -> None:
    """The per-image table as CSV: booleans 0/1, floats as Python's repr ("inf" for identical)."""
    per = _which(result, which)
    cols = columns(result, which)
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for i in range(len(per["index"])):
            row = []
            for c in cols:
                v = _value(per[c][i])
                row.append(int(v) if isinstance(v, bool) else (repr(v) if isinstance(v, float) else v))
            w.writerow(row)


def copied_training_images(result: dict) -> list[dict]:
    """The training images that some generated image is a near-copy of at the smallest γ, most
    copied first (ties: highest PSNR, then training index). Each: ``train`` (index),
    ``train_name``, ``near_copies`` per γ key (generated near-copies attributed to it),
    ``best_psnr`` (with ``identical``: an exact copy, PSNR +inf), ``generated`` (the names of its near-copies at the smallest γ, most similar
    first), ``generated_index``, and ``held_out_near_copies`` per γ key (held-out real images
    that are near-copies of it; None without a held-out set)."""
    from .audit import gamma_key

    gammas = result["params"]["gammas"]
    keys = [gamma_key(g) for g in gammas]
    per = result["per_image"]
    psnr = np.asarray(per["psnr"], np.float64)
    near = np.asarray(per["nearest_train"], np.int64)
    base = result.get("held_out_per_image")
    tnames = result["names"]["train"]
    hit = psnr >= gammas[0]
    groups: dict[int, list[int]] = {}
    for i in np.flatnonzero(hit):
        groups.setdefault(int(near[i]), []).append(int(i))
    if base is not None:
        bp, bn = np.asarray(base["psnr"], np.float64), np.asarray(base["nearest_train"], np.int64)
    out = []
    for t, members in groups.items():
        members.sort(key=lambda i: (-psnr[i], i))
        row = {"train": t, "train_name": tnames[t],
               "near_copies": {k: int((psnr[members] >= g).sum()) for k, g in zip(keys, gammas)},
               "best_psnr": float(psnr[members[0]]), "identical": bool(np.isinf(psnr[members[0]])),
               "generated": [per["name"][i] for i in members], "generated_index": members}
        if base is not None:
            row["held_out_near_copies"] = {k: int(((bn == t) & (bp >= g)).sum()) for k, g in zip(keys, gammas)}
        else:
            row["held_out_near_copies"] = None
        out.append(row)
    out.sort(key=lambda r: (-r["near_copies"][keys[0]], -r["best_psnr"], r["train"]))
    return out


def write_groups_csv(path: str | Path, result: dict) -> None:
    """:func:`copied_training_images` as CSV: one row per copied training image, the generated
    names joined with " | "."""
    from .audit import gamma_key

    keys = [gamma_key(g) for g in result["params"]["gammas"]]
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["train", "train_name", *[f"near_copies_{k}" for k in keys], "best_psnr",
                    *[f"held_out_near_copies_{k}" for k in keys], "generated"])
        for r in copied_training_images(result):
            held = r["held_out_near_copies"]
            w.writerow([r["train"], r["train_name"], *[r["near_copies"][k] for k in keys], repr(r["best_psnr"]),
                        *[held[k] if held is not None else "unknown" for k in keys], " | ".join(r["generated"])])
