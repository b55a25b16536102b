"""Every DATA format the loader accepts, and the bad inputs it refuses (issue: data layer)."""
import gzip
import pickle
import struct
import warnings

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fscert.data import load_images, load_raw, resolve
from fscert.errors import FscertError
from fscert.fit import Fit

PAD = Fit(pad=True)

RNG = np.random.default_rng(0)
U8 = RNG.integers(0, 256, (5, 28, 28), dtype=np.uint8)


def idx_bytes(a):
    return b"\x00\x00\x08\x03" + struct.pack(">III", *a.shape) + a.tobytes()


def check(x, n=5, c=1, hw=(32, 32)):
    assert x.dtype == np.float32 and x.shape == (n, c, *hw)
    assert 0 <= x.min() and x.max() <= 1


def test_bundled_sets():
    for name in ("mnist", "pneumoniamnist"):
        x = load_images(name)                                             # the stored size by default
        check(x, 1000, hw=(28, 28))
        p = load_images(name, fit=PAD)
        check(p, 1000)
        assert (p[:, :, :2] == 0).all() and (p[:, :, :, -2:] == 0).all()   # --pad: 28 → 32 zero padding
        assert np.array_equal(p[:, :, 2:30, 2:30], x)
    assert resolve("mnist").name == "mnist.npz"


def test_npz_images_and_medmnist_splits(tmp_path):
    np.savez(tmp_path / "a.npz", images=U8)
    x = load_images(tmp_path / "a.npz", fit=PAD)
    check(x)
    assert np.allclose(x[:, 0, 2:30, 2:30], U8 / 255.0)
    assert np.array_equal(load_images(tmp_path / "a.npz"), x[:, :, 2:30, 2:30])
    np.savez(tmp_path / "m.npz", train_images=U8, val_images=U8[:2], test_images=U8[:3])
    check(load_images(tmp_path / "m.npz", split="val"), 2, hw=(28, 28))
    check(load_images(tmp_path / "m.npz", split="test"), 3, hw=(28, 28))
    with pytest.raises(FscertError, match="split"):
        load_images(tmp_path / "m.npz", split="bogus")


def test_hdf5_idx_gz_raw_cifar_folder(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["images"] = U8
    check(load_images(tmp_path / "a.h5"), hw=(28, 28))
    (tmp_path / "x.idx").write_bytes(idx_bytes(U8))
    (tmp_path / "x.gz").write_bytes(gzip.compress(idx_bytes(U8)))
    assert np.array_equal(load_raw(tmp_path / "x.idx"), U8)
    assert np.array_equal(load_raw(tmp_path / "x.gz"), U8)
    rgb = RNG.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": rgb.reshape(4, -1), b"labels": [1, 2, 3, 4]}, protocol=2))
    x = load_images(tmp_path / "data_batch_1")
    check(x, 4, 3)
    assert np.allclose(x, rgb / 255.0)
    d = tmp_path / "pngs"
    d.mkdir()
    for i in range(3):
        Image.fromarray(rgb[i].transpose(1, 2, 0)).save(d / f"{i}.png")
    x = load_images(d)
    check(x, 3, 3)
    assert np.allclose(x, rgb[:3] / 255.0)


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW", "NHWC1"])
def test_layouts_and_float_input(tmp_path, layout):
    a = RNG.random((3, 32, 32, 3), dtype=np.float32)
    arr = {"NHW": a[..., 0], "NHWC": a, "NCHW": a.transpose(0, 3, 1, 2), "NHWC1": a[..., :1]}[layout]
    np.save(tmp_path / "a.npy", arr)
    x = load_images(tmp_path / "a.npy")
    assert x.shape == (3, 1 if layout in ("NHW", "NHWC1") else 3, 32, 32)


def test_stored_size_kept_unless_padded_or_resized(tmp_path):
    """Any size is read as stored, without a warning; --pad and --resize only on request."""
    np.save(tmp_path / "a.npy", RNG.integers(0, 256, (2, 64, 48), dtype=np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_images(tmp_path / "a.npy").shape == (2, 1, 64, 48)
    check(load_images(tmp_path / "a.npy", fit=Fit(resize=(32, 32))), 2)
    assert load_images(tmp_path / "a.npy", fit=PAD).shape == (2, 1, 64, 64)      # 48 → the next multiple of 32
    np.save(tmp_path / "b.npy", RNG.integers(0, 256, (2, 25, 25), dtype=np.uint8))
    b = load_images(tmp_path / "b.npy", fit=PAD)
    assert b.shape == (2, 1, 32, 32) and np.array_equal(b[:, :, 3:28, 3:28], load_images(tmp_path / "b.npy"))
    with pytest.raises(FscertError, match="not both"):
        load_images(tmp_path / "a.npy", fit=Fit(pad=True, resize=(32, 32)))
    with pytest.raises(FscertError, match="two positive"):
        load_images(tmp_path / "a.npy", fit=Fit(resize=(0, 32)))


def test_limit_is_deterministic_prefix():
    a, b = load_images("mnist", limit=7), load_images("mnist")[:7]
    assert np.array_equal(a, b)
    with pytest.raises(FscertError):
        load_images("mnist", limit=0)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((0, 28, 28), np.uint8), "empty"),
    (np.full((2, 28, 28), np.nan, np.float32), "NaN"),
    (np.full((2, 28, 28), np.inf, np.float32), "NaN or infinite"),
    (np.full((2, 28, 28), 2.0, np.float32), r"\[0, 1\]"),
    (np.zeros((2, 5, 28, 28), np.uint8), "channel"),
    (np.zeros((28, 28), np.uint8), "shape"),
    (np.zeros((2, 28, 28), bool), "dtype"),
    (np.full((2, 28, 28), 300, np.int32), "0..255"),
])
def test_bad_arrays_refused(tmp_path, bad, match):
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(FscertError, match=match):
        load_images(tmp_path / "bad.npy")


def test_bad_files_refused(tmp_path):
    (tmp_path / "t.txt").write_text("not images")
    with pytest.raises(FscertError, match="not an image dataset"):
        load_images(tmp_path / "t.txt")
    with pytest.raises(FscertError, match="not found"):
        load_images(tmp_path / "missing.npz")
    (tmp_path / "trunc.idx").write_bytes(idx_bytes(U8)[:500])
    with pytest.raises(FscertError, match="truncated"):
        load_images(tmp_path / "trunc.idx")
    np.savez(tmp_path / "nokey.npz", other=U8)
    with pytest.raises(FscertError, match="no 'images'"):
        load_images(tmp_path / "nokey.npz")
    good = (tmp_path / "g.npz")
    np.savez(good, images=U8)
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[:200])
    with pytest.raises(FscertError):
        load_images(tmp_path / "cut.npz")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FscertError, match="no PNG"):
        load_images(tmp_path / "empty_dir")


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    (tmp_path / "evil").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(FscertError, match="refusing to unpickle"):
        load_images(tmp_path / "evil")


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_random_bytes_never_crash(tmp_path_factory, blob):
    p = tmp_path_factory.mktemp("fuzz") / "blob.bin"
    p.write_bytes(blob)
    try:
        x = load_images(p)
    except FscertError:
        return
    check(x, len(x), x.shape[1])
