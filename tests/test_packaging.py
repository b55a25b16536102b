"""The built wheel carries everything fscert reads at run time (issue 13: packaging): the report
templates (reports/ → fscert_reports), the bundled datasets (data/ → fscert_data) and the
per-unit costs of the time estimates (fscert/costs.json); installed with pip into a fresh
virtual environment, `fscert certify` and `fscert report` work from a folder outside the
source tree, with the checkout not importable."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: what the wheel is built from (pyproject.toml maps the folders to packages)
SOURCES = ["pyproject.toml", "README.md", "fscert", "cli", "reports", "data"]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a copy of the sources (no build/ or egg-info in the checkout)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(p, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", str(base / "dist"), str(src)])
    (whl,) = (base / "dist").glob("fscert-*.whl")
    return whl


def test_wheel_ships_templates_data_and_costs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (ROOT / "reports").iterdir() if p.suffix in (".j2", ".css", ".js")}
    assert {f"fscert_reports/{n}" for n in shipped} <= names
    assert {"fscert_data/mnist.npz", "fscert_data/pneumoniamnist.npz", "fscert/costs.json", "fscert/py.typed"} <= names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "fscert").rglob("__init__.py")}
    missing = sorted(p for p in packages if f"{p}/__init__.py" not in names)
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml"
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "fscert").rglob("*.py") if "__pycache__" not in p.parts}
    modules |= {f"fscert_cli/{p.name}" for p in (ROOT / "cli").glob("*.py")}
    assert modules <= names, sorted(modules - names)


@pytest.mark.slow
def test_installed_wheel_certifies_and_reports_outside_the_checkout(wheel, tmp_path):
    """A fresh venv sees the dependencies of this one through a .pth file (no network), gets the
    wheel with `pip install --no-deps`, and runs the CLI from a folder outside the checkout."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    deps = Path(sysconfig.get_paths()["purelib"])          # this venv's site-packages: torch, numpy, click, …
    (site / "deps.pth").write_text(f"{deps}\n")            # a plain path: deps' own .pth files (the editable
    #                                                        install of the checkout) are not run
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index", str(wheel)])

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("FSCERT_DATA", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    code = ("import sys, fscert, fscert_cli, fscert.shipped as s, fscert.resources as r; "
            "print(fscert.__file__); print(fscert_cli.__file__); print(s.TEMPLATE_DIR); print(s.DATA_DIR); "
            "print(r.reference_costs().machine); print('\\n'.join(sys.path))")
    lines = _run([str(py), "-c", code], cwd=work, env=env).stdout.splitlines()
    for p in lines[:4]:
        assert Path(p).is_relative_to(site), p
    assert lines[4]
    assert not [p for p in lines[5:] if p and Path(p).resolve().is_relative_to(ROOT)
                and not Path(p).resolve().is_relative_to(ROOT / ".venv")], lines[5:]

    fscert = str(venv / "bin" / "fscert")
    _run([fscert, "certify", "mnist", "--limit", "8", "--out", "run", "--epochs", "1", "--finetune-epochs", "1",
          "--draw-finetune-epochs", "1", "--hidden", "8", "--trials", "1", "--quiet"], cwd=work, env=env)
    assert (work / "run" / "cert.h5").is_file() and (work / "run" / "report" / "index.html").is_file()
    out = _run([fscert, "report", "run/cert.h5", "--out", "rep", "--train", "mnist"], cwd=work, env=env)
    assert (work / out.stdout.strip().splitlines()[-1]).resolve() == (work / "rep" / "index.html").resolve()
    rep = work / "rep"
    for name in ("index.html", "data.js", "report.css", "report.js", "summary.json", "images.csv"):
        assert (rep / name).is_file() and (rep / name).stat().st_size > 0, name
    assert list((rep / "sprites").glob("*.png"))
    assert (rep / "report.css").read_bytes() == (ROOT / "reports" / "report.css").read_bytes()
