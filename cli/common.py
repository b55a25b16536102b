"""Shared CLI plumbing: one-line errors, --debug, the library's log lines on stderr, shared option types."""
from __future__ import annotations

import contextlib
import inspect
import logging
import math
import sys

import click

from fscert.data import SPLITS
from fscert.errors import FscertError
from fscert.fit import Fit

from .log_lines import LOGGER, log_lines


def fail(msg: str, code: int = 1) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(code)


class FscertGroup(click.Group):
    """Click group that turns any failure into one line on stderr and a non-zero exit.

    Usage errors (a bad option value, a missing option, an unknown command) are one line too,
    ``error: MESSAGE (see 'fscert CMD --help')``, exit 2. `--debug` (on the group) re-raises
    so the traceback is shown. While it runs, the library's log records at INFO and above are
    lines on stderr (:func:`log_lines`).
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        with log_lines():
            return self._main(args, prog_name, complete_var, standalone_mode, **extra)

    def _main(self, args, prog_name, complete_var, standalone_mode, **extra):
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


# --- click's range types, worded like the library's checks --------------------------------------
def _range_words(t: click.IntRange | click.FloatRange) -> str:
    """The range of ``t`` in words: "≥ 0", "a finite positive number", "in 1..16", "in (0, 1)"."""
    lo, hi = t.min, t.max
    if hi is None:
        sign = ">" if t.min_open else "≥"
        if getattr(t, "finite", False):
            return "a finite positive number" if lo == 0 and t.min_open else f"a finite number {sign} {lo}"
        return "a positive number" if lo == 0 and t.min_open else f"{sign} {lo}"
    if lo is None:
        return f"{'<' if t.max_open else '≤'} {hi}"
    if isinstance(t, click.IntRange) and not (t.min_open or t.max_open):
        return f"in {lo}..{hi}"
    return f"in {'(' if t.min_open else '['}{lo}, {hi}{')' if t.max_open else ']'}"


class _Worded:
    """Mixin for click's range types: the value is parsed as click's plain number type does
    ("'abc' is not a valid float."), then range-checked by click; out of range (NaN, and ±inf
    where ``finite``, included) the message reads ``[SYMBOL ]must be RANGE, got VALUE``, e.g.
    "τ must be a finite number ≥ 0, got -1.0", as the library's checks word it."""

    symbol: str = ""
    finite: bool = False
    plain: click.ParamType

    def convert(self, value, param, ctx):
        number = self.plain.convert(value, param, ctx)
        if isinstance(number, float) and not math.isfinite(number) and (self.finite or math.isnan(number)):
            self._outside(number, param, ctx)
        try:
            return super().convert(number, param, ctx)
        except click.BadParameter:
            self._outside(number, param, ctx)

    def _outside(self, number, param, ctx):
        who = f"{self.symbol} " if self.symbol else ""
        self.fail(f"{who}must be {_range_words(self)}, got {number}", param, ctx)


class IntRange(_Worded, click.IntRange):
    """``click.IntRange`` (inclusive bounds unless ``min_open``/``max_open``) with worded errors."""

    plain = click.INT

    def __init__(self, min: int | None = None, max: int | None = None, min_open: bool = False,
                 max_open: bool = False, symbol: str = ""):
        super().__init__(min, max, min_open=min_open, max_open=max_open)
        self.symbol = symbol


class FloatRange(_Worded, click.FloatRange):
    """``click.FloatRange`` with worded errors; NaN is out of every range (click lets it through),
    and so are ±inf unless ``finite=False``: a usage error (exit 2) before any work. The
    library's ``validate()`` checks the same again for callers of the Python API."""

    plain = click.FLOAT

    def __init__(self, min: float | None = None, max: float | None = None, min_open: bool = False,
                 max_open: bool = False, symbol: str = "", finite: bool = True):
        super().__init__(min, max, min_open=min_open, max_open=max_open)
        self.symbol, self.finite = symbol, finite


