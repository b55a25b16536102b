"""The paper's figures at CPU-sized settings (`fscert experiment NAME --out DIR`).

One module per figure, one function per experiment (paper figure → module):

=============  ===========================  ==============================================
name           paper                        module
=============  ===========================  ==============================================
training       Fig. 9 (A.1.7)               :mod:`.fig09_training`
trials         Fig. 15 (A.3.6)              :mod:`.fig15_trials`
coverage       Fig. 18 / 19 (A.3.6)         :mod:`.fig19_coverage`
tau            Fig. 11 (A.3.2)              :mod:`.fig11_tau`
rho            Fig. 3 (§5.1)                :mod:`.fig03_rho`
consistency    Fig. 10 (A.3.1, Eq. 27–28)   :mod:`.fig10_consistency` (map: :mod:`fscert.consistency`)
network        Fig. 12 (A.3.3)              :mod:`.fig12_network`
compare        — (the project's own)        :mod:`.compare` (FS-LAR vs NFIG vs full-context AR)
=============  ===========================  ==============================================

Each experiment takes the output folder, a seed and its size — full (the default), ``quick``
(``--quick``: seconds, numbers not meaningful) or ``tiny`` (the tests) — writes ``NAME.png``
into the folder and returns a JSON-ready dict with ``settings``, ``paper`` (what FS-LAR reports
for the same figure), the numbers, and ``summary`` (a few human-readable lines). The sizes are
each module's ``SIZES``; shared helpers are in :mod:`.common`, figure helpers in
:mod:`.plotting`. :func:`run_experiment` adds the run time, writes ``NAME.json`` and pins torch
to one thread (on a shared 2-core machine two torch threads are 5–25× slower than one for these
small models).

Memorization is judged against two references where it matters (DESIGN §7):

* ``train`` — the training images themselves (the paper's definition of UIR, Eq. 9);
* ``recon`` — the decoder's reconstructions of the training latents. CPU-sized autoencoders
  reconstruct at ≈ 20–28 dB, below γ = 30, so against the raw images *every* sample, even a
  verbatim copy of a training latent, would count as "unique". Against the reconstructions a
  copied latent has PSNR = ∞ and the metric measures what the *sampler* copies.
"""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Callable, Iterator

import torch

from ..errors import FscertError
from ..fileio import atomic_path
from ..jsonio import jsonable
from .compare import exp_compare
from .fig03_rho import exp_rho
from .fig09_training import exp_training
from .fig10_consistency import exp_consistency
from .fig11_tau import exp_tau
from .fig12_network import exp_network
from .fig15_trials import exp_trials
from .fig19_coverage import exp_coverage

#: name → experiment(out, seed=0, quick=False, tiny=False) → result dict (the CLI's order)
EXPERIMENTS: dict[str, Callable[..., dict]] = {
    "training": exp_training,
    "trials": exp_trials,
    "coverage": exp_coverage,
    "tau": exp_tau,
    "rho": exp_rho,
    "consistency": exp_consistency,
    "network": exp_network,
    "compare": exp_compare,
}

__all__ = ["EXPERIMENTS", "run_experiment", "torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """Run with ``n`` torch threads, restoring the previous setting afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def run_experiment(name: str, out_dir: str | Path, seed: int = 0, quick: bool = False, tiny: bool = False) -> dict:
    """Run one experiment into an existing folder: writes NAME.png and NAME.json, returns the dict.

    ``tiny`` (tests only, not offered by the CLI) runs the smallest size and is recorded in the
    JSON as ``"tiny": true``; full and quick runs write the keys they always wrote.
    """
    if name not in EXPERIMENTS:
        raise FscertError(f"unknown experiment '{name}' (choose from: {', '.join(EXPERIMENTS)})")
    out = Path(out_dir)
    if not out.is_dir():
        raise FscertError(f"output folder {out} does not exist")
    t0 = time.perf_counter()
    with torch_threads(1):
        res = EXPERIMENTS[name](out, seed=seed, quick=quick, tiny=tiny)
    size = {"tiny": True} if tiny else {}
    res = {"experiment": name, "seed": seed, "quick": quick, **size, **res, "seconds": time.perf_counter() - t0}
    with atomic_path(out / f"{name}.json") as tmp:
        tmp.write_text(json.dumps(jsonable(res), indent=1))
    return res
