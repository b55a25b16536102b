"""`fscert report`: a static HTML report of a certificate (fscert/report.py)."""
from __future__ import annotations

from pathlib import Path

import click

from fscert.certificate import attr_json, read_certificate
from fscert.data import load_images
from fscert.geometry import load_for_model
from fscert.errors import FscertError
from fscert.report import build_report

from .common import force_option, limit_option, out_option, param_default, progress_enabled, quiet_option, split_option


@click.command("report")
@click.argument("certificate", type=click.Path(dir_okay=False))
@out_option("Output folder for the report (index.html, data.js, sprites/, images.csv, summary.json).",
            name="html_dir", folder=True, hidden_aliases=("--html",))
@click.option("--train", "train", default=None, metavar="DATA",
              help="The training images the certificate was computed against, shown next to each image "
                   "as its nearest training image (a file, a folder of images, or a bundled name).")
@split_option(param_default(load_images, "split"))
@limit_option("Use only the first N training images [default: the number recorded in the certificate].")
@click.option("--title", default=None, help="Title of the report page.")
@force_option("an existing output folder")
@quiet_option(expose_value=False)
def report(certificate: str, html_dir: str, train: str | None, split: str, limit: int | None, title: str | None,
           force: bool) -> None:
    """Write a self-contained HTML report of CERTIFICATE to the --out folder.

    The page lists every image with its exact probability and near-copy flags, next to its
    nearest training image (with --train), sortable, filterable and paginated; it makes no
    network request. Prints the path of index.html.
    """
    cert = read_certificate(certificate)
    if Path(html_dir).exists() and not force:  # say so before loading the training set
        raise FscertError(f"output folder {click.format_filename(html_dir)} already exists (use --force to overwrite)")
    train_images = None
    if train is not None:
        if limit is None:
            cfg = attr_json(cert, "config", {})
            limit = cfg.get("train_limit") if isinstance(cfg, dict) else None
        # on the certificate's canvas: padded or resized as its recorded geometry says
        train_images, _ = load_for_model(train, None, limit=limit, split=split, geometry=cert.attrs.get("geometry"))
    index = build_report(cert, html_dir, train_images=train_images, force=force, title=title,
                         progress=progress_enabled(), source=certificate)
    click.echo(str(index))


COMMANDS = [report]
