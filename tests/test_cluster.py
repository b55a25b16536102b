"""fscert on a Dask cluster: :func:`fscert.cluster.client_for` and :func:`fscert.metrics.sharded.nearest_sharded`.

The sharded search must give the single-process :func:`fscert.metrics.nearest.nearest` result
byte for byte, ties included, on real images, from memory and from every file kind; survive a
worker process killed mid-task; and leave nothing running after Ctrl-C. ``TRAIN_CHUNK`` is
patched to 64 rows (and ``chunk=64`` passed) so 600 MNIST images make 10 chunks and 4 or 5 shards.

The single-process reference runs on one torch thread (``one_torch_thread``), as the workers
do: MKL may round a small float32 product differently on several threads, see the docstring
of :mod:`fscert.metrics.sharded`.
"""
from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from fscert.cluster import client_for, version_mismatch
from fscert.data import load_images, resolve
from fscert.errors import FscertError
from fscert.metrics.nearest import Nearest, Rows, nearest
from fscert.metrics.sharded import ArrayRows, FileRows, _mean, _Shard, nearest_sharded

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
              pytest.mark.usefixtures("one_torch_thread")]

nearest_module = importlib.import_module("fscert.metrics.nearest")   # the attribute is the function
CHUNK = 64            #: rows per training chunk and per mean chunk (TRAIN_CHUNK, patched)
BATCH = 48            #: query rows per matrix product: several batches, the last one short
SHARD = 128           #: 600 rows → 5 shards, the last one short
COPIES = (5, 6, 70, 200, 450, 599)   #: identical training rows: 6 > CANDIDATES, across shards
WAIT = 120            #: seconds: only against hangs, nothing depends on a machine's speed
FIELDS = ("idx_N", "sqdist_N", "second_idx_N", "second_sqdist_N")


@pytest.fixture(scope="module")
def client():
    with client_for(None, 2) as c:
        yield c


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(nearest_module, "TRAIN_CHUNK", CHUNK)


@pytest.fixture(scope="module")
def train() -> np.ndarray:
    """600 MNIST images with six identical copies of image 5 (exact ties among more rows than candidates)."""
    x = load_images("mnist", limit=600).copy()
    x[list(COPIES)] = x[COPIES[0]]
    return x


@pytest.fixture(scope="module")
def query(train) -> np.ndarray:
    """Perturbed training images, exact copies (distance 0, six-way ties) and a copy's perturbation."""
    rng = np.random.default_rng(0)
    pick = rng.choice(len(train), 120, replace=False)
    noisy = np.clip(train[pick] + rng.normal(0, 0.05, train[pick].shape), 0, 1).astype(np.float32)
    tie = np.clip(train[5] + rng.normal(0, 0.05, train[5].shape), 0, 1).astype(np.float32)
    return np.concatenate([noisy, train[[5, 5, 0, 301, 599]], tie[None]])


@pytest.fixture(scope="module")
def reference(train, query) -> Nearest:
    nearest_module.TRAIN_CHUNK, old = CHUNK, nearest_module.TRAIN_CHUNK
    try:
        return nearest(query, train, batch=BATCH, chunk=CHUNK)
    finally:
        nearest_module.TRAIN_CHUNK = old


def assert_identical(got: Nearest, want: Nearest) -> None:
    assert got.dim == want.dim
    for f in FIELDS:
        a, b = getattr(got, f), getattr(want, f)
        assert a.dtype == b.dtype and a.shape == b.shape, f
        assert a.tobytes() == b.tobytes(), f"{f}: {np.flatnonzero(a != b)[:10]}"


def test_reference_exercises_ties(reference, query):
    """The set-up is what the other tests rely on: copies found at distance 0, ties among them."""
    copies = slice(120, 122)                          # query rows that are training image 5
    assert set(reference.idx_N[copies]) <= set(COPIES)
    assert (reference.sqdist_N[copies] == 0).all() and (reference.second_sqdist_N[copies] == 0).all()
    tie = reference.sqdist_N[-1]                      # a perturbed copy: all six at the same distance
    assert reference.idx_N[-1] in COPIES and reference.second_sqdist_N[-1] == tie
    # which copies nearest() keeps is decided by its float32 pass (here, on an AVX-512 MKL: copies
    # 6 and 200, not 5), so a merge of each shard's best by exact distance, which keeps 5, differs


