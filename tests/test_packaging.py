"""The built wheel carries everything fscert reads at run time (issue 13: packaging): the report
templates (reports/ → fscert_reports) and the bundled datasets (data/ → fscert_data), and an
installed copy finds them outside the source tree."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_templates_and_data_and_finds_them_installed(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "whl"), str(ROOT)], capture_output=True, text=True)
    if build.returncode != 0 and "No module named pip" in build.stderr:
        pytest.skip("pip is not available in this interpreter")
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "whl").glob("fscert-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (ROOT / "reports").iterdir() if p.suffix in (".j2", ".css", ".js")}
    assert {f"fscert_reports/{n}" for n in shipped} <= names
    assert {"fscert_data/mnist.npz", "fscert_data/pneumoniamnist.npz"} <= names
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)                                       # a wheel installs by unpacking
    code = ("import fscert, fscert.shipped as s, fscert.data as d; "
            "print(fscert.__file__); print(s.TEMPLATE_DIR); print(s.DATA_DIR); print(d.load_images('mnist', limit=2).shape)")
    env = {k: v for k, v in os.environ.items() if k != "FSCERT_DATA"}
    env["PYTHONPATH"] = str(target)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    file_, templates, data, shape = out.stdout.split("\n")[:4]
    assert Path(file_).is_relative_to(target)
    assert Path(templates) == target / "fscert_reports" and (Path(templates) / "index.html.j2").is_file()
    assert Path(data) == target / "fscert_data" and shape == "(2, 1, 32, 32)"
