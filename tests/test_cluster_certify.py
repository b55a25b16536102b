"""Certification on a Dask cluster gives the single process's results (issue 14, item 3).

The near-copy search of every training image runs as tasks on a 2-worker LocalCluster
(:mod:`fscert.nearcopy_sharded`); every per-image result and every merged figure must equal the
single-process search, on cases where the state cap and the survival table are used."""
from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

from fscert.blocks import decode_exact, generated_values
from fscert.cluster import client_for
from fscert.enumeration import count_reachable
from fscert.nearcopy import NearCopyConfig, near_copy_search
from tests.test_nearcopy import _case, _model

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
              pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def client():
    with client_for(None, 2) as c:
        yield c


def assert_same_result(got, want) -> None:
    """Every per-training-image field and every merged array and figure, exactly (NaN = NaN)."""
    assert len(got.per_train) == len(want.per_train)
    for a, b in zip(got.per_train, want.per_train):
        for f in dataclasses.fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
                assert (x is None) == (y is None), f.name
                if x is not None:
                    np.testing.assert_array_equal(x, y, err_msg=f.name)
            else:
                assert x == y or (x != x and y != y), (f.name, x, y)
    for name in ("latents", "prob", "log_prob", "nearest_train", "psnr", "flags", "pair_row", "pair_train",
                 "pair_psnr", "images"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert got.union == want.union


@pytest.mark.parametrize("cfg", [dict(), dict(max_listed=2), dict(max_states=5)], ids=["listed", "intervals", "capped"])
def test_sharded_near_copy_search_equals_single_process(client, cfg):
    model = _model(2, 8, 3, False, seed=7)
    base, z, cnt, c = _case(2, 8, 2, seed=11, flips=0.02)
    train = generated_values(decode_exact(model, base))
    ncfg = NearCopyConfig(gammas=(22.0, 30.0), **cfg)
    want = near_copy_search(z, cnt, 2, model, train, ncfg, c.dead_end_mass)
    got = near_copy_search(z, cnt, 2, model, train, ncfg, c.dead_end_mass, client=client)
    assert_same_result(got, want)
    if "max_states" in cfg:
        assert any(r.dropped_mass > 0 for r in want.per_train)       # the cap and the survival table were used


def test_sharded_near_copy_search_real_mnist(client):
    """A model trained on real MNIST images, their drawn latents at ρ = 1: same results."""
    import torch

    from fscert.autoencoder import AEConfig
    from fscert.data import load_images
    from fscert.empirical import DrawConfig, draw_samples
    from fscert.latents import LatentSet
    from fscert.training import TrainConfig, train as train_model

    x = load_images("mnist", limit=12)
    model, _ = train_model(x, AEConfig(latent_channels=2, hidden=32), TrainConfig(epochs=20, finetune_epochs=3,
                                                                                 batch_size=12, seed=0),
                           progress=False)
    model.eval()
    zt = model.encode(torch.from_numpy(x)).numpy()
    E = draw_samples(LatentSet(zt), DrawConfig(trials=3, tau=1.02, kappa=0.5, seed=0))
    c = count_reachable(E.latents, 1, E.counts)
    ncfg = NearCopyConfig(gammas=(12.0, 15.0), max_states=50)
    want = near_copy_search(E.latents, E.counts, 1, model, x, ncfg, c.dead_end_mass)
    got = near_copy_search(E.latents, E.counts, 1, model, x, ncfg, c.dead_end_mass, client=client)
    assert_same_result(got, want)