@pytest.mark.parametrize("shard_rows", [SHARD, 3 * CHUNK])
def test_in_memory_identical(client, train, query, reference, shard_rows):
    assert_identical(nearest_sharded(query, train, client, shard_rows=shard_rows, batch=BATCH, chunk=CHUNK),
                     reference)


def test_exclude_identical(client, train):
    """``exclude`` as nearest_other and authenticity use it: training rows as queries, each skipping
    itself (its copies still count), some skipping nothing (-1)."""
    rows = np.r_[0:40, list(COPIES), 598]
    skip = rows.copy()
    skip[::5] = -1
    want = nearest(train[rows], train, exclude=skip, batch=BATCH, chunk=CHUNK)
    assert_identical(nearest_sharded(train[rows], train, client, shard_rows=SHARD, batch=BATCH, chunk=CHUNK,
                                     exclude=skip), want)
    assert (want.idx_N[skip >= 0] != rows[skip >= 0]).all() and (want.sqdist_N[40:46] == 0).all()
    with pytest.raises(ValueError, match="exclude has shape"):
        nearest_sharded(train[rows], train, client, chunk=CHUNK, exclude=skip[1:])


def test_centre_is_mean64(client, tmp_path, train):
    """Step 1 alone: the centre added up from the shards' chunk sums is ``Rows.mean64``'s, bit for bit.

    (It only steers the float32 selection, so a wrong one would rarely show in the end result.)
    The rows are float64 images·π: float64 sums of float32 pixels would be exact in any order.
    """
    x = train.astype(np.float64) * np.pi
    np.save(tmp_path / "t.npy", x)
    shards = [_Shard(FileRows(str(tmp_path / "t.npy")), lo, min(lo + SHARD, 600)) for lo in range(0, 600, SHARD)]
    futures: list = []
    try:
        got = _mean(client, shards, 600, CHUNK, futures)
    finally:
        client.cancel(futures)
    assert got.dtype == torch.float64 and got.numpy().tobytes() == Rows(x).mean64().numpy().tobytes()


def write_files(tmp_path: Path, x: np.ndarray) -> list[FileRows]:
    np.save(tmp_path / "t.npy", x)
    np.savez(tmp_path / "plain.npz", labels=np.arange(len(x)), images=x)
    np.savez_compressed(tmp_path / "packed.npz", train_images=x)
    with h5py.File(tmp_path / "t.h5", "w") as f:
        f.create_dataset("images", data=x, chunks=(50,) + x.shape[1:], compression="gzip")
    return [FileRows(str(tmp_path / "t.npy")), FileRows(str(tmp_path / "plain.npz")),
            FileRows(str(tmp_path / "packed.npz"), key="train_images"), FileRows(str(tmp_path / "t.h5"))]


def test_file_rows_read_slices(tmp_path, train):
    """Every file kind gives the stored rows of any range; ``images`` gives load_images' rows."""
    for src in write_files(tmp_path, train):
        assert src.count() == 600
        for lo, hi in ((0, 64), (64, 192), (576, 600)):
            assert src.rows(lo, hi).tobytes() == train[lo:hi].tobytes(), (src.path, lo)
    raw = np.load(resolve("mnist"))["images"]        # stored uint8 N×28×28
    mn = FileRows("mnist", limit=300, images=True)
    assert mn.count() == 300 and FileRows("mnist").rows(10, 20).tobytes() == raw[10:20].tobytes()
    assert mn.rows(128, 256).tobytes() == load_images("mnist", limit=300)[128:256].tobytes()


def test_file_rows_refusals(tmp_path):
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 4)), b=np.zeros((3, 4)))
    (tmp_path / "x.txt").write_text("not an array")
    for src, words in ((FileRows(str(tmp_path / "two.npz")), "no array 'images'"),
                       (FileRows(str(tmp_path / "x.txt")), "not a .npy, .npz or HDF5"),
                       (FileRows(str(tmp_path / "missing.npy")), "missing.npy")):
        with pytest.raises(FscertError, match=words) as e:
            src.count()
        assert "\n" not in str(e.value)


def test_files_identical(client, tmp_path, train, query, reference):
    for src in write_files(tmp_path, train):
        assert_identical(nearest_sharded(query, src, client, shard_rows=SHARD, batch=BATCH, chunk=CHUNK), reference)


