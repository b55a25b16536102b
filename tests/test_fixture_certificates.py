"""Behaviour must not change across the restructure (issue 13): the certificates committed in
tests/fixtures/refactor/ (written before it) are reproduced from the same inputs by the CLI.

Integer, boolean and image datasets and every probability must be equal byte for byte; floats
that pass through BLAS or float64 decoding (PSNR, masses) to 1e-12 relative.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fscert.certificate import read_certificate
from fscert_cli.main import cli

FIX = Path(__file__).parent / "fixtures" / "refactor"
ARGS = ["--latents", str(FIX / "empirical.h5"), "--rho", "1", "--model", str(FIX / "model.pt"), "--train", "mnist",
        "--limit", "8", "--train-latents", str(FIX / "latents.h5"), "--gamma", "11.8", "--gamma", "11.9", "-q"]
CASES = {"cert_listed.h5": [], "cert_searched.h5": ["--near-copies-only", "--max-images", "200"]}
NEAR = ("psnr", "pair_psnr", "near_psnr", "best_psnr", "recon_psnr", "exposure_low", "exposure_high")
FIGURES = ("memorization_mass", "memorization_mass_low", "memorization_mass_high", "uir", "m_uir", "uir_weighted",
           "m_uir_weighted", "fidelity", "recon_memorization_mass")


def _datasets(cert) -> dict[str, np.ndarray]:
    out = {k: getattr(cert, k) for k in ("latents", "prob", "log_prob", "images", "nearest_train", "psnr", "flags",
                                         "m_uir") if getattr(cert, k, None) is not None}
    out.update(cert.extra)
    return {k: np.asarray(v) for k, v in out.items()}


def _close(a, b, where: str) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-15) or (np.isnan(a) and np.isnan(b)), where
    else:
        assert a == b, where


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_certificate_reproduced(tmp_path, name):
    out = tmp_path / name
    r = CliRunner().invoke(cli, ["enumerate", *ARGS, *CASES[name], "--out", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    want, got = read_certificate(FIX / name), read_certificate(out)
    dw, dg = _datasets(want), _datasets(got)
    assert sorted(dw) == sorted(dg)
    for k in dw:
        a, b = dw[k], dg[k]
        assert a.shape == b.shape and a.dtype == b.dtype, k
        if a.dtype.kind == "f" and k in NEAR:
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=0, err_msg=k)
        else:
            assert a.tobytes() == b.tobytes(), f"dataset {k} differs"
    assert got.attrs["reachable_count"] == want.attrs["reachable_count"]
    assert got.attrs["dead_end_mass"] == want.attrs["dead_end_mass"]
    assert got.attrs.get("verdict_scope") == want.attrs.get("verdict_scope")
    for k in FIGURES:
        if k in want.attrs:
            a, b = want.attrs[k], got.attrs[k]
            a, b = (json.loads(v) if isinstance(v, str) else v for v in (a, b))
            _close(a, b, k)
