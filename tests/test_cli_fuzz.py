"""Property tests of the CLI's option parsing (issue 7 §6): for any value, the exact exit code the
conventions give (README "Command reference"), and a one-line error, never a traceback and never
a partial output.

* exit 2, a usage error: a value click cannot read as the option's type, or outside its range
  (NaN and ±inf included: τ, κ and γ must be finite numbers);
* exit 1: a value the command accepts that makes the work impossible (here: more reachable
  latents than ``--max-images``, the count coming from the library's exact counter);
* exit 0: the output is written.
"""
import math

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fscert.enumeration import count_reachable
from fscert.latents import write_latents
from fscert_cli.main import cli

NUM = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32).map(repr),
                st.integers(-10, 10).map(str), st.sampled_from(["", "abc", "1e400", "-0", "nan", "2,5"]))
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LATENTS = np.where(np.random.default_rng(0).random((5, 1, 4, 4)) > 0.5, 1, -1).astype(np.int8)


class Usage(Exception):
    """The value is a usage error (exit 2)."""


def int_at_least(text: str, low: int) -> int:
    """What click's integer option with a lower bound accepts: Python's int() of the text, ≥ low."""
    try:
        v = int(text)
    except ValueError:
        raise Usage from None
    if v < low:
        raise Usage
    return v


def finite_float(text: str, positive: bool) -> float:
    """A finite float ≥ 0 (``positive``: > 0), as Python's float() reads the text."""
    try:
        v = float(text)
    except ValueError:
        raise Usage from None
    if not math.isfinite(v) or v < 0 or (positive and not v > 0):
        raise Usage
    return v


def expected(*checks) -> tuple[int, tuple]:
    """Exit 2 when any check is a usage error, else (0, the parsed values)."""
    try:
        return 0, tuple(c() for c in checks)
    except Usage:
        return 2, ()


@pytest.fixture(scope="module")
def latents(tmp_path_factory):
    d = tmp_path_factory.mktemp("fz")
    write_latents(d / "l.h5", LATENTS)
    return d


def check(result, out_path, code: int) -> None:
    """Exit ``code``; an error is one ``error:`` line, the last one on stderr, with no output file."""
    assert result.exit_code == code, (code, result.output)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith(("error:", "Error:"))]
    if code == 0:
        assert out_path.exists() and not errors, result.output
    else:
        assert not out_path.exists() and result.stdout == ""
        assert len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0], result.stderr


@FUZZ
@given(rho=NUM, tau=NUM, kappa=NUM)
def test_sample_options(latents, rho, tau, kappa):
    out = latents / "s.h5"
    out.unlink(missing_ok=True)
    code, _ = expected(lambda: int_at_least(rho, 0), lambda: finite_float(tau, False),
                       lambda: finite_float(kappa, True))
    r = CliRunner().invoke(cli, ["sample", "--latents", str(latents / "l.h5"), "--rho", rho, "--tau", tau,
                                 "--kappa", kappa, "-n", "3", "--out", str(out)])
    check(r, out, code)


@FUZZ
@given(rho=NUM, gamma=NUM, max_images=NUM)
def test_enumerate_options(latents, rho, gamma, max_images):
    out = latents / "c.h5"
    out.unlink(missing_ok=True)
    code, values = expected(lambda: int_at_least(rho, 0), lambda: finite_float(gamma, True),
                            lambda: int_at_least(max_images, 1))
    if code == 0:                       # too many reachable latents to list: refused (exit 1)
        code = 1 if count_reachable(LATENTS, values[0]).count > values[2] else 0
    r = CliRunner().invoke(cli, ["enumerate", "--latents", str(latents / "l.h5"), "--rho", rho, "--gamma", gamma,
                                 "--max-images", max_images, "--out", str(out)])
    check(r, out, code)


@FUZZ
@given(trials=NUM, tau=NUM, kappa=NUM, seed=NUM)
def test_draw_options(latents, trials, tau, kappa, seed):
    out = latents / "e.h5"
    out.unlink(missing_ok=True)
    code, _ = expected(lambda: int_at_least(trials, 1), lambda: finite_float(tau, False),
                       lambda: finite_float(kappa, True), lambda: int_at_least(seed, 0))
    r = CliRunner().invoke(cli, ["draw", "--latents", str(latents / "l.h5"), "--trials", trials, "--tau", tau,
                                 "--kappa", kappa, "--seed", seed, "--out", str(out)])
    check(r, out, code)


@pytest.mark.parametrize("args,code", [
    (["sample", "--rho", "-1"], 2), (["sample", "--tau", "inf"], 2), (["sample", "--kappa", "0"], 2),
    (["sample", "--tau", "1.5", "--kappa", "0.5"], 0), (["draw", "--trials", "0"], 2), (["draw", "--seed", "1e400"], 2),
    (["draw", "--trials", "2", "--tau", "-0"], 0), (["enumerate", "--rho", "4", "--gamma", "nan"], 2),
    (["enumerate", "--rho", "0", "--max-images", "10"], 1), (["enumerate", "--rho", "8", "--max-images", "10"], 0),
], ids=lambda v: " ".join(v) if isinstance(v, list) else str(v))
def test_known_cases(latents, args, code):
    """A few cases written out, so that the oracle above is itself checked against plain numbers."""
    out = latents / "k.h5"
    out.unlink(missing_ok=True)
    r = CliRunner().invoke(cli, [args[0], "--latents", str(latents / "l.h5"), *args[1:], "--out", str(out)]
                           + (["-n", "3"] if args[0] == "sample" else []))
    check(r, out, code)