def test_bundled_images_identical(client, query):
    """Workers read and normalise the bundled MNIST file themselves: same as load_images + nearest."""
    want = nearest(query, load_images("mnist", limit=600), batch=BATCH, chunk=CHUNK)
    got = nearest_sharded(query, FileRows("mnist", limit=600, images=True), client, shard_rows=3 * CHUNK,
                          batch=BATCH, chunk=CHUNK)
    assert_identical(got, want)


def test_bad_arguments(client, train, query, tmp_path):
    with pytest.raises(ValueError, match="multiple of lcm"):
        nearest_sharded(query, train, client, shard_rows=100, chunk=CHUNK)
    with pytest.raises(ValueError, match="784 values, reference rows 12"):
        nearest_sharded(query, ArrayRows(np.ones((5, 3, 4))), client, shard_rows=CHUNK, chunk=CHUNK)
    with pytest.raises(FscertError, match="gone.npy") as e:       # raised on a worker, one line here
        nearest_sharded(query, FileRows(str(tmp_path / "gone.npy")), client, chunk=CHUNK)
    assert "\n" not in str(e.value)
    assert not client.futures


def slow_rows(path: Path, marks: Path, delay: float) -> FileRows:
    """A FileRows whose reads leave a ``start`` / ``done`` mark named ``<lo>-<pid>-<ns>`` and take ``delay`` s.

    The class is made here, in a function, so that Dask pickles it by value (workers never
    import this test module).
    """
    class SlowRows(FileRows):
        def rows(self, lo, hi):
            mark = marks / f"{lo}-{os.getpid()}-{time.monotonic_ns()}"
            mark.write_text("start")
            time.sleep(delay)
            out = super().rows(lo, hi)
            mark.write_text("done")
            return out

    return SlowRows(str(path))


def first_start(marks: Path, deadline: float) -> tuple[int, int] | None:
    """(lo, pid) of the first read under way, waiting for one until ``deadline``."""
    while time.monotonic() < deadline:
        for m in sorted(marks.iterdir()):
            if m.read_text() == "start":
                lo, pid, _ = m.name.split("-")
                return int(lo), int(pid)
        time.sleep(0.01)
    return None


def scheduler_tasks(client) -> int:
    return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))


def test_ctrl_c_cancels(client, tmp_path, train, query):
    """Ctrl-C while the workers read: KeyboardInterrupt, and the scheduler forgets every task."""
    np.save(tmp_path / "t.npy", train)
    (tmp_path / "marks").mkdir()
    src = slow_rows(tmp_path / "t.npy", tmp_path / "marks", 1.0)
    main = threading.main_thread().ident

    def interrupt():
        if first_start(tmp_path / "marks", time.monotonic() + WAIT) is not None:
            signal.pthread_kill(main, signal.SIGINT)

    old = signal.signal(signal.SIGINT, signal.default_int_handler)   # even if started with SIGINT ignored
    try:
        t = threading.Thread(target=interrupt)
        t.start()
        with pytest.raises(KeyboardInterrupt):
            nearest_sharded(query, src, client, shard_rows=SHARD, batch=BATCH, chunk=CHUNK)
        t.join()
    finally:
        signal.signal(signal.SIGINT, old)
    assert not client.futures
    deadline = time.monotonic() + WAIT
    while scheduler_tasks(client) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scheduler_tasks(client) == 0
    done = [m for m in (tmp_path / "marks").iterdir() if m.read_text() == "done"]
    assert len(done) < 2 * 5                         # interrupted: not every read of both passes ran


def test_killed_worker_is_rerun(client, tmp_path, train, query, reference):
    """SIGKILL of the worker process reading a shard: Dask reruns its task elsewhere, same result."""
    np.save(tmp_path / "t.npy", train)
    marks = tmp_path / "marks"
    marks.mkdir()
    pids = set(client.run(os.getpid).values())
    killed: list[tuple[int, int]] = []

    def kill():
        hit = first_start(marks, time.monotonic() + WAIT)
        if hit is not None and hit[1] in pids:       # only a worker of this test's cluster
            os.kill(hit[1], signal.SIGKILL)
            killed.append(hit)

    t = threading.Thread(target=kill)
    t.start()
    got = nearest_sharded(query, slow_rows(tmp_path / "t.npy", marks, 0.5), client, shard_rows=SHARD,
                          batch=BATCH, chunk=CHUNK)
    t.join()
    assert killed, "no worker was killed"
    lo, pid = killed[0]
    reads = [(m.name.split("-"), m.read_text()) for m in marks.iterdir()]
    assert [s for (l, p, _), s in reads if int(l) == lo and int(p) == pid] == ["start"]   # died mid-read
    assert sum(s == "done" for (l, p, _), s in reads if int(l) == lo and int(p) != pid) >= 2   # rerun, both passes
    assert_identical(got, reference)
    client.wait_for_workers(2, timeout=WAIT)         # the nanny restarts it: later tests get two workers


