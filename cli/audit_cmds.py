"""`fscert audit`: memorization metrics of any generator's images (UIR, M-UIR and peers), with the
held-out real images as baseline, in words, JSON, CSV and a static HTML report."""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from fscert.errors import FscertError, atomic_path, check_output_path
from fscert.resources import gib_to_bytes

from .common import (Console, OutputPath, force_option, gamma_option, json_option, json_to_stdout, limit_option,
                     max_memory_option, quiet_option, write_json)

from fscert.data import SPLITS  # noqa: E402  (one definition, fscert.readers)
ORDER_HELP = ("a file holding many images, in its stored order, or a folder of image files, in natural sort order "
              "of their paths (im2 before im10); the order read is stated in every output")


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


def _check_outputs(json_out: str | None, csv_out: str | None, html_out: str | None, force: bool) -> list[str]:
    """Refuse clashing or existing outputs before any work; return the files and folders to write."""
    outs = [p for p in (None if json_to_stdout(json_out) else json_out, csv_out, html_out) if p]
    resolved = [Path(p).resolve() for p in outs]
    if len(set(resolved)) < len(resolved):
        raise FscertError("--json, --csv and --html must name different paths")
    for p in outs:
        check_output_path(p, force)
    return outs


@click.command("audit")
@click.option("--train", "train_spec", required=True, metavar="DATA",
              help="Training images (file, folder or bundled name): " + ORDER_HELP + ".")
@click.option("--generated", "gen_spec", required=True, metavar="DATA",
              help="Generated images: " + ORDER_HELP + ". Greedy M-UIR keeps images in this order, so give them "
                   "in generation order where it matters.")
@gamma_option()
@json_option("the report (verdict, baseline, peers, glossary, every figure, one row per image)")
@click.option("--csv", "csv_out", type=OutputPath(dir_okay=False), metavar="PATH",
              help="Write one row per generated image (its name, its nearest training image and its name, PSNR, flags).")
@click.option("--html", "html_out", type=OutputPath(file_okay=False), metavar="DIR",
              help="Write a static HTML report folder (opens from disk, makes no network request).")
@click.option("--title", help="Title of the HTML report [default: the generated images' source].")
@click.option("--split", type=click.Choice(SPLITS), default="train", show_default=True,
              help="Split of --train to read from MedMNIST-style .npz files.")
@click.option("--generated-split", type=click.Choice(SPLITS), default=None,
              help="Split of --generated to read from a MedMNIST-style .npz holding several (required there).")
@click.option("--train-features", type=click.Path(dir_okay=False), help="Training features (.npy, one row per image).")
@click.option("--generated-features", type=click.Path(dir_okay=False), help="Generated features (.npy, one row per image).")
@click.option("--test", "test_spec", metavar="DATA",
              help="Held-out real images the generator never saw: the baseline every figure is compared with, and "
                   "the C_T test set. Without it the baseline is unknown and C_T holds out part of --train.")
@click.option("--test-split", type=click.Choice(SPLITS), default="test", show_default=True,
              help="Split of --test to read from MedMNIST-style .npz files.")
@click.option("--test-features", type=click.Path(dir_okay=False), help="Test features (.npy), with --test.")
@click.option("--ct-cells", type=click.IntRange(min=1), help="k-means cells of the C_T test [default: ~25 test images a cell, ≤ 10].")
@click.option("--ct-holdout", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2, show_default=True,
              help="Fraction of --train held out for C_T when no --test is given.")
@limit_option(help="Use only the first N training images (--generated-limit and --test-limit limit the others).")
@click.option("--generated-limit", type=click.IntRange(min=1), metavar="N", help="Use only the first N generated images.")
@click.option("--test-limit", type=click.IntRange(min=1), metavar="N", help="Use only the first N held-out images.")
@max_memory_option("the nearest-neighbour search")
@quiet_option()
@force_option()
def audit(train_spec, gen_spec, gammas, json_out, csv_out, html_out, title, split, generated_split, train_features,
          generated_features, test_spec, test_split, test_features, ct_cells, ct_holdout, limit, generated_limit,
          test_limit, max_memory, quiet, force):
    """Audit generated images for memorization of the training set (FS-LAR §5.1).

    Opens with a verdict per γ in words: how many generated images are near-copies of a training
    image, beside how many held-out real images (--test) are. Reports UIR(γ) (Eq. 9), M-UIR(γ)
    greedy and strict (Eq. 10), AuthPct, the C_T data-copying test and the nearest/second-nearest
    distance ratio, each for the generated and the held-out images, every figure with its meaning.
    Images are compared at their native size with PSNR peak 1 (uint8 / 255); give
    --train-features and --generated-features to compute every metric on feature rows instead.
    Every per-image row names the image (path in its folder, or #index in a file) and its nearest
    training image.
    """
    from fscert.audit import AuditConfig, DEFAULT_GAMMAS, audit as run_audit, report_json, summary_lines
    from fscert.data import load_dataset, match_channels

    con = Console(quiet, json_out)
    outs = _check_outputs(json_out, csv_out, html_out, force)
    if (train_features is None) != (generated_features is None):
        raise FscertError("give both --train-features and --generated-features, or neither")
    if test_features is not None and test_spec is None:
        raise FscertError("--test-features needs --test")
    if test_limit is not None and test_spec is None:
        raise FscertError("--test-limit needs --test")

    train = load_dataset(train_spec, limit=limit, split=split, native=True, split_option="--split", log=con.log)
    gen = load_dataset(gen_spec, limit=generated_limit, split=generated_split, native=True,
                       split_option="--generated-split", log=con.log)
    test = (load_dataset(test_spec, limit=test_limit, split=test_split, native=True, split_option="--test-split",
                         log=con.log) if test_spec else None)
    feats = None
    if train_features is not None:
        feats = (_load_features(train_features, limit, "training"),
                 _load_features(generated_features, generated_limit, "generated"))
    else:       # pixel space: an RGB file of gray images is compared with gray training images
        gen.images = match_channels(gen.images, train.images, str(gen_spec))
        if test is not None:
            test.images = match_channels(test.images, train.images, str(test_spec))
    tfeat = _load_features(test_features, test_limit, "test")

    extra = {"data": {"train": str(train_spec), "generated": str(gen_spec), "test": test_spec,
                      "split": split, "generated_split": generated_split, "test_split": test_split if test_spec else None,
                      "train_features": train_features, "generated_features": generated_features,
                      "test_features": test_features},
             "limit": limit, "generated_limit": generated_limit, "test_limit": test_limit}
    cfg = AuditConfig(ct_cells=ct_cells, ct_holdout=ct_holdout, extra=extra)
    result = run_audit(train, gen, gammas or DEFAULT_GAMMAS, features=feats, test_NCHW=test,
                       test_features=tfeat, config=cfg, max_memory=gib_to_bytes(max_memory), log=con.log)

    if json_out:
        write_json(json_out, report_json(result, per_image=True))
    if csv_out:
        from fscert.audit_tables import write_csv

        with atomic_path(csv_out) as tmp:
            write_csv(tmp, result, "generated")
    if html_out:
        from fscert.audit_report import build_audit_report

        build_audit_report(result, html_out, train.images, gen.images, test.images if test is not None else None,
                           force=force, title=title)
    for line in summary_lines(result):
        con.result(line)
    if outs:
        con.result("wrote " + ", ".join(outs))


COMMANDS = [audit]
