"""Entry point of the `fscert` command: a click group; each command lives in its own module.

The command modules import torch and numba (about 1–5 s together), so the group loads a
command's module only when that command runs or shows its help; `fscert --help` lists the
commands from :data:`SHORT_HELP` without importing any (tests/test_cli_conventions.py checks
that each line equals the command's own short help)."""
from __future__ import annotations

import importlib
import logging
import warnings

import click

from fscert import __version__

from .common import FscertGroup
from .log_lines import set_log_level

# command modules, one per command (named after its verb), each exposing COMMANDS: its click commands
COMMAND_MODULES = ["train", "encode", "sample", "audit", "draw", "finetune", "enumerate", "verify", "certify",
                   "report", "experiment", "nfig"]

#: each command's one-line help as `fscert --help` lists it (equal to the command's own: tested)
SHORT_HELP = {
    "audit": "Audit generated images for memorization of the training set (FS-LAR §5.1).",
    "certify": "Certify an FS-LAR generator trained on DATA, end to end.",
    "draw": "Draw the empirical set E: T Rademacher samples of every training latent, each bit flipped with "
            "probability q(τ, κ) (DESIGN §6.1).",
    "encode": "Encode DATA to ±1 latents with MODEL.",
    "enumerate": "Certify: list every latent the generator can produce with its exact probability (DESIGN §6), "
                 "decode each one and audit it against the training set (DESIGN §7), comparing images at their "
                 "stored size (28×28 images: without the border the model's canvas adds).",
    "experiment": "Reproduce one FS-LAR figure at CPU-sized settings.",
    "finetune": "Fine-tune the decoder on E (each sample's target: its source image, weighted by its count) so "
                "that it has seen every latent it will decode (DESIGN §6.2, paper A.3.6).",
    "nfig": "NFIG (next-frequency image generation), a network generator audited from its samples.",
    "report": "Write a self-contained HTML report of CERTIFICATE to the --out folder.",
    "sample": "Draw latents from an FS-LAR generator (paper §4.2).",
    "train": "Train the local autoencoder on DATA (both phases).",
    "verify": "Recompute the certificate's content hash and, given its inputs, their fingerprints and the whole "
              "certificate (metrics in its comparison geometry, decoder fidelity, near-copies of the "
              "reconstructions); exit 0 only when everything matches (one line per difference otherwise).",
}


class LazyGroup(FscertGroup):
    """The top-level group: a command's module is imported the first time the command is looked up."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self._loaded: set[str] = set()

    def _load(self, module: str) -> None:
        if module not in self._loaded:
            self._loaded.add(module)
            for cmd in importlib.import_module(f"fscert_cli.{module}").COMMANDS:
                self.add_command(cmd)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SHORT_HELP)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in SHORT_HELP and name not in self.commands:
            self._load(name)
        return super().get_command(ctx, name)

    def load_all(self) -> dict[str, click.Command]:
        """Every command, imported (for tests and tools that walk the whole CLI)."""
        for module in COMMAND_MODULES:
            self._load(module)
        return self.commands

    def leaf_commands(self) -> list[tuple[str, click.Command]]:
        """(path, command) of every leaf command, sorted, e.g. ("nfig sample", <Command>)."""
        out: list[tuple[str, click.Command]] = []
        for name, cmd in sorted(self.load_all().items()):
            if isinstance(cmd, click.Group):
                out += [(f"{name} {sub}", c) for sub, c in sorted(cmd.commands.items())]
            else:
                out.append((name, cmd))
        return out

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(n) for n in SHORT_HELP)
        rows = [(n, click.utils.make_default_short_help(SHORT_HELP[n], limit)) for n in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fscert")
@click.option("--debug", is_flag=True,
              help="Show full tracebacks instead of one-line errors, and fscert's DEBUG lines.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """fscert: train, sample, enumerate and certify finite-support local autoregressive
    (FS-LAR) image generators, and audit any generator's images for memorization.

    Typical flow: `fscert train DATA --out m.pt`, `fscert encode m.pt DATA --out l.h5`,
    `fscert draw`, `fscert finetune`, `fscert enumerate`, `fscert verify`, or all at once
    with `fscert certify DATA --out DIR`. DATA is a file, a folder of images, or a
    bundled name (mnist, pneumoniamnist).

    Every command: `--out/-o` names its output, `--limit N` takes the first N training
    images, `--quiet/-q` prints only results and errors, `--json -` (where there is
    `--json`) writes the result as JSON to stdout and nothing else there. Progress goes to
    stderr: bars on a terminal, a line every 30 s elsewhere.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    # fscert's log records are stderr lines while the group runs (FscertGroup.main, cli/log_lines.py):
    # INFO (stage lines, estimates) by default, DEBUG with --debug, WARNING with a command's --quiet
    set_log_level(logging.DEBUG if debug else logging.INFO)
    # other libraries' records (h5py, PIL, ...): warnings, everything with --debug; fscert's do not reach it
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(message)s")



def __getattr__(name: str):
    """``COMMANDS``: every command, in COMMAND_MODULES order, imported on first use (tests build
    throwaway groups from them)."""
    if name == "COMMANDS":
        cmds = cli.load_all()
        return [cmds[n] for n in COMMAND_MODULES]
    raise AttributeError(name)


def main() -> None:
    from fscert.errors import install_signal_handlers

    install_signal_handlers()          # SIGTERM / SIGHUP clean up like Ctrl-C (not under CliRunner tests)
    cli(prog_name="fscert")


if __name__ == "__main__":
    main()
