"""`fscert audit`: memorization metrics of any generator's images (UIR, M-UIR and peers)."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import click
import numpy as np

from fscert.errors import FscertError, atomic_path, check_output_path
from fscert.resources import gib_to_bytes

from .common import echo_err, max_memory_option

SPLITS = ("train", "val", "test")


def _gamma_check(ctx, param, value):
    for v in value:
        if not (math.isfinite(v) and v > 0):
            raise click.BadParameter(f"γ must be a finite positive number, got {v}")
    return value


def _load_features(path: str | None, limit: int | None, name: str) -> np.ndarray | None:
    if path is None:
        return None
    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FscertError(f"{name} features not found: {path}") from None
    except Exception as e:  # not an .npy, pickled objects, truncated file
        raise FscertError(f"cannot read {name} features {path}: {type(e).__name__}: {e}".splitlines()[0]) from None
    if not isinstance(a, np.ndarray) or a.ndim < 2:
        raise FscertError(f"{name} features {path}: need an array with one row per image, got shape {np.shape(a)}")
    return a[:limit] if limit is not None else a


def _write_csv(path: Path, result: dict) -> None:
    from fscert.audit import gamma_key

    per = result["per_image"]
    keys = [gamma_key(g) for g in result["params"]["gammas"]]
    cols = ["index", "nearest_train", "psnr"]
    for k in keys:
        cols += [f"pass_{k}", f"m_uir_{k}", f"m_uir_strict_{k}"]
    cols += [c for c in ("nn_ratio", "authentic") if c in per]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for i in range(len(per["index"])):
            row = []
            for c in cols:
                v = per[c][i]
                if isinstance(v, (bool, np.bool_)):
                    row.append(int(v))
                elif isinstance(v, (float, np.floating)):
                    row.append(repr(float(v)))
                else:
                    row.append(int(v))
            w.writerow(row)


@click.command("audit")
@click.option("--train", "train_spec", required=True, metavar="DATA", help="Training images (file, folder or bundled name).")
@click.option("--generated", "gen_spec", required=True, metavar="DATA", help="Generated images, in generation order.")
@click.option("--gamma", "gammas", type=float, multiple=True, callback=_gamma_check, metavar="dB",
              help="PSNR threshold γ (repeatable; default 25 and 30).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the report as JSON.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False), help="Write one row per generated image.")
@click.option("--split", type=click.Choice(SPLITS), default="train", show_default=True,
              help="Split of --train to read from MedMNIST-style .npz files.")
@click.option("--train-features", type=click.Path(dir_okay=False), help="Training features (.npy, one row per image).")
@click.option("--generated-features", type=click.Path(dir_okay=False), help="Generated features (.npy, one row per image).")
@click.option("--test", "test_spec", metavar="DATA",
              help="Held-out images for the C_T test (default: hold out part of --train).")
@click.option("--test-split", type=click.Choice(SPLITS), default="test", show_default=True,
              help="Split of --test to read from MedMNIST-style .npz files.")
@click.option("--test-features", type=click.Path(dir_okay=False), help="Test features (.npy), with --test.")
@click.option("--ct-cells", type=click.IntRange(min=1), help="k-means cells of the C_T test [default: ~25 test images a cell, ≤ 10].")
@click.option("--ct-holdout", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2, show_default=True,
              help="Fraction of --train held out for C_T when no --test is given.")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N images of every set.")
@max_memory_option("the nearest-neighbour search")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
def audit(train_spec, gen_spec, gammas, json_out, csv_out, split, train_features, generated_features,
          test_spec, test_split, test_features, ct_cells, ct_holdout, limit, max_memory, force):
    """Audit generated images for memorization of the training set (FS-LAR §5.1).

    Reports UIR(γ) (Eq. 9), M-UIR(γ) greedy and strict (Eq. 10), AuthPct, the C_T
    data-copying test and the nearest/second-nearest distance ratio. Images are compared
    at their native size with PSNR peak 1 (uint8 / 255); give --train-features and
    --generated-features to compute every metric on feature rows instead.
    """
    from fscert.audit import AuditConfig, DEFAULT_GAMMAS, audit as run_audit, report_json, summary_lines
    from fscert.data import load_images

    outs = [p for p in (json_out, csv_out) if p]
    if json_out and csv_out and Path(json_out).resolve() == Path(csv_out).resolve():
        raise FscertError("--json and --csv must name different files")
    for p in outs:
        check_output_path(p, force)
    if (train_features is None) != (generated_features is None):
        raise FscertError("give both --train-features and --generated-features, or neither")
    if test_features is not None and test_spec is None:
        raise FscertError("--test-features needs --test")

    train = load_images(train_spec, limit=limit, split=split, native=True)
    gen = load_images(gen_spec, limit=limit, split="train", native=True)
    test = load_images(test_spec, limit=limit, split=test_split, native=True) if test_spec else None
    feats = None
    if train_features is not None:
        feats = (_load_features(train_features, limit, "training"), _load_features(generated_features, limit, "generated"))
    tfeat = _load_features(test_features, limit, "test")

    extra = {"data": {"train": str(train_spec), "generated": str(gen_spec), "test": test_spec,
                      "split": split, "test_split": test_split if test_spec else None,
                      "train_features": train_features, "generated_features": generated_features,
                      "test_features": test_features},
             "limit": limit}
    cfg = AuditConfig(ct_cells=ct_cells, ct_holdout=ct_holdout, extra=extra)
    result = run_audit(train, gen, gammas or DEFAULT_GAMMAS, features=feats, test_NCHW=test,
                       test_features=tfeat, config=cfg, max_memory=gib_to_bytes(max_memory), log=echo_err)

    if json_out:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(report_json(result), indent=2, allow_nan=False) + "\n")
    if csv_out:
        with atomic_path(csv_out) as tmp:
            _write_csv(tmp, result)
    for line in summary_lines(result):
        click.echo(line)
    if outs:
        click.echo("wrote " + ", ".join(outs))


COMMANDS = [audit]
