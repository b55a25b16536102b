"""Certification on a Dask cluster gives the single process's results (issue 14, item 3).

The near-copy search of every training image runs as tasks on a 2-worker LocalCluster
(:mod:`fscert.nearcopy_sharded`); every per-image result and every merged figure must equal the
single-process search, on cases where the state cap and the survival table are used."""
from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest

from fscert.blocks import decode_exact, generated_values
from fscert.cluster import client_for
from fscert.enumeration import count_reachable
from fscert.nearcopy import NearCopyConfig, near_copy_search
from tests.test_nearcopy import _case, _model, real_mnist_case

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
    """A model trained on real MNIST images (28×28, 7×7 latent), their drawn latents at ρ = 1: same results."""
    x, model, E = real_mnist_case(12, 20, 3)
    c = count_reachable(E.latents, 1, E.counts)
    ncfg = NearCopyConfig(gammas=(12.0, 15.0), max_states=50)
    want = near_copy_search(E.latents, E.counts, 1, model, x, ncfg, c.dead_end_mass)
    got = near_copy_search(E.latents, E.counts, 1, model, x, ncfg, c.dead_end_mass, client=client)
    assert_same_result(got, want)


# ----------------------------------------------------------------------------- the CLI, end to end

TINY = ["--limit", "8", "--epochs", "3", "--finetune-epochs", "1", "--draw-finetune-epochs", "1", "-M", "2",
        "--quiet"]


def _certify(out, *args):
    from click.testing import CliRunner

    from fscert_cli.main import cli

    r = CliRunner().invoke(cli, ["certify", "mnist", *TINY, "--out", str(out), *map(str, args)])
    assert r.exit_code == 0, r.output
    return out


def _content(out) -> tuple[str, dict]:
    """content_sha256 of OUT/cert.h5 and its attributes, without what describes the work done
    (the search's decode counters, the fscert version) rather than the result."""
    from fscert.certificate import read_certificate

    cert = read_certificate(out / "cert.h5")
    attrs = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in cert.attrs.items()}
    if "search" in attrs:
        s = json.loads(attrs["search"])
        s.pop("windows_decoded"), s.pop("rounding_ties")
        attrs["search"] = s
    return str(cert.attrs["content_sha256"]), attrs


@pytest.mark.parametrize("mode", [["--rho", "1", "--near-copies-only"], ["--rho", "4"]], ids=["searched", "listed"])
def test_certify_workers_identical(tmp_path, mode):
    """``fscert certify … --workers 2`` on real MNIST images writes the single process's certificate
    (content_sha256 and every attribute) and, for a listed certificate, the same audit.json."""
    one = _certify(tmp_path / "one", *mode)
    two = _certify(tmp_path / "two", *mode, "--workers", 2)
    assert _content(one) == _content(two)
    if mode[1] == "4":
        assert (one / "audit.json").read_bytes() == (two / "audit.json").read_bytes()
    else:
        assert read_attr(one, "verdict_scope") == "searched"


def read_attr(out, key):
    import h5py

    with h5py.File(out / "cert.h5", "r") as f:
        v = f.attrs[key]
    return v.decode() if isinstance(v, bytes) else v


def test_enumerate_workers_identical(tmp_path):
    """``fscert enumerate --near-copies-only --workers 2`` writes the single process's certificate."""
    from click.testing import CliRunner

    from fscert_cli.main import cli

    run = _certify(tmp_path / "run", "--rho", "4")
    common = ["enumerate", "--latents", run / "empirical.h5", "--model", run / "model_ft.pt", "--train", "mnist",
              "--rho", 1, "--near-copies-only", "--train-latents", run / "latents.h5", "--quiet"]
    outs = []
    for extra in ([], ["--workers", 2]):
        out = tmp_path / f"e{len(outs)}.h5"
        r = CliRunner().invoke(cli, [str(a) for a in common + ["--out", out] + extra])
        assert r.exit_code == 0, r.output
        outs.append(out)
    from fscert.certificate import read_certificate

    a, b = (read_certificate(o) for o in outs)
    assert a.attrs["content_sha256"] == b.attrs["content_sha256"]
    assert a.attrs["verdict_scope"] == "searched"


