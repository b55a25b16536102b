"""Where fscert finds the files it ships: the report templates (``reports/``) and the bundled
datasets (``data/``).

In the source tree (and an editable install) they are the repository's top-level folders; a
built wheel carries the same folders as the packages ``fscert_reports`` and ``fscert_data``
(mapped in ``pyproject.toml``), so ``pip install fscert-*.whl`` works outside the source tree.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Iterable


def shipped_dir(package: str, folder: str) -> Path:
    """The folder ``folder`` of the source tree, or where the installed ``package`` lies."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            if Path(loc).is_dir():
                return Path(loc)
    return Path(__file__).resolve().parents[1] / folder


TEMPLATE_DIR = shipped_dir("fscert_reports", "reports")
DATA_DIR = Path(os.environ.get("FSCERT_DATA", shipped_dir("fscert_data", "data")))


#: script shared by both HTML reports; written in front of each page's own script, so a page
#: loads one file (its Content-Security-Policy allows only 'self' scripts either way)
SHARED_SCRIPT = "tiles.js"


def copy_static(names: Iterable[str], folder: Path) -> None:
    """Copy the report's static files ``names`` from :data:`TEMPLATE_DIR` into ``folder``; each
    ``.js`` file gets :data:`SHARED_SCRIPT` (the image tile both reports use) in front of it."""
    shared = (TEMPLATE_DIR / SHARED_SCRIPT).read_bytes()
    for name in names:
        text = (TEMPLATE_DIR / name).read_bytes()
        (Path(folder) / name).write_bytes(shared + b"\n" + text if name.endswith(".js") else text)
