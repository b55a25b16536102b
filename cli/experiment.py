"""`fscert experiment NAME --out DIR`: the paper's figures at CPU-sized settings (fscert.experiments)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from fscert.fileio import atomic_dir

from .common import IntRange, Console, force_option, json_option, out_option, quiet_option, write_json

NAMES = ["training", "trials", "coverage", "tau", "rho", "consistency", "network", "compare"]


@click.command("experiment")
@click.argument("name", type=click.Choice(NAMES))
@out_option("Folder to write NAME.png and NAME.json into (created atomically).", folder=True)
@force_option("an existing output folder")
@click.option("--seed", type=IntRange(min=0), default=None,
              help="Random seed (≥ 0): the same seed gives the same result [default: the experiment's own].")
@click.option("--quick", is_flag=True, help="Tiny settings (seconds, for tests); numbers are not meaningful.")
@json_option("NAME.json (settings, the paper's numbers, ours)")
@quiet_option()
def experiment(name: str, out: str, force: bool, seed: int | None, quick: bool, json_out: str | None,
               quiet: bool) -> None:
    """Reproduce one FS-LAR figure at CPU-sized settings.

    \b
    training     Fig. 9   MSE, PSNR, mean |latent|, binary rate per epoch
    trials       Fig. 15  generated / unique images vs sampling trials 1..10 (MNIST-64, 1×8×8)
    coverage     Fig. 18/19  share of the enumerated images reached by 640 / 6,400 / 64,000 draws
    tau          Fig. 11  diversity (reachable count) vs fidelity (recon PSNR) as τ grows
    rho          Fig. 3   UIR and M-UIR vs observation range ρ = 0..5
    consistency  Fig. 10  patch-consistency difference map (Eq. 27–28), with/without transition
    network      A.3.3    network approximation vs direct sampling at ρ = 1, 3, 5, 7
    compare      FS-LAR direct vs NFIG vs full-context AR (UIR / M-UIR table, sample grid)

    Settings and the paper's numbers are in each experiment's docstring in fscert/experiments/
    and in the JSON ("settings", "paper").
    """
    # every experiment's dependencies (the NFIG peer, numba kernels, plotting): imported when one runs
    from fscert.experiments import run_experiment

    con = Console(quiet, json_out)
    with atomic_dir(out, force) as tmp:
        res = run_experiment(name, tmp, quick=quick, **({} if seed is None else {"seed": seed}))
    con.result(f"{name}: {res['seconds']:.0f} s → {out}/{name}.png, {out}/{name}.json")
    for line in res.get("summary", []):
        con.result(f"  {line}")
    if json_out:
        write_json(json_out, json.loads((Path(out) / f"{name}.json").read_text()))


COMMANDS = [experiment]