def test_listing_decoded_and_searched_on_workers(client, tmp_path):
    """A listing's decode (chunk by chunk, checkpointed in row order) and its nearest-training-image
    search run as tasks on the workers and give the single process's images, checkpoint and metrics."""
    from fscert.certificate import Certificate
    from fscert.decode_checkpoint import DecodeCheckpoint, decode_into
    from fscert.enumerate import add_metrics
    from fscert.enumeration import enumerate_reachable

    from fscert.data import load_images
    from fscert.fit import Fit

    _, z, cnt, _ = _case(2, 8, 1, 3)
    model = _model(2, 8, 3, False, 0)
    x = load_images("mnist", limit=20, fit=Fit(pad=True))          # real training images, 32×32
    lst = enumerate_reachable(z, 1, cnt, max_images=None)
    assert len(lst.latents) > 40                                  # several chunks of 16 rows
    certs = []
    for where in (None, client):
        cert = Certificate(lst.latents, lst.prob, {}, log_prob=lst.log_prob)
        cert.images = np.zeros((len(lst.latents), *model.config.image_shape), np.uint8)
        ckpt = DecodeCheckpoint(tmp_path / f"{where is None}.h5", "key")
        ckpt.start(cert)
        decode_into(cert, model, 0, 4, ckpt, False, client=where)        # chunks of 16 rows
        assert ckpt.load()[1] == len(lst.latents)
        np.testing.assert_array_equal(ckpt.load()[0].images, cert.images)
        add_metrics(cert, x, (15.0, 20.0), client=where)
        certs.append(cert)
    a, b = certs
    np.testing.assert_array_equal(a.images, decode_exact(model, lst.latents))
    for name in ("images", "nearest_train", "psnr", "flags", "m_uir"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.attrs.keys() == b.attrs.keys()
    for k in a.attrs:
        np.testing.assert_array_equal(a.attrs[k], b.attrs[k], err_msg=k)
    ran = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert "decode_chunk" in ran and "shard_candidates" in ran           # Dask drops the leading "_"


def test_counting_chunks_on_workers_equal_single_process(client):
    """The counting pass's prefix chunks run as tasks, nested splits too; count, both masses, the
    largest layer and the splits equal the single process's bit for bit (~5·10^12 reachable
    latents, split at two sizes)."""
    from tests.test_enumeration_memory import emulated_trials

    E = emulated_trials(0, 7, 8, 8, n_base=60, trials=10, q=0.004)
    for work in (1 << 21, 1 << 20):
        one = count_reachable(E, 1, None, work=work)
        two = count_reachable(E, 1, None, work=work, client=client)
        assert one.splits >= 2 and one.memory_splits == 0 and two.memory_splits == 0 and two.tasks > 2
        assert (one.count, one.dead_end_mass, one.reachable_mass, one.max_states, one.splits) == \
               (two.count, two.dead_end_mass, two.reachable_mass, two.max_states, two.splits)
    ran = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert "count_chunk" in ran


def test_killed_worker_during_the_count_is_rerun(client):
    """SIGKILL of a worker process while it counts a prefix chunk: Dask reruns the task, and the
    count, both masses and the largest layer are unchanged."""
    import os
    import signal
    import threading
    import time

    from tests.test_enumeration_memory import emulated_trials

    E = emulated_trials(0, 7, 8, 8, n_base=60, trials=10, q=0.004)
    want = count_reachable(E, 1, None, work=1 << 20)
    pids = client.run(os.getpid)
    killed: list[int] = []

    def kill():
        end = time.monotonic() + 120
        while time.monotonic() < end and not killed:
            for addr, keys in client.processing().items():
                if any("count_chunk" in str(k) for k in keys) and addr in pids:
                    os.kill(pids[addr], signal.SIGKILL)
                    killed.append(pids[addr])
                    return
            time.sleep(0.005)

    t = threading.Thread(target=kill)
    t.start()
    got = count_reachable(E, 1, None, work=1 << 20, client=client)
    t.join()
    assert killed, "no worker was killed"
    assert (got.count, got.dead_end_mass, got.reachable_mass, got.max_states, got.splits) == \
           (want.count, want.dead_end_mass, want.reachable_mass, want.max_states, want.splits)
    client.wait_for_workers(2, timeout=120)          # the nanny restarts it: later tests get two workers
