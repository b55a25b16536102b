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