#: the noise options of every command: τ ≥ 0, κ > 0 (Eq. 3, 5)
TAU = FloatRange(min=0, symbol="τ")
KAPPA = FloatRange(min=0, min_open=True, symbol="κ")


def param_default(func, name: str):
    """The default of parameter ``name`` of the library function ``func``: the one source of a
    CLI default that no config dataclass holds."""
    return inspect.signature(func).parameters[name].default


# --- progress and --quiet ------------------------------------------------------------------------
QUIET_KEY = "fscert.quiet"


def is_quiet() -> bool:
    """True inside a command run with ``--quiet``."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(QUIET_KEY))


def progress_enabled():
    """The ``progress`` argument for library calls (fscert.progress): ``True`` (tqdm bars) when
    stderr is a terminal, :data:`fscert.progress.LINES` elsewhere (a line every 30 s instead of
    bar redraws; falsy, so code that only knows tqdm draws nothing), ``False`` with --quiet."""
    from fscert.progress import LINES, is_terminal

    if is_quiet():
        return False
    return True if is_terminal() else LINES


@contextlib.contextmanager
def _silenced():
    """--quiet: the ``fscert`` logger at WARNING (no stage lines or estimates), and no warnings
    and no log records below errors (any library's) while the command runs."""
    import warnings

    before, log = logging.root.manager.disable, logging.getLogger(LOGGER)
    level = log.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log.setLevel(logging.WARNING)
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(before)
            log.setLevel(level)


def _quiet_callback(ctx: click.Context, param, value):
    """Record --quiet for :func:`echo_err` and :func:`progress_enabled`; silence warnings with it,
    else run a heartbeat (fscert.progress.heartbeat: off a terminal, a line after 30 s without any)
    while the command runs. Both are bound to the outermost context, closed even after a usage error."""
    from fscert.progress import heartbeat

    ctx.meta[QUIET_KEY] = bool(value)
    root = ctx.find_root()
    if value:
        root.with_resource(_silenced())
    elif not ctx.resilient_parsing:
        root.with_resource(heartbeat(ctx.info_name or "fscert", show=progress_enabled()))
    return value


# --- options shared by the commands: one name, one meaning, one help text --------------------------
class Option(click.Option):
    """A click option with old spellings kept as hidden aliases: they work, help and error
    messages show only the current names (``hidden_aliases=("--n-train",)``)."""

    def __init__(self, *args, hidden_aliases: tuple[str, ...] = (), **kw):
        super().__init__(*args, **kw)
        self.hidden_aliases = tuple(hidden_aliases)

    @contextlib.contextmanager
    def _shown(self):
        opts, secondary = self.opts, self.secondary_opts
        self.opts = [o for o in opts if o not in self.hidden_aliases]
        self.secondary_opts = [o for o in secondary if o not in self.hidden_aliases]
        try:
            yield
        finally:
            self.opts, self.secondary_opts = opts, secondary

    def get_help_record(self, ctx):
        with self._shown():
            return super().get_help_record(ctx)

    def get_error_hint(self, ctx) -> str:
        with self._shown():
            return super().get_error_hint(ctx)


def option(*decls: str, hidden_aliases: tuple[str, ...] = (), **kw):
    """``click.option`` with :class:`Option`; ``hidden_aliases`` are accepted too, never shown."""
    return click.option(*decls, *hidden_aliases, cls=Option, hidden_aliases=tuple(hidden_aliases), **kw)


class OutputPath(click.Path):
    """A path to write: never "-" (there is no stdout form of this output; a file named "-" would
    be made otherwise)."""

    def convert(self, value, param, ctx):
        if value in ("-", b"-"):
            self.fail("'-' (standard output) cannot hold this output; give a file or folder name", param, ctx)
        return super().convert(value, param, ctx)


def out_option(help: str, name: str = "out", required: bool = True, folder: bool = False,
               hidden_aliases: tuple[str, ...] = ()):
    """``--out PATH`` / ``-o PATH``: the output file (``folder``: folder) of a command."""
    return option("--out", "-o", name, required=required, hidden_aliases=hidden_aliases,
                  type=OutputPath(file_okay=not folder, dir_okay=folder), metavar="DIR" if folder else "PATH",
                  help=help)


def force_option(what: str = "existing outputs"):
    return click.option("--force", is_flag=True, help=f"Overwrite {what}.")


def seed_option(default: int):
    """``--seed N`` (≥ 0); ``default`` is the config field it stands for (e.g. ``TrainConfig.seed``)."""
    return click.option("--seed", type=IntRange(min=0), default=default, show_default=True,
                        help="Random seed (≥ 0): the same seed gives the same result.")


def lr_option(default: float):
    """``--lr`` (> 0): the Adam learning rate; ``default`` is the config field (``TrainConfig.lr``)."""
    return click.option("--lr", type=FloatRange(min=0, min_open=True), default=default, show_default=True,
                        help="Adam learning rate.")


def split_option(default: str):
    """``--split``: which split of a MedMNIST-style .npz DATA is read; ``default`` from the library."""
    return click.option("--split", type=click.Choice(SPLITS), default=default, show_default=True,
                        help="Which split of DATA to read (MedMNIST-style .npz files).")


def limit_option(help: str = "Use only the first N images of DATA.", default: int | None = None,
                 hidden_aliases: tuple[str, ...] = ()):
    """``--limit N``: everywhere "the first N (training) images"."""
    return option("--limit", "limit", type=IntRange(min=1), default=default, metavar="N",
                  show_default=default is not None, hidden_aliases=hidden_aliases, help=help)


def gamma_option(default: tuple[float, ...]):
    """``--gamma dB`` (repeatable): the PSNR thresholds γ (Eq. 9–10); given ones replace the default."""
    return click.option("--gamma", "gammas", type=FloatRange(min=0, min_open=True, symbol="γ"), multiple=True,
                        default=default, show_default=True, metavar="dB",
                        help="PSNR threshold γ in dB (repeatable).")


def batch_size_option(default: int, help: str = "Images per batch.", hidden_aliases: tuple[str, ...] = (),
                      name: str = "batch_size"):
    return option("--batch-size", name, type=IntRange(min=1), default=default, show_default=True,
                  hidden_aliases=hidden_aliases, help=help)


def max_memory_option(what: str):
    """``--max-memory GiB``: refuse before the work when its estimate is larger."""
    return click.option("--max-memory", "max_memory", type=FloatRange(min=0, min_open=True), default=None,
                        metavar="GiB",
                        help=f"Memory {what} may use, estimated before it starts "
                             "[default: ¾ of the machine's memory].")


class LatentGrid(click.ParamType):
    """``h`` or ``hxw`` (also ``h×w``): the latent grid, as (h, w)."""

    name = "grid"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        parts = str(value).lower().replace("×", "x").split("x")
        try:
            hw = tuple(int(p) for p in parts)
        except ValueError:
            hw = ()
        if len(hw) == 1:
            hw = (hw[0], hw[0])
        if len(hw) != 2 or min(hw) < 1:
            self.fail(f"{value!r} is not a latent grid: give h (square) or hxw, positive integers", param, ctx)
        return hw


def latent_grid_option():
    """``--latent-size h|hxw``: the latent grid; default: 4×4-pixel cells (8×8 at 32×32, 7×7 at 28×28)."""
    return click.option("--latent-size", "latent_hw", type=LatentGrid(), default=None, metavar="h|hxw",
                        help="Latent grid h×w; it must divide the image into equal blocks (Tab. 2–4 at 32×32: 8, 16, "
                             "32) [default: 4×4-pixel cells: 8 at 32×32, 7 at 28×28, 16 at 64×64].")


def fit_options():
    """``--pad`` / ``--resize H W``: how images reach the model's size (:class:`fscert.fit.Fit`);
    the command gets ``fit``."""
    def deco(f):
        f = click.option("--resize", nargs=2, type=IntRange(min=1), default=None, metavar="H W",
                         help="Resize the images (bilinear, antialiased) to H×W; every output then compares at "
                              "H×W and says so.")(f)
        return click.option("--pad", is_flag=True, default=False,
                            help="Zero-pad each side to the next multiple of 32 (28×28 → 32×32: the paper's MNIST "
                                 "set-up); images are still compared at their stored size. Default: the stored "
                                 "size, neither padded nor resized.")(f)
    return deco


def make_fit(pad: bool, resize) -> Fit:
    """The :class:`fscert.fit.Fit` of ``--pad`` / ``--resize`` (one error line when both)."""
    return Fit(pad=bool(pad), resize=tuple(resize) if resize else None).validate()


def cluster_options(what: str):
    """``--scheduler ADDRESS`` / ``--workers N``: run ``what`` on a Dask cluster
    (:func:`fscert.cluster.client_for`); the results are those of a single process."""
    def deco(f):
        f = click.option("--workers", type=IntRange(min=1), default=None, metavar="N",
                         help=f"Start a local Dask cluster of N worker processes (one thread each) for {what}.")(f)
        return click.option("--scheduler", metavar="ADDRESS", default=None,
                            help=f"Run {what} on a running Dask cluster (e.g. tcp://host:8786); the results are "
                                 "identical to a single process.")(f)
    return deco


def echo_err(line: str) -> None:
    """A diagnostic line of the CLI itself on stderr, none with --quiet (the library's estimates and
    stage lines are log records: :mod:`fscert_cli.log_lines`); results go to stdout."""
    if not is_quiet():
        click.echo(line, err=True)


# --- output conventions shared by every command (issue 12 item 8) -------------------------------
#: ``--json PATH``: PATH "-" means stdout; then stdout carries the JSON and nothing else.
STDOUT = "-"


def json_option(what: str = "the result"):
    """``--json PATH``: write ``what`` as JSON to PATH, or to stdout with ``--json -``."""
    return click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True), metavar="PATH|-",
                        help=f"Write {what} as JSON to PATH ('-': stdout, which then holds only the JSON).")


