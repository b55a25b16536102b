"""Entry point of the `fscert` command: a click group; each command lives in its own module."""
from __future__ import annotations

import importlib
import logging
import warnings

import click

from fscert import __version__

from .common import FscertGroup

# command modules, each exposing COMMANDS: a list of click commands
COMMAND_MODULES = ["model_cmds", "sample_cmds", "audit_cmds", "certify_cmds", "pipeline_cmds", "report_cmds", "experiment_cmds", "nfig_cmds"]


@click.group(cls=FscertGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="fscert")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
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
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(message)s")


for _name in COMMAND_MODULES:
    for _cmd in importlib.import_module(f"fscert_cli.{_name}").COMMANDS:
        cli.add_command(_cmd)


def main() -> None:
    from fscert.errors import install_signal_handlers

    install_signal_handlers()          # SIGTERM / SIGHUP clean up like Ctrl-C (not under CliRunner tests)
    cli(prog_name="fscert")


if __name__ == "__main__":
    main()
