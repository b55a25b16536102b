"""`fscert audit`: memorization metrics of any generator's images (UIR, M-UIR and peers), with the
held-out real images as baseline, in words, JSON, CSV and a static HTML report."""
from __future__ import annotations

import click

from fscert.audit import DEFAULT_GAMMAS, AuditConfig, report_json, summary_lines
from fscert.audit_files import AuditFiles, audit_files
from fscert.cluster import client_for
from fscert.data import SPLITS
from fscert.resources import gib_to_bytes

from .common import (Console, FloatRange, IntRange, OutputPath, cluster_options, force_option, gamma_option, json_option,
                     json_to_stdout, limit_option, max_memory_option, quiet_option, write_json)

ORDER_HELP = ("a file holding many images, in its stored order, or a folder of image files, in natural sort order "
              "of their paths (im2 before im10); the order read is stated in every output")


@click.command("audit")
@click.option("--train", "train_spec", required=True, metavar="DATA",
              help="Training images (file, folder or bundled name): " + ORDER_HELP + ".")
@click.option("--generated", "gen_spec", required=True, metavar="DATA",
              help="Generated images: " + ORDER_HELP + ". Greedy M-UIR keeps images in this order, so give them "
                   "in generation order where it matters.")
@gamma_option(DEFAULT_GAMMAS)
@json_option("the report (verdict, baseline, peers, glossary, every figure, one row per image)")
@click.option("--csv", "csv_out", type=OutputPath(dir_okay=False), metavar="PATH",
              help="Write one row per generated image (its name, its nearest training image and its name, PSNR, flags).")
@click.option("--html", "html_out", type=OutputPath(file_okay=False), metavar="DIR",
              help="Write a static HTML report folder (opens from disk, makes no network request).")
@click.option("--title", help="Title of the HTML report [default: the generated images' source].")
@click.option("--split", type=click.Choice(SPLITS), default=AuditFiles.split, show_default=True,
              help="Split of --train to read from MedMNIST-style .npz files.")
@click.option("--generated-split", type=click.Choice(SPLITS), default=AuditFiles.generated_split,
              help="Split of --generated to read from a MedMNIST-style .npz holding several (required there).")
@click.option("--train-features", type=click.Path(dir_okay=False), help="Training features (.npy, one row per image).")
@click.option("--generated-features", type=click.Path(dir_okay=False), help="Generated features (.npy, one row per image).")
@click.option("--test", "test_spec", metavar="DATA", default=AuditFiles.test,
              help="Held-out real images the generator never saw: the baseline every figure is compared with, and "
                   "the C_T test set. Without it the baseline is unknown and C_T holds out part of --train.")
@click.option("--test-split", type=click.Choice(SPLITS), default=AuditFiles.test_split, show_default=True,
              help="Split of --test to read from MedMNIST-style .npz files.")
@click.option("--test-features", type=click.Path(dir_okay=False), help="Test features (.npy), with --test.")
@click.option("--ct-cells", type=IntRange(min=1), default=AuditConfig.ct_cells,
              help="k-means cells of the C_T test [default: ~25 test images a cell, ≤ 10].")
@click.option("--ct-holdout", type=FloatRange(0, 1, min_open=True, max_open=True), default=AuditConfig.ct_holdout,
              show_default=True, help="Fraction of --train held out for C_T when no --test is given.")
@limit_option(help="Use only the first N training images (--generated-limit and --test-limit limit the others).",
              default=AuditFiles.limit)
@click.option("--generated-limit", type=IntRange(min=1), default=AuditFiles.generated_limit, metavar="N",
              help="Use only the first N generated images.")
@click.option("--test-limit", type=IntRange(min=1), default=AuditFiles.test_limit, metavar="N",
              help="Use only the first N held-out images.")
@max_memory_option("the nearest-neighbour search")
@cluster_options("the nearest-neighbour searches")
@quiet_option()
@force_option()
def audit(train_spec, gen_spec, gammas, json_out, csv_out, html_out, title, split, generated_split, train_features,
          generated_features, test_spec, test_split, test_features, ct_cells, ct_holdout, limit, generated_limit,
          test_limit, max_memory, scheduler, workers, quiet, force):
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
    con = Console(quiet, json_out)
    files = AuditFiles(train_spec, gen_spec, test=test_spec, split=split, generated_split=generated_split,
                       test_split=test_split, train_features=train_features, generated_features=generated_features,
                       test_features=test_features, limit=limit, generated_limit=generated_limit,
                       test_limit=test_limit)
    with client_for(scheduler, workers) as client:
        result, outs = audit_files(files, AuditConfig(ct_cells=ct_cells, ct_holdout=ct_holdout), gammas,
                                   json_path=None if json_to_stdout(json_out) else json_out, csv_path=csv_out,
                                   html_dir=html_out, title=title, force=force, max_memory=gib_to_bytes(max_memory),
                                   client=client)
    if json_out:
        write_json(json_out, report_json(result, per_image=True))
    for line in summary_lines(result):
        con.result(line)
    if outs:
        con.result("wrote " + ", ".join(outs))


COMMANDS = [audit]
