"""`fscert audit` from files: read the sets and their features, audit, write the CSV and HTML.

:func:`audit_files` reads the training, generated and held-out images (:func:`fscert.data.load_dataset`,
native size, names and order kept) or user features (``.npy``, one row per image), runs
:func:`fscert.audit.audit` (UIR Eq. 9, M-UIR Eq. 10, peers, baseline) and writes the per-image
CSV (:func:`fscert.audit_tables.write_csv`) and the static HTML report. Guarantees: clashing or
existing outputs (without ``force``) and inconsistent options are refused with one line before
any work; every file is written atomically.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .audit import DEFAULT_GAMMAS, AuditConfig, audit
from .audit_report import build_audit_report
from .audit_tables import write_csv
from .data import Dataset, load_dataset, match_channels
from .errors import FscertError
from .fileio import atomic_path, check_output_path

logger = logging.getLogger(__name__)


@dataclass
class AuditFiles:
    """Where `fscert audit`'s sets come from: DATA specs (file, folder or bundled name), the split
    of each MedMNIST-style .npz, optional feature files and "the first N" limits."""

    train: str
    generated: str
    test: str | None = None
    split: str = "train"
    generated_split: str | None = None      # None: the file must hold one set (else name its split)
    test_split: str = "test"
    train_features: str | None = None
    generated_features: str | None = None
    test_features: str | None = None
    limit: int | None = None
    generated_limit: int | None = None
    test_limit: int | None = None

    def validate(self) -> "AuditFiles":
        if (self.train_features is None) != (self.generated_features is None):
            raise FscertError("give both --train-features and --generated-features, or neither")
        if self.test_features is not None and self.test is None:
            raise FscertError("--test-features needs --test")
        if self.test_limit is not None and self.test is None:
            raise FscertError("--test-limit needs --test")
        return self

    def provenance(self) -> dict:
        """What the audit records about its inputs (``params.extra``)."""
        return {"data": {"train": str(self.train), "generated": str(self.generated), "test": self.test,
                         "split": self.split, "generated_split": self.generated_split,
                         "test_split": self.test_split if self.test else None,
                         "train_features": self.train_features, "generated_features": self.generated_features,
                         "test_features": self.test_features},
                "limit": self.limit, "generated_limit": self.generated_limit, "test_limit": self.test_limit}


def load_features(path: str | None, limit: int | None, name: str) -> np.ndarray | None:
    """Feature rows from an ``.npy`` (no pickles), the first ``limit`` of them; None without a path."""
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


def check_outputs(json_path: str | None, csv_path: str | None, html_dir: str | None, force: bool) -> list[str]:
    """Refuse clashing or existing outputs before any work; return the files and folders to write."""
    outs = [p for p in (json_path, csv_path, html_dir) if p]
    resolved = [Path(p).resolve() for p in outs]
    if len(set(resolved)) < len(resolved):
        raise FscertError("--json, --csv and --html must name different paths")
    for p in outs:
        check_output_path(p, force)
    return outs


def _read(spec: str, limit: int | None, split: str | None, split_option: str) -> Dataset:
    """One set at its native size (:func:`fscert.data.load_dataset`), its notices logged at WARNING."""
    ds = load_dataset(spec, limit=limit, split=split, split_option=split_option, warn=False)
    for line in ds.notes:
        logger.warning(line)
    return ds


def audit_files(files: AuditFiles, config: AuditConfig | None = None, gammas=DEFAULT_GAMMAS, *,
                json_path: str | None = None, csv_path: str | None = None, html_dir: str | None = None,
                title: str | None = None, force: bool = False,
                max_memory: int | None = None, client=None) -> tuple[dict, list[str]]:
    """Audit ``files`` and write the CSV (``csv_path``) and the HTML report (``html_dir``).

    ``json_path`` is only checked here (the caller writes :func:`fscert.audit.report_json` of the
    result there). Returns the :func:`fscert.audit.audit` result and the outputs, in the order
    json, csv, html. In pixel space an RGB file of gray images is compared as gray. The sets'
    notices (skipped files, :attr:`fscert.data.Dataset.notes`) are logged at WARNING, the
    estimate at INFO (:mod:`fscert.resources`)."""
    outs = check_outputs(json_path, csv_path, html_dir, force)
    files.validate()
    train = _read(files.train, files.limit, files.split, "--split")
    gen = _read(files.generated, files.generated_limit, files.generated_split, "--generated-split")
    test = _read(files.test, files.test_limit, files.test_split, "--test-split") if files.test else None
    feats = None
    if files.train_features is not None:
        feats = (load_features(files.train_features, files.limit, "training"),
                 load_features(files.generated_features, files.generated_limit, "generated"))
    else:
        gen.images = match_channels(gen.images, train.images, str(files.generated))
        if test is not None:
            test.images = match_channels(test.images, train.images, str(files.test))
    tfeat = load_features(files.test_features, files.test_limit, "test")
    cfg = replace(config or AuditConfig(), extra=files.provenance())
    source = None
    if client is not None and feats is None:          # workers read their training shards from the file
        from .metrics.file_rows import file_rows_for

        source = file_rows_for(files.train, files.limit, files.split, train.images, train.names)
        logger.info("the Dask workers read their training shards from " + str(files.train) if source is not None
                    else "the training images are sent to the Dask workers (they cannot read them from the file)")
    result = audit(train, gen, gammas, features=feats, test_NCHW=test, test_features=tfeat, config=cfg,
                   max_memory=max_memory, client=client, train_source=source)
    if csv_path:
        with atomic_path(csv_path) as tmp:
            write_csv(tmp, result, "generated")
    if html_dir:
        build_audit_report(result, html_dir, train.images, gen.images, test.images if test is not None else None,
                           force=force, title=title)
    return result, outs