def test_versions_checked(client):
    versions = client.get_versions(packages=["torch", "h5py", "fscert"])
    assert version_mismatch(versions) is None
    worker = sorted(versions["workers"])[0]
    versions["workers"][worker]["packages"]["torch"] = "0.0.1"
    del versions["workers"][worker]["packages"]["fscert"]
    msg = version_mismatch(versions)
    assert msg is not None and "\n" not in msg
    assert f"torch {versions['client']['packages']['torch']} here, 0.0.1 on worker {worker}" in msg
    assert f"fscert {versions['client']['packages']['fscert']} here, missing on worker {worker}" in msg


def test_unreachable_scheduler_is_one_line():
    with socket.socket() as s:                       # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FscertError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}") as e:
        with client_for(f"tcp://127.0.0.1:{port}", None, timeout=1):
            pytest.fail("connected to nothing")
    assert "\n" not in str(e.value)


def test_argument_refusals():
    for scheduler, workers, words in (("tcp://127.0.0.1:1", 2, "not both"), (None, 0, "positive integer"),
                                      (None, True, "positive integer")):
        with pytest.raises(FscertError, match=words):
            with client_for(scheduler, workers):
                pytest.fail("no refusal")


def test_no_cluster_never_imports_dask():
    code = ("import sys\nfrom fscert.cluster import client_for\n"
            "with client_for(None, None) as c:\n    assert c is None\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_local_cluster_closed_on_ctrl_c():
    with pytest.raises(KeyboardInterrupt):
        with client_for(None, 1) as c:
            cluster = c.cluster
            assert c.submit(sum, [1, 2]).result() == 3
            raise KeyboardInterrupt
    assert c.status == "closed" and cluster.status.name == "closed"


def test_audit_on_two_workers_equals_the_single_process(tmp_path):
    """`fscert audit --workers 2` writes byte-identical audit JSON and CSV to the single process,
    on real images (MNIST training images; generated = noisy copies and other MNIST images)."""
    from click.testing import CliRunner

    from fscert.data import load_images
    from fscert_cli.main import cli

    x = load_images("mnist", limit=700)                          # the stored 28×28
    rng = np.random.default_rng(0)
    noisy = np.clip(x[:60] + rng.normal(0, 0.02, x[:60].shape), 0, 1)
    gen = (np.concatenate([noisy, x[600:700]]) * 255).round().astype(np.uint8)
    np.savez(tmp_path / "gen.npz", images=gen)
    outs = {}
    for name, extra in (("single", []), ("cluster", ["--workers", "2"])):
        r = CliRunner().invoke(cli, ["audit", "--train", "mnist", "--limit", "600", "--generated",
                                     str(tmp_path / "gen.npz"), "--json", str(tmp_path / f"{name}.json"),
                                     "--csv", str(tmp_path / f"{name}.csv"), "--quiet", *extra])
        assert r.exit_code == 0, r.output
        outs[name] = ((tmp_path / f"{name}.json").read_bytes(), (tmp_path / f"{name}.csv").read_bytes())
    assert outs["single"] == outs["cluster"]
    assert b'"near_copies"' in outs["single"][0]


def test_audit_of_a_folder_on_two_workers_reads_shards_from_the_folder(tmp_path):
    """`fscert audit --train FOLDER --workers 2`: the workers read their shards from the PNG files
    themselves, and the JSON is byte-identical to the single process's."""
    from unittest import mock

    from click.testing import CliRunner
    from PIL import Image

    import fscert.metrics.file_rows as file_rows
    from fscert.metrics.file_rows import FolderRows
    from fscert_cli.main import cli

    u8 = (load_images("mnist", limit=300)[:, 0] * 255).round().astype(np.uint8)
    (tmp_path / "train").mkdir()
    for i in range(250):
        Image.fromarray(u8[i]).save(tmp_path / "train" / f"im{i}.png")
    np.savez(tmp_path / "gen.npz", images=np.concatenate([u8[:20], u8[250:]]))
    outs = {}
    for name, extra in (("single", []), ("cluster", ["--workers", "2"])):
        with mock.patch.object(file_rows, "file_rows_for", wraps=file_rows.file_rows_for) as spy:
            r = CliRunner().invoke(cli, ["audit", "--train", str(tmp_path / "train"), "--generated",
                                         str(tmp_path / "gen.npz"), "--json", str(tmp_path / f"{name}.json"),
                                         "--quiet", *extra])
        assert r.exit_code == 0, r.output
        outs[name] = (tmp_path / f"{name}.json").read_bytes()
        if extra:                                  # what the audit handed the workers: the folder, not rows
            assert spy.call_count == 1 and isinstance(file_rows.file_rows_for(*spy.call_args.args), FolderRows)
    assert outs["single"] == outs["cluster"]


def test_file_rows_for_lets_workers_read_the_training_file(tmp_path):
    """The audit hands the workers a FileRows only where they read exactly the loaded rows:
    bundled sets and array files (MedMNIST splits included); never other rows."""
    from PIL import Image

    from fscert.metrics.sharded import file_rows_for

    x = load_images("mnist", limit=300)
    src = file_rows_for("mnist", 300, "train", x)
    assert src is not None and src.count() == 300 and src.rows(0, 300).tobytes() == x.tobytes()
    u8 = (x[:, 0] * 255).round().astype(np.uint8)
    np.savez(tmp_path / "m.npz", train_images=u8, test_images=u8[:5])
    got = file_rows_for(str(tmp_path / "m.npz"), None, "test", load_images(tmp_path / "m.npz", split="test"))
    assert got is not None and got.count() == 5
    assert file_rows_for("mnist", 300, "train", x[::-1].copy()) is None          # other rows: never used
    assert file_rows_for("mnist", 300, "train", x[:299]) is None
    (tmp_path / "pngs").mkdir()
    Image.fromarray(u8[0]).save(tmp_path / "pngs" / "a.png")
    assert file_rows_for(str(tmp_path / "pngs"), None, "train", load_images(tmp_path / "pngs")) is None   # no names


def test_folder_rows_read_what_the_folder_read_gives(tmp_path):
    """A folder (class subfolders; DICOM files of different rescale ranges, one multi-frame; PNGs,
    one grayscale stored as RGB; a file that is not an image): every shard a worker reads equals
    the client's read, byte for byte, with and without a limit; other rows are refused."""
    from PIL import Image

    from fscert.data import load_dataset
    from fscert.metrics.file_rows import FolderRows, file_rows_for
    from tests.test_inputs import write_dicom

    u8 = (load_images("pneumoniamnist", limit=9)[:, 0] * 255).round().astype(np.uint8)
    a, b = tmp_path / "f" / "a", tmp_path / "f" / "b"
    a.mkdir(parents=True), b.mkdir()
    write_dicom(a / "s1.dcm", u8[0], bits=8)
    write_dicom(a / "s2.dcm", u8[1:4], bits=8, RescaleIntercept=-100)          # 3 frames, another range
    Image.fromarray(u8[4]).save(a / "s10.png")
    Image.fromarray(np.stack([u8[5]] * 3, -1)).save(b / "g.png")               # grayscale stored as RGB
    for i in (6, 7, 8):
        Image.fromarray(u8[i]).save(b / f"p{i}.png")
    (b / "notes.txt").write_text("not an image")
    for limit in (None, 5):
        ds = load_dataset(tmp_path / "f", limit=limit, warn=False)
        src = file_rows_for(str(tmp_path / "f"), limit, "train", ds.images, ds.names)
        assert isinstance(src, FolderRows) and src.count() == len(ds.images) == (limit or 9)
        for lo, hi in ((0, 3), (2, 5), (3, 4), (4, len(ds.images))):
            assert src.rows(lo, hi).tobytes() == ds.images[lo:hi].tobytes(), (limit, lo, hi)
        assert file_rows_for(str(tmp_path / "f"), limit, "train", ds.images[::-1].copy(), ds.names) is None
