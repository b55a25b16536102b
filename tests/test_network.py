"""Network approximation (fscert.network, A.3.3) and the full-context memorization baseline (A.1.6)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fscert.errors import FscertError
from fscert.hashing import sha256_state_dict
from fscert.network import (NetConfig, load_network, pair_inputs, sample_network, save_network,
                            train_network)
from fscert.patches import contexts, tokens


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_pair_inputs_match_contexts_and_full_context():
    rng = np.random.default_rng(0)
    z = rng.choice(np.array([-1, 1], np.int8), (3, 2, 3, 4))
    b, c = np.divmod(np.arange(36), 12)
    for rho in (0, 1, 2):
        x = pair_inputs(NetConfig(2, 3, 4, rho), z, b, c)
        np.testing.assert_array_equal(x, contexts(z, rho).reshape(36, -1))
    x = pair_inputs(NetConfig(2, 3, 4, full_context=True), z, b, c).reshape(36, 12, 2)
    t = tokens(z)
    for p in range(36):
        np.testing.assert_array_equal(x[p, :c[p]], t[b[p], :c[p]])
        assert (x[p, c[p]:] == 0).all()


def test_learns_deterministic_toy_distribution():
    """Sources all +1 and all −1, q = 0: cell 0 is a coin flip, every other cell copies its context."""
    src = np.stack([np.ones((1, 3, 3), np.int8), -np.ones((1, 3, 3), np.int8)])
    net, hist = train_network(src, rho=1, q=0.0, epochs=150, seed=0, hidden=32, batch_size=2, lr=1e-2)
    assert hist[-1] < 0.5 * hist[0]
    assert hist[-1] < np.log(2) / 9 + 0.05             # entropy: log 2 at cell 0, 0 elsewhere
    x = sample_network(net, 200, seed=1)
    flat = x.reshape(200, -1)
    assert (np.all(flat == 1, axis=1) | np.all(flat == -1, axis=1)).all()
    frac = float(np.all(flat == 1, axis=1).mean())
    assert 0.3 < frac < 0.7


def test_full_context_memorizes_sources():
    rng = np.random.default_rng(3)
    src = rng.choice(np.array([-1, 1], np.int8), (4, 1, 3, 3))
    net, hist = train_network(src, rho=1, q=0.0, epochs=200, seed=0, hidden=64, batch_size=4, lr=1e-2,
                              full_context=True)
    x = sample_network(net, 100, seed=2)
    known = {s.tobytes() for s in src}
    assert all(s.tobytes() in known for s in x)        # A.1.6: the global context memorizes


def test_determinism_and_save_load(tmp_path):
    rng = np.random.default_rng(1)
    src = rng.choice(np.array([-1, 1], np.int8), (6, 2, 4, 4))
    a, ha = train_network(src, rho=1, q=0.1, epochs=2, seed=5, hidden=16)
    b, hb = train_network(src, rho=1, q=0.1, epochs=2, seed=5, hidden=16)
    assert ha == hb
    assert sha256_state_dict(a.state_dict()) == sha256_state_dict(b.state_dict())
    xa, xb = sample_network(a, 30, seed=3), sample_network(b, 30, seed=3)
    np.testing.assert_array_equal(xa, xb)
    assert xa.shape == (30, 2, 4, 4) and set(np.unique(xa)) <= {-1, 1}
    path = tmp_path / "net.pt"
    save_network(a, path)
    c = load_network(path)
    assert c.config == a.config
    np.testing.assert_array_equal(sample_network(c, 30, seed=3), xa)


def test_load_rejects_bad_files(tmp_path):
    p = tmp_path / "bad.pt"
    p.write_bytes(b"not a torch file")
    with pytest.raises(FscertError):
        load_network(p)
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(FscertError):
        load_network(tmp_path / "other.pt")
    with pytest.raises(FscertError):
        load_network(tmp_path / "missing.pt")
    with pytest.raises(FscertError):
        NetConfig(2, 3, 3, full_context=True, translation_invariant=True).validate()