def quiet_option(expose_value: bool = True):
    """``--quiet``: no progress, estimates, stage lines or warnings on stderr; errors are still printed.

    Without ``expose_value`` the command gets no ``quiet`` argument: :func:`echo_err`,
    :func:`progress_enabled` and the log lines (:func:`_silenced`) obey it all the same."""
    return click.option("--quiet", "-q", is_flag=True, expose_value=expose_value, callback=_quiet_callback,
                        help="Print only results and errors (no progress, estimates or warnings).")


def json_to_stdout(json_out: str | None) -> bool:
    return json_out == STDOUT


def write_json(dest: str, obj, force: bool = True) -> None:
    """Write ``obj`` as JSON to ``dest`` (atomically: temporary file, then rename) or to stdout for "-"."""
    import json

    from fscert.fileio import atomic_path

    text = json.dumps(_strict_json(obj), indent=2, allow_nan=False) + "\n"
    if dest == STDOUT:
        click.echo(text, nl=False)
        return
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def _strict_json(x):
    """Plain JSON values: numpy scalars and arrays as Python, paths as strings, NaN and ±inf as null
    ("unknown", as summary.json writes them)."""
    import math
    from pathlib import PurePath

    if isinstance(x, dict):
        return {str(k): _strict_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict_json(v) for v in x]
    if isinstance(x, PurePath):
        return str(x)
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):      # numpy scalar or array
        return _strict_json(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


class Console:
    """Where a command's lines go: results to stdout (or stderr when stdout holds ``--json -``);
    diagnostics are the library's log records (:func:`log_lines`: stderr, none with ``quiet``)."""

    def __init__(self, quiet: bool = False, json_out: str | None = None):
        self.quiet = quiet
        self.results_to_stderr = json_to_stdout(json_out)

    def result(self, line: str) -> None:
        """A result line: stdout; stderr when stdout holds the JSON (then not at all if quiet)."""
        if not (self.quiet and self.results_to_stderr):
            click.echo(line, err=self.results_to_stderr)

    @property
    def progress(self):
        """The ``progress`` argument for library calls (see :func:`progress_enabled`)."""
        return False if self.quiet else progress_enabled()
