"""Start-up time of the CLI (`make bench`): `fscert --help` against a bare `python -c pass` and
against importing torch, measured in the same run (medians of 5). Prints ratios; asserts only
that the help was printed."""
from __future__ import annotations

import statistics
import subprocess
import sys
import time


def _median_s(args: list[str], n: int = 5) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = subprocess.run(args, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        assert out.returncode == 0, out.stderr
    return statistics.median(times)


def test_help_startup_against_bare_python_and_torch_import():
    bare = _median_s([sys.executable, "-c", "pass"])
    torch = _median_s([sys.executable, "-c", "import torch"])
    helps = _median_s([sys.executable, "-c", "from fscert_cli.main import main; import sys; "
                                             "sys.argv = ['fscert', '--help']; main()"])
    print(f"\n[startup] fscert --help {helps:.3f} s, bare python {bare:.3f} s (×{helps / bare:.1f}), "
          f"import torch {torch:.3f} s (help / torch ×{helps / torch:.2f})")
