"""Issue 12's done-when for inputs: the 16-bit PNG, TIFF and DICOM copies of a generator's
images give the same audit as the 8-bit originals, through the CLI, and every per-image row
names its file.

The "generator" here is the one in the issue: exact copies of training X-rays (which an audit
must catch, not read saturated as "0 copies") and held-out X-rays, saved as files.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from test_inputs import png_bytes, write_dicom  # noqa: E402

from fscert.data import load_raw  # noqa: E402
from fscert_cli.main import cli  # noqa: E402

N_TRAIN, N_COPY, N_NEW = 60, 8, 8


def _write(d: Path, frames_u8: np.ndarray, kind: str) -> None:
    d.mkdir()
    for i, a in enumerate(frames_u8):
        name = d / f"gen_{i + 1}"                          # natural order: gen_2 before gen_10
        if kind == "png8":
            name.with_suffix(".png").write_bytes(png_bytes(a, 0, 8))
        elif kind == "png16":
            name.with_suffix(".png").write_bytes(png_bytes(a.astype(np.uint16) * 257, 0, 16))
        elif kind == "tif16":
            tifffile.imwrite(name.with_suffix(".tif"), a.astype(np.uint16) * 257)
        elif kind == "dcm16":
            write_dicom(name.with_suffix(".dcm"), a.astype(np.uint16) * 257)


def _audit(tmp_path: Path, kind: str, gen_u8: np.ndarray, train_npz: Path, test_npz: Path) -> tuple[dict, list]:
    d = tmp_path / kind
    _write(d, gen_u8, kind)
    out_json, out_csv = tmp_path / f"{kind}.json", tmp_path / f"{kind}.csv"
    r = CliRunner().invoke(cli, ["audit", "--train", str(train_npz), "--generated", str(d), "--test", str(test_npz),
                                 "--json", str(out_json), "--csv", str(out_csv), "--quiet"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    with out_csv.open() as f:
        rows = list(csv.DictReader(f))
    return json.loads(out_json.read_text()), rows


def _figures(rep: dict) -> dict:
    """Everything the audit computed, without provenance (paths, hashes) that differ by format."""
    keep = ("n_train", "n_generated", "uir", "m_uir", "m_uir_strict", "psnr", "authpct", "ct_test", "nn_ratio",
            "counts", "verdict", "baseline")
    return {k: rep.get(k) for k in keep}


@pytest.fixture(scope="module")
def xrays() -> np.ndarray:
    a = load_raw("pneumoniamnist")[: N_TRAIN + 2 * N_NEW]
    assert a.dtype == np.uint8
    return a


def test_16_bit_png_tiff_dicom_audit_like_the_8_bit_originals(tmp_path, xrays):
    train, held = xrays[:N_TRAIN], xrays[N_TRAIN:]
    gen = np.concatenate([train[:N_COPY], held[:N_NEW]])            # 8 exact copies, 8 images never trained on
    np.savez(tmp_path / "train.npz", images=train)
    np.savez(tmp_path / "test.npz", images=held[N_NEW:])
    results = {k: _audit(tmp_path, k, gen, tmp_path / "train.npz", tmp_path / "test.npz")
               for k in ("png8", "png16", "tif16", "dcm16")}
    rep8, rows8 = results["png8"]
    assert rep8["psnr"]["n_identical"] == N_COPY                    # the copies are caught, not read saturated
    assert rep8["uir"]["25"] == pytest.approx(N_NEW / (N_COPY + N_NEW))
    for kind, (rep, rows) in results.items():
        assert _figures(rep) == _figures(rep8), kind
        suffix = {"png8": ".png", "png16": ".png", "tif16": ".tif", "dcm16": ".dcm"}[kind]
        assert [r["name"] for r in rows] == [f"gen_{i + 1}{suffix}" for i in range(N_COPY + N_NEW)]
        assert [r["nearest_train_name"] for r in rows[:N_COPY]] == [f"#{i}" for i in range(N_COPY)]
        assert [r["psnr"] for r in rows] == [r["psnr"] for r in rows8]
