"""SHA-256 fingerprints of arrays and model weights, recorded in every output."""
from __future__ import annotations

import hashlib
from typing import Mapping

import numpy as np


def sha256_array(a: np.ndarray) -> str:
    """Hash of dtype, shape and C-ordered bytes: equal arrays give equal hashes on every machine."""
    a = np.ascontiguousarray(a)
    h = hashlib.sha256()
    h.update(str(a.dtype.str).encode())
    h.update(str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()


def sha256_arrays(arrays: Mapping[str, np.ndarray]) -> str:
    """One hash over several named arrays, in sorted name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(sha256_array(np.asarray(arrays[name])).encode())
    return h.hexdigest()


def sha256_state_dict(state: Mapping[str, "object"]) -> str:
    """Hash of model weights (names, dtypes, shapes, values), independent of file layout."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        if isinstance(t, torch.Tensor):
            h.update(name.encode())
            h.update(sha256_array(t.detach().cpu().contiguous().numpy()).encode())
    return h.hexdigest()
