"""fscert: certify finite-support local autoregressive (FS-LAR) image generators.

Every module logs through :mod:`logging` (``logging.getLogger(__name__)``, below the ``fscert``
logger): stage lines and estimates at INFO, details at DEBUG, notices at WARNING. The library
adds no handler but a :class:`logging.NullHandler`, so a Python caller sees nothing until it
configures logging (e.g. ``logging.basicConfig(level=logging.INFO)``); the CLI configures it.
"""
from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

from .errors import FscertError  # noqa: E402

__all__ = ["__version__", "FscertError", "load_model"]


def load_model(path, map_location: str = "cpu"):
    """Load an fscert autoencoder saved by `fscert train` (weights_only=True)."""
    from .autoencoder import load_model as _load

    return _load(path, map_location=map_location)
