"""The held-out baseline of `fscert certify --test` (issue 12 item 5), against numpy by hand."""
from __future__ import annotations

import json

import numpy as np

from fscert.data import load_raw


def _psnr_nearest(q_u8: np.ndarray, t_u8: np.ndarray) -> np.ndarray:
    """Brute force: PSNR (peak 1) of each query image to its nearest training image, at 28×28."""
    q = q_u8.reshape(len(q_u8), -1).astype(np.float64) / 255
    t = t_u8.reshape(len(t_u8), -1).astype(np.float64) / 255
    mse = ((q[:, None, :] - t[None, :, :]) ** 2).mean(-1).min(1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(1 / mse)


def test_certify_with_heldout_images_records_the_baseline(tmp_path):
    from fscert.certificate import attr_json, read_certificate
    from fscert.certify import CertifyConfig, run_certify

    raw = load_raw("mnist")
    train_u8, held_u8 = raw[:8], np.concatenate([raw[:3], raw[500:509]])     # 3 copies of training images, 9 new
    np.savez(tmp_path / "held.npz", images=held_u8)
    job = CertifyConfig(n_train=8, epochs=3, finetune_epochs=1, draw_finetune_epochs=1, hidden=16, trials=2, rho=4,
                     gammas=(12.0, 30.0), test=str(tmp_path / "held.npz"))
    out = tmp_path / "run"
    run_certify(job, out, progress=False)
    cert = read_certificate(out / "cert.h5")
    b = attr_json(cert, "baseline")
    psnr = _psnr_nearest(held_u8, train_u8)
    assert b["n"] == 12
    for g in (12.0, 30.0):
        k = f"{g:g}"
        assert b["per_gamma"][k]["near_copies"] == int((psnr >= g).sum())
    assert b["per_gamma"]["30"]["near_copies"] == 3                          # the three exact copies
    summary = json.loads((out / "summary.json").read_text())
    assert "3 of 12" in json.dumps(summary) and "Held-out baseline" in json.dumps(summary)
    aud = json.loads((out / "audit.json").read_text())
    assert aud["ct_test"]["test_source"] == "test"                           # C_T uses the held-out images
    assert "Held-out baseline" in (out / "report" / "index.html").read_text()
