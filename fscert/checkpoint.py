"""Model files: state dict + config dict, written atomically, read with ``weights_only=True``.

Model files are untrusted. Loading never unpickles code (a checkpoint that carries any is
refused with one line), and the format tag, version, config and weights are checked before
a model is built. Used by the autoencoder, the sampler network and NFIG.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from .errors import FscertError

from .fileio import atomic_path


def save_checkpoint(path: str | os.PathLike, fmt: str, version: int, config: dict, module: torch.nn.Module,
                    **extra: Any) -> None:
    """Write {format, version, config, state_dict, **extra} atomically."""
    blob = {"format": fmt, "version": version, "config": config,
            "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()}, **extra}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(blob, f)          # a file object: the archive's inner name does not depend on the temp name


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:160]


def load_checkpoint(path: str | os.PathLike, fmt: str, version: int, what: str) -> dict:
    """Read and check a checkpoint; ``what`` names the kind of model ("fscert autoencoder") in errors.

    Returns the blob with a validated ``config`` dict and ``state_dict``.
    """
    p = Path(path)
    if not p.is_file():
        raise FscertError(f"{what} file not found: {p}")
    with p.open("rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":                # torch.save writes a zip archive
        kind = "an empty file" if not head else "not a PyTorch zip archive"
        raise FscertError(f"{p} is not an {what} file ({kind})")
    try:
        with warnings.catch_warnings():      # e.g. "pickle protocol 4" notes on foreign files
            warnings.simplefilter("ignore")
            blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused (code in the file), truncated zip, not a torch file
        msg = _first_line(e)
        if "central directory" in msg or "zip archive" in msg:
            raise FscertError(f"{p} is a damaged or truncated {what} file (its zip archive is incomplete)") from None
        if "weights_only" in msg or "Unsupported global" in msg or "Unpickler" in type(e).__name__:
            raise FscertError(f"{p} carries pickled code or objects that are not plain weights; refused "
                              f"(model files are loaded with weights_only=True)") from None
        raise FscertError(f"{p} is not a loadable {what} file ({type(e).__name__}: {msg})") from None
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        raise FscertError(f"{p} is not an {what} file (missing format '{fmt}')")
    if not isinstance(blob.get("version"), int) or blob["version"] > version:
        raise FscertError(f"{p} has {what} format version {blob.get('version')}; this fscert reads up to {version}")
    if not isinstance(blob.get("config"), dict) or not isinstance(blob.get("state_dict"), dict):
        raise FscertError(f"{p} is a damaged {what} file (config or weights missing)")
    return blob


def check_config_keys(path: str | os.PathLike, config: dict, allowed: set[str], what: str) -> None:
    if set(config) - allowed:
        raise FscertError(f"{path} has an invalid {what} config (unknown keys: {sorted(set(config) - allowed)})")


def load_weights(path: str | os.PathLike, module: torch.nn.Module, state_dict: dict) -> torch.nn.Module:
    """Load weights strictly; a mismatch with the config is a one-line error. Returns the module in eval mode."""
    try:
        module.load_state_dict(state_dict, strict=True)
    except Exception as e:
        raise FscertError(f"{path}: weights do not match the config ({_first_line(e)})") from None
    return module.eval()
