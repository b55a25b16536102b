"""Shared CLI plumbing: one-line errors, --debug, shared option types."""
from __future__ import annotations

import sys

import click

from fscert.errors import FscertError


def fail(msg: str, code: int = 1) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(code)


class FscertGroup(click.Group):
    """Click group that turns any failure into one line on stderr and a non-zero exit.

    Usage errors (a bad option value, a missing option, an unknown command) are one line too,
    ``error: MESSAGE (see 'fscert CMD --help')``, exit 2. `--debug` (on the group) re-raises
    so the traceback is shown.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:     # a bare `fscert` or `fscert nfig`: show the help
            click.echo(e.ctx.get_help() if e.ctx is not None else e.format_message())
            sys.exit(0)
        except click.UsageError as e:
            where = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
            fail(_one_line(e.format_message()) + where, e.exit_code)
        except click.ClickException as e:
            fail(_one_line(e.format_message()), e.exit_code)
        except (click.Abort, KeyboardInterrupt) as e:
            fail(_interrupted(e), 128 + getattr(e, "signum", 2))
        except BrokenPipeError:
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt as e:
            fail(_interrupted(e), 128 + getattr(e, "signum", 2))
        except FscertError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            fail(str(e))
        except Exception as e:  # noqa: BLE001 - the last line of defence
            if ctx.obj and ctx.obj.get("debug"):
                raise
            first = (str(e).splitlines() or [""])[0]
            fail(f"{type(e).__name__}: {first} (run with --debug for the traceback)")


def _interrupted(e: BaseException) -> str:
    """The message of Ctrl-C (exit 130) or a termination signal (SIGTERM: 143, SIGHUP: 129)."""
    what = f"terminated by {e}" if getattr(e, "signum", None) else "interrupted"
    return f"{what}; no output was written"


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split())


def positive_float(name: str):
    def check(ctx, param, value):
        if value is None:
            return value
        vals = value if isinstance(value, tuple) else (value,)
        for v in vals:
            if not v > 0:
                raise click.BadParameter(f"must be a positive number, got {v}")
        return value
    return check


def non_negative_int(ctx, param, value):
    if value is not None and value < 0:
        raise click.BadParameter(f"must be ≥ 0, got {value}")
    return value


def positive_int(ctx, param, value):
    if value is not None and value < 1:
        raise click.BadParameter(f"must be ≥ 1, got {value}")
    return value


def tau_check(ctx, param, value):
    if value is not None and not (0 <= value < 1e6):
        raise click.BadParameter(f"τ must be ≥ 0, got {value}")
    return value


def kappa_check(ctx, param, value):
    if value is not None and not (value > 0 and value < 1e6):
        raise click.BadParameter(f"κ must be a positive number, got {value}")
    return value


def progress_enabled() -> bool:
    return sys.stderr.isatty()




def max_memory_option(what: str):
    """``--max-memory GiB``: refuse before the work when its estimate is larger."""
    return click.option("--max-memory", "max_memory", type=click.FloatRange(min=0, min_open=True), default=None,
                        metavar="GiB",
                        help=f"Memory {what} may use, estimated before it starts "
                             "[default: ¾ of the machine's memory].")


def echo_err(line: str) -> None:
    """Diagnostics (estimates, notes) go to stderr; results to stdout."""
    click.echo(line, err=True)


# --- output conventions shared by every command (issue 12 item 8) -------------------------------
#: ``--json PATH``: PATH "-" means stdout; then stdout carries the JSON and nothing else.
STDOUT = "-"


def json_option(what: str = "the result"):
    """``--json PATH``: write ``what`` as JSON to PATH, or to stdout with ``--json -``."""
    return click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True), metavar="PATH|-",
                        help=f"Write {what} as JSON to PATH ('-': stdout, which then holds only the JSON).")


def quiet_option():
    """``--quiet``: no progress, estimates or stage lines on stderr; errors are still printed."""
    return click.option("--quiet", "-q", is_flag=True, help="Print only results and errors.")


def json_to_stdout(json_out: str | None) -> bool:
    return json_out == STDOUT


def write_json(dest: str, obj, force: bool = True) -> None:
    """Write ``obj`` as JSON to ``dest`` (atomically: temporary file, then rename) or to stdout for "-"."""
    import json

    from fscert.errors import atomic_path

    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    if dest == STDOUT:
        click.echo(text, nl=False)
        return
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


class Console:
    """Where a command's lines go: results to stdout (or stderr when stdout holds ``--json -``),
    diagnostics to stderr unless ``quiet``."""

    def __init__(self, quiet: bool = False, json_out: str | None = None):
        self.quiet = quiet
        self.results_to_stderr = json_to_stdout(json_out)

    def result(self, line: str) -> None:
        """A result line: stdout; stderr when stdout holds the JSON (then not at all if quiet)."""
        if not (self.quiet and self.results_to_stderr):
            click.echo(line, err=self.results_to_stderr)

    def log(self, line: str) -> None:
        if not self.quiet:
            click.echo(line, err=True)

    @property
    def progress(self) -> bool:
        return progress_enabled() and not self.quiet
