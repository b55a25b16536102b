"""Property tests of the latent and certificate readers (fscert.latents, fscert.certificate).

For ANY input file, ``read_latents`` and ``read_certificate`` either return a fully valid
object or raise :class:`FscertError` with one line that names the file — never another
exception. Inputs: random bytes; valid files mutated with h5py (datasets deleted, replaced,
tweaked, made groups or links; attributes deleted or given other values) and at the byte level
(truncated, bytes flipped); odd paths and odd HDF5 objects. The invariants of a valid object
are checked here independently of the readers' own code. Round trips: random valid latent
sets and certificates are read back identically, and writing twice gives identical bytes.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fscert.certificate import FORMAT, Certificate, attr_json, content_hash, read_certificate, write_certificate
from fscert.errors import FscertError
from fscert.h5input import one_line
from fscert.latents import LatentSet, read_latents, write_latents

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
CERT_DATASETS = ("latents", "prob", "log_prob", "images", "nearest_train", "psnr", "flags", "m_uir")
CERT_ATTRS = ("format", "format_version", "fscert_version", "content_sha256", "mode", "reachable_count",
              "listed_count", "count_only", "dead_end_mass", "rho", "tau", "kappa", "anchoring", "latents_sha256",
              "model_sha256", "train_sha256", "config", "gammas", "uir", "uir_weighted", "m_uir",
              "m_uir_weighted", "memorization_mass", "empirical_rows", "empirical_total")
LATENT_DATASETS = ("latents", "counts", "source_index")
LATENT_INT_ATTRS = ("limit", "seed", "trials", "n_samples")         # converted with int() by their readers
LATENT_REAL_ATTRS = ("tau", "kappa", "rho", "q", "flip_prob")       # converted with float()
LATENT_ATTRS = LATENT_INT_ATTRS + LATENT_REAL_ATTRS + ("data", "config")
PM1 = np.array([-1, 1], np.int8)


# --------------------------------------------------------------------------- invariants


def assert_one_line(err: FscertError, path: Path) -> None:
    msg = str(err)
    assert "\n" not in msg and len(msg.splitlines()) == 1, repr(msg)
    assert one_line(str(path)) in msg, f"{msg!r} does not name {path}"     # line breaks escaped


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_plain_attrs(attrs: dict) -> None:
    assert isinstance(attrs, dict)
    for k, v in attrs.items():
        assert isinstance(k, str)
        if isinstance(v, np.ndarray):
            assert v.dtype.kind in "biuf" or all(isinstance(x, str) for x in v.ravel()), (k, v)
        else:
            assert isinstance(v, (str, int, float, bool)), (k, type(v))


def check_latent_set(ls: LatentSet) -> None:
    z = ls.latents
    assert isinstance(z, np.ndarray) and z.dtype == np.int8 and z.ndim == 4
    assert z.shape[0] >= 1 and min(z.shape) >= 1
    assert set(np.unique(z).tolist()) <= {-1, 1}
    n = len(z)
    if ls.counts is not None:
        assert ls.counts.dtype == np.int64 and ls.counts.shape == (n,) and (ls.counts >= 1).all()
        assert int(ls.weights.sum()) == sum(int(c) for c in ls.counts)          # no int64 overflow
    if ls.source_index is not None:
        assert ls.source_index.dtype == np.int64 and ls.source_index.shape == (n,)
        assert (ls.source_index >= 0).all()
    check_plain_attrs(ls.attrs)
    for key in LATENT_INT_ATTRS:
        assert key not in ls.attrs or is_int(ls.attrs[key]), key
    for key in LATENT_REAL_ATTRS:
        assert key not in ls.attrs or is_real(ls.attrs[key]), key


def json_object(v) -> dict:
    assert isinstance(v, str)
    d = json.loads(v)
    assert isinstance(d, dict)
    return d


def check_certificate(c: Certificate) -> None:
    z = c.latents
    assert isinstance(z, np.ndarray) and z.dtype == np.int8 and z.ndim == 4 and min(z.shape[1:]) >= 1
    assert set(np.unique(z).tolist()) <= {-1, 1}
    k = len(z)
    assert c.prob.dtype == np.float64 and c.prob.shape == (k,)
    assert np.isfinite(c.prob).all() and (c.prob >= 0).all() and (c.prob <= 1).all()
    if c.log_prob is not None:
        assert c.log_prob.dtype == np.float64 and c.log_prob.shape == (k,)
        assert not np.isnan(c.log_prob).any() and (c.log_prob <= 1e-6).all()
    if c.images is not None:
        assert c.images.dtype == np.uint8 and c.images.ndim == 4 and len(c.images) == k
        assert min(c.images.shape[1:]) >= 1
    if c.nearest_train is not None:
        assert c.nearest_train.dtype == np.int64 and c.nearest_train.shape == (k,)
        assert (c.nearest_train >= 0).all()
    if c.psnr is not None:
        assert c.psnr.dtype == np.float64 and c.psnr.shape == (k,) and not np.isnan(c.psnr).any()
    a = c.attrs
    check_plain_attrs(a)
    gammas = c.gammas                                                   # must not raise
    assert all(math.isfinite(g) for g in gammas)
    for name in ("flags", "m_uir"):
        arr = getattr(c, name)
        if arr is not None:
            assert arr.dtype == np.bool_ and arr.shape == (k, len(gammas)), name
    assert a["format"] == FORMAT and a["format_version"] in (1, 2)
    for key in ("fscert_version", "content_sha256", "mode"):
        assert isinstance(a[key], str), key
    assert isinstance(a["reachable_count"], str) and a["reachable_count"].isdigit()
    assert c.reachable_count >= 0                                       # int() must work
    assert is_int(a["listed_count"]) and a["listed_count"] == k
    assert isinstance(a["count_only"], bool) and (k == 0 or not a["count_only"])
    for key in ("dead_end_mass", "rho", "tau", "kappa"):
        assert key not in a or is_real(a[key]), key
    for key in ("anchoring", "latents_sha256", "model_sha256", "train_sha256"):
        assert key not in a or isinstance(a[key], str), key
    if "config" in a:
        json_object(a["config"])
        assert isinstance(attr_json(c, "config"), dict)
    for key in ("uir", "uir_weighted", "m_uir", "m_uir_weighted", "memorization_mass"):
        if key in a:
            assert all(v is None or is_real(v) for v in json_object(a[key]).values()), key   # null: not examined
    content_hash(c)                                                     # hashes every dataset


def read_or_refuse(reader, path: Path, check) -> object | None:
    """The property: a valid object, or a one-line FscertError naming the file."""
    try:
        obj = reader(path)
    except FscertError as e:
        assert_one_line(e, path)
        event("refused")
        return None
    check(obj)
    event("read")
    return obj


def check_both(path: Path) -> None:
    read_or_refuse(read_latents, path, check_latent_set)
    read_or_refuse(read_certificate, path, check_certificate)


# --------------------------------------------------------------------------- valid files


def make_certificate(k: int = 6, model: bool = True, gammas=(20.0, 30.0), seed: int = 0) -> Certificate:
    """A small, correctly shaped certificate (latents 1×3×3, images 1×4×4)."""
    rng = np.random.default_rng(seed)
    latents = rng.choice(PM1, size=(k, 1, 3, 3))
    prob = rng.random(k) + 0.01
    prob /= prob.sum()
    attrs = {"mode": "empirical", "reachable_count": str(k), "listed_count": k, "count_only": k == 0,
             "dead_end_mass": 0.0, "rho": 1, "tau": 1.5, "kappa": float("nan"), "anchoring": "position",
             "latents_sha256": "a" * 64, "model_sha256": "", "train_sha256": "",
             "config": json.dumps({"rho": 1, "gammas": list(gammas)}), "gammas": np.asarray(gammas, np.float64)}
    cert = Certificate(latents, prob, attrs, log_prob=np.log(prob))
    if model:
        g = np.asarray(gammas)
        psnr = rng.uniform(10.0, 40.0, k)
        if k:
            psnr[0] = np.inf
        cert.images = rng.integers(0, 256, (k, 1, 4, 4), dtype=np.uint8)
        cert.nearest_train = rng.integers(0, 10, k).astype(np.int64)
        cert.psnr = psnr
        cert.flags = psnr[:, None] >= g[None, :]
        cert.m_uir = ~cert.flags
        attrs["model_sha256"] = "b" * 64
        attrs["uir"] = json.dumps({f"{x:g}": float(1 - cert.flags[:, j].mean()) if k else 1.0
                                   for j, x in enumerate(gammas)})
        attrs["memorization_mass"] = json.dumps({f"{x:g}": float(prob[cert.flags[:, j]].sum())
                                                 for j, x in enumerate(gammas)})
    return cert


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, Path]:
    """Valid files from the real writers, named by kind."""
    d = tmp_path_factory.mktemp("valid")
    rng = np.random.default_rng(0)
    paths = {name: d / f"{name}.h5" for name in ("latents", "latents_plain", "cert", "cert_latents", "cert_count")}
    write_latents(paths["latents"], rng.choice(PM1, size=(5, 1, 3, 3)),
                  {"limit": 5, "tau": 1.5, "kappa": 2.0, "data": "mnist", "config": json.dumps({"a": 1})},
                  counts=np.array([1, 3, 1, 2, 7]), source_index=np.arange(5))
    write_latents(paths["latents_plain"], rng.choice(PM1, size=(4, 2, 2, 2)))
    write_certificate(paths["cert"], make_certificate())
    write_certificate(paths["cert_latents"], make_certificate(k=4, model=False, gammas=()))
    write_certificate(paths["cert_count"], make_certificate(k=0, model=False, gammas=()))
    for p in paths.values():
        reader = read_certificate if p.name.startswith("cert") else read_latents
        check = check_certificate if p.name.startswith("cert") else check_latent_set
        check(reader(p))
    return paths


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# --------------------------------------------------------------------------- 1. random bytes


@settings(FUZZ, max_examples=60)
@given(blob=st.one_of(st.binary(max_size=600), st.binary(max_size=600).map(lambda b: HDF5_SIGNATURE + b)))
def test_random_bytes_are_refused(work, blob):
    p = work / "blob.h5"
    p.write_bytes(blob)
    for reader in (read_latents, read_certificate):
        with pytest.raises(FscertError) as e:
            reader(p)
        assert_one_line(e.value, p)


# --------------------------------------------------------------------------- 2. mutated valid files

DTYPES = [np.int8, np.uint8, np.int16, np.int64, np.uint64, np.float16, np.float32, np.float64, np.bool_,
          np.complex64, "S3"]
arrays = hnp.arrays(dtype=st.sampled_from(DTYPES).map(np.dtype),
                    shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4))
text = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=12)
attr_values = st.one_of(
    st.integers(-2 ** 63, 2 ** 63 - 1), st.floats(), text, st.booleans(), st.binary(max_size=8).map(np.bytes_),
    hnp.arrays(st.sampled_from([np.int64, np.float64, np.bool_, np.uint8]).map(np.dtype),
               hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)),
    st.lists(text, max_size=3).map(lambda x: np.array(x, dtype=h5py.string_dtype())),
    st.sampled_from([FORMAT, "fscert-certificate-v2", "1", "12a", "٣", "9" * 5000, "-3", "",
                     "[1, 2]", '{"30": 0.5}', '{"30": "x"}', "[" * 5000, "NaN", b"\xff\xfe", 2, 0, -1, 1.0, True,
                     "a\nb", h5py.Empty("f8")]))


@st.composite
def h5_ops(draw, datasets: tuple[str, ...], attrs: tuple[str, ...]) -> list[tuple]:
    """A few h5py edits of a file, then a few byte-level ones."""
    name = st.sampled_from(datasets + ("other",))
    ops = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["del", "replace", "tweak", "tweak", "group", "softlink", "extlink",
                                     "del_attr", "set_attr", "set_attr"]))
        if kind in ("del", "group", "softlink", "extlink"):
            ops.append((kind, draw(name)))
        elif kind == "replace":
            ops.append((kind, draw(name), draw(arrays)))
        elif kind == "tweak":
            ops.append((kind, draw(name), draw(st.sampled_from(
                ["set", "astype", "drop_row", "add_row", "add_dim", "flatten", "scale", "negate", "empty"])),
                draw(st.integers(0, 10 ** 6)), draw(st.sampled_from([0, 2, -2, 127, np.nan, np.inf, -np.inf, 1.5,
                                                                      -1, 1, 1e300, 2 ** 63]))))
        elif kind == "del_attr":
            ops.append((kind, draw(st.sampled_from(attrs))))
        else:
            ops.append((kind, draw(st.sampled_from(attrs + ("other",))), draw(attr_values)))
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            ops.append(("truncate", draw(st.floats(0, 1, exclude_max=True))))
        else:
            ops.append(("flip", draw(st.floats(0, 1, exclude_max=True)), draw(st.integers(1, 255))))
    return ops


def tweak(a: np.ndarray, how: str, i: int, value) -> np.ndarray:
    """``a`` changed a little: one value set, another dtype, a row more or less, other dimensions."""
    a = np.array(a)
    if a.dtype.kind not in "biuf":
        return a
    if how == "set" and a.size:
        if isinstance(value, float) and a.dtype.kind != "f":
            a = a.astype(np.float64)
        with np.errstate(all="ignore"):
            a.flat[i % a.size] = np.asarray(value).astype(a.dtype) if a.dtype.kind != "f" else value
    elif how == "astype":
        with np.errstate(all="ignore"):
            a = a.astype([np.float64, np.int16, np.uint8, np.bool_, np.float32, np.int8][i % 6])
    elif how == "drop_row" and a.ndim:
        a = a[:-1]
    elif how == "add_row" and a.ndim and len(a):
        a = np.concatenate([a, a[:1]])
    elif how == "add_dim":
        a = a[..., None]
    elif how == "flatten":
        a = a.ravel()
    elif how == "scale" and a.dtype.kind in "iuf":
        with np.errstate(all="ignore"):
            a = (a.astype(np.float64) * [0.5, 3, -1][i % 3]).astype(a.dtype)
    elif how == "negate" and a.dtype.kind in "if":
        a = -a
    elif how == "empty" and a.ndim:
        a = a[:0]
    return a


def mutate(path: Path, ops: list[tuple], donor: Path) -> None:
    with h5py.File(path, "r+") as f:
        for op in ops:
            kind, key = op[0], op[1]
            if kind in ("del", "group", "softlink", "extlink", "replace", "tweak") \
                    and f.get(key, getlink=True) is not None:
                try:
                    obj = f.get(key)
                except (KeyError, RuntimeError):                    # a dangling or looping link
                    obj = None
                old = obj[()] if kind == "tweak" and isinstance(obj, h5py.Dataset) else None
                del f[key]
            else:
                old = None
            if kind == "group":
                f.create_group(key).create_dataset("x", data=[1])
            elif kind == "softlink":
                f[key] = h5py.SoftLink("/nowhere" if key == "other" else "/latents")
            elif kind == "extlink":
                f[key] = h5py.ExternalLink(str(donor), "/latents")
            elif kind == "replace":
                f.create_dataset(key, data=op[2])
            elif kind == "tweak" and old is not None:
                f.create_dataset(key, data=tweak(old, *op[2:]))
            elif kind == "del_attr" and key in f.attrs:
                del f.attrs[key]
            elif kind == "set_attr":
                f.attrs[key] = op[2]
    data = bytearray(path.read_bytes())
    for op in ops:
        if op[0] == "truncate":
            del data[int(op[1] * len(data)):]
        elif op[0] == "flip" and data:
            data[int(op[1] * len(data))] ^= op[2]
    path.write_bytes(bytes(data))


def run_mutation(valid: dict[str, Path], work: Path, base: str, ops: list[tuple]) -> None:
    p = work / "mutated.h5"
    shutil.copyfile(valid[base], p)
    mutate(p, ops, donor=valid["latents_plain"])
    if base.startswith("cert"):
        read_or_refuse(read_certificate, p, check_certificate)
    else:
        read_or_refuse(read_latents, p, check_latent_set)


@settings(FUZZ, max_examples=250)
@given(base=st.sampled_from(["latents", "latents_plain"]), ops=h5_ops(LATENT_DATASETS, LATENT_ATTRS))
def test_mutated_latent_files(valid, work, base, ops):
    run_mutation(valid, work, base, ops)


@settings(FUZZ, max_examples=300)
@given(base=st.sampled_from(["cert", "cert_latents", "cert_count"]), ops=h5_ops(CERT_DATASETS, CERT_ATTRS))
def test_mutated_certificates(valid, work, base, ops):
    run_mutation(valid, work, base, ops)


@pytest.mark.parametrize("base", ["latents", "cert"])
def test_every_truncation_is_refused(valid, work, base):
    data = valid[base].read_bytes()
    reader = read_certificate if base == "cert" else read_latents
    p = work / f"trunc-{base}.h5"
    for cut in range(0, len(data), 61):
        p.write_bytes(data[:cut])
        with pytest.raises(FscertError) as e:
            reader(p)
        assert_one_line(e.value, p)


# --------------------------------------------------------------------------- 3. round trips

names = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True).filter(lambda k: k not in LATENT_ATTRS)
plain_values = st.one_of(st.integers(-2 ** 63, 2 ** 63 - 1), st.floats(), text, st.booleans(),
                         hnp.arrays(np.float64, st.integers(1, 3)), st.lists(st.integers(0, 9), max_size=3))


def same_value(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b, equal_nan=True)
    if type(a) is not type(b):
        return False
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


@st.composite
def latent_sets(draw) -> LatentSet:
    shape = tuple(draw(st.integers(1, n)) for n in (6, 3, 4, 4))
    z = draw(hnp.arrays(np.int8, shape, elements=st.sampled_from([-1, 1])))
    n = shape[0]
    counts = draw(st.none() | hnp.arrays(np.int64, n, elements=st.integers(1, 10 ** 9)))
    src = draw(st.none() | hnp.arrays(np.int64, n, elements=st.integers(0, 10 ** 6)))
    attrs = draw(st.dictionaries(names, plain_values, max_size=4))
    attrs.update(draw(st.fixed_dictionaries({}, optional={"limit": st.integers(0, 10 ** 6), "tau": st.floats(),
                                                          "kappa": st.floats(1, 10), "data": text})))
    return LatentSet(z, counts, src, attrs)


@settings(FUZZ, max_examples=60)
@given(ls=latent_sets())
def test_latent_round_trip_and_determinism(work, ls):
    a, b = work / "rt-a.h5", work / "rt-b.h5"
    write_latents(a, ls.latents, ls.attrs, counts=ls.counts, source_index=ls.source_index)
    write_latents(b, ls.latents, ls.attrs, counts=ls.counts, source_index=ls.source_index)
    assert a.read_bytes() == b.read_bytes()                           # the writer is deterministic
    got = read_latents(a)
    check_latent_set(got)
    assert got.latents.tobytes() == ls.latents.tobytes() and got.latents.shape == ls.latents.shape
    for name in ("counts", "source_index"):
        want, have = getattr(ls, name), getattr(got, name)
        assert (want is None and have is None) or np.array_equal(want, have), name
    expected = {k: json.dumps(v) if isinstance(v, list) else v for k, v in ls.attrs.items()}
    assert expected.keys() == got.attrs.keys()
    for k, v in expected.items():
        assert same_value(v, got.attrs[k]), (k, v, got.attrs[k])


@st.composite
def certificates(draw) -> Certificate:
    k = draw(st.integers(0, 5))
    m, h, w = (draw(st.integers(1, 2)) for _ in range(3))
    gammas = draw(st.lists(st.floats(0, 60), max_size=3))
    weights = draw(hnp.arrays(np.float64, k, elements=st.floats(0.01, 1)))
    prob = weights / weights.sum() if k else weights
    attrs = {"mode": draw(st.sampled_from(["empirical", "full-support"])),
             "reachable_count": str(draw(st.integers(k, 10 ** 40))), "listed_count": k,
             "count_only": k == 0 and draw(st.booleans()), "rho": draw(st.integers(0, 3)),
             "tau": draw(st.floats(1, 3) | st.just(float("nan"))), "dead_end_mass": draw(st.floats(0, 1)),
             "config": json.dumps(draw(st.dictionaries(text, st.integers()))), "gammas": np.asarray(gammas, float),
             "uir": json.dumps({f"{g:g}": draw(st.floats(0, 1)) for g in gammas})}
    attrs.update(draw(st.dictionaries(names.filter(lambda x: x not in CERT_ATTRS), plain_values, max_size=3)))
    cert = Certificate(draw(hnp.arrays(np.int8, (k, m, h, w), elements=st.sampled_from([-1, 1]))), prob, attrs)
    if draw(st.booleans()):
        cert.log_prob = np.log(np.maximum(prob, 1e-300))
    if draw(st.booleans()):
        c, s = draw(st.sampled_from([1, 3])), draw(st.integers(1, 4))
        cert.images = draw(hnp.arrays(np.uint8, (k, c, s, s)))
        cert.nearest_train = draw(hnp.arrays(np.int64, k, elements=st.integers(0, 10 ** 6)))
        cert.psnr = draw(hnp.arrays(np.float64, k, elements=st.floats(0, 100) | st.just(float("inf"))))
        cert.flags = cert.psnr[:, None] >= np.asarray(gammas, float)[None, :]
        cert.m_uir = draw(hnp.arrays(np.bool_, (k, len(gammas))))
    return cert


@settings(FUZZ, max_examples=60)
@given(cert=certificates())
def test_certificate_round_trip_and_determinism(work, cert):
    a, b = work / "rc-a.h5", work / "rc-b.h5"
    digest = write_certificate(a, cert)
    assert write_certificate(b, cert) == digest
    assert a.read_bytes() == b.read_bytes()                           # the writer is deterministic
    got = read_certificate(a)
    check_certificate(got)
    assert got.attrs["content_sha256"] == digest == content_hash(got)
    assert set(got.datasets()) == set(cert.datasets())
    for name, arr in cert.datasets().items():
        have = got.datasets()[name]
        assert have.dtype == arr.dtype and have.shape == arr.shape and have.tobytes() == arr.tobytes(), name
    expected = {k: json.dumps(v) if isinstance(v, list) else v for k, v in cert.attrs.items()}
    assert expected.keys() == got.attrs.keys()
    for k, v in expected.items():
        assert same_value(v, got.attrs[k]), (k, v, got.attrs[k])


# --------------------------------------------------------------------------- 4. odd paths and objects


def refused(reader, path: Path, match: str | None = None) -> str:
    with pytest.raises(FscertError, match=match) as e:
        reader(path)
    assert_one_line(e.value, path)
    return str(e.value)


@pytest.mark.parametrize("reader", [read_latents, read_certificate])
def test_odd_paths(valid, tmp_path, reader):
    refused(reader, tmp_path / "missing.h5", "not found")
    refused(reader, tmp_path, "not a regular file")                 # a directory
    (tmp_path / "empty.h5").write_bytes(b"")
    refused(reader, tmp_path / "empty.h5")
    os.symlink(tmp_path / "missing.h5", tmp_path / "dangling.h5")
    refused(reader, tmp_path / "dangling.h5", "not found")
    os.mkfifo(tmp_path / "fifo.h5")                                 # opening it would block: never opened
    refused(reader, tmp_path / "fifo.h5", "not a regular file")
    odd = tmp_path / "line\nbreak\u2028.h5"
    shutil.copyfile(valid["latents_plain"] if reader is read_certificate else valid["cert_count"], odd)
    msg = refused(reader, odd)                                       # not a file of this kind
    assert "line\\nbreak\\u2028.h5" in msg
    good = valid["cert"] if reader is read_certificate else valid["latents"]
    os.symlink(good, tmp_path / "link.h5")
    assert reader(tmp_path / "link.h5") is not None                 # a symlink to a file is fine


def test_odd_hdf5_objects(valid, tmp_path):
    p = tmp_path / "x.h5"
    with h5py.File(p, "w") as f:
        f.create_group("latents")
    refused(read_latents, p, "group, not a dataset")
    with h5py.File(p, "w") as f:
        f["latents"] = np.int8(1)                                   # a scalar
    refused(read_latents, p, "4-D")
    with h5py.File(p, "w") as f:
        f.create_dataset("latents", data=h5py.Empty("i1"))
    refused(read_latents, p, "dataspace")
    with h5py.File(p, "w") as f:
        f["latents"] = np.ones((2, 1, 2, 2), np.int8)
        f["counts"] = np.array([2 ** 63, 1], np.uint64)               # would wrap to a negative int64
    refused(read_latents, p, "counts")
    with h5py.File(p, "w") as f:
        f["latents"] = np.ones((2, 1, 2, 2), np.int8)
        f["counts"] = np.array([2 ** 62, 2 ** 62], np.int64)          # Σ counts overflows int64
    refused(read_latents, p, "counts")
    with h5py.File(p, "w") as f:
        f["latents"] = np.ones((2, 1, 2, 2), np.int8)
        f.attrs["limit"] = "all"
    refused(read_latents, p, "'limit' must be an integer")
    raw = tmp_path / "raw.bin"                                      # raw data kept in another file
    raw.write_bytes(np.ones(8, np.int8).tobytes())
    with h5py.File(p, "w") as f:
        f.create_dataset("latents", shape=(2, 1, 2, 2), dtype=np.int8, external=[(str(raw), 0, 8)])
    refused(read_latents, p, "another file")
    with h5py.File(p, "w") as f:
        layout = h5py.VirtualLayout(shape=(4, 2, 2, 2), dtype=np.int8)
        layout[:] = h5py.VirtualSource(str(valid["latents_plain"]), "latents", shape=(4, 2, 2, 2))
        f.create_virtual_dataset("latents", layout)
    refused(read_latents, p, "another file")
    with h5py.File(p, "w") as f:
        f["latents"] = h5py.ExternalLink(str(valid["latents_plain"]), "/latents")
    refused(read_latents, p, "ExternalLink")


def test_forged_shape_is_refused_before_reading(tmp_path):
    """A chunked dataset declaring 2.5 TB of latents in a file of a few kB: refused, nothing allocated."""
    p = tmp_path / "huge.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("latents", shape=(10 ** 7, 4, 256, 256), dtype=np.int8, chunks=(1, 4, 256, 256),
                         compression="gzip")
    assert p.stat().st_size < 100_000
    refused(read_latents, p, "more than the file can hold")
    cert = tmp_path / "c.h5"
    write_certificate(cert, make_certificate(k=3))
    with h5py.File(cert, "r+") as f:
        del f["images"]
        f.create_dataset("images", shape=(3, 3, 2 ** 20, 2 ** 20), dtype=np.uint8, chunks=(1, 1, 1024, 1024),
                         compression="gzip")
    refused(read_certificate, cert, "more than the file can hold")


def test_certificate_semantics(tmp_path):
    """Mutually inconsistent but individually well-typed datasets and attributes are refused."""
    def variant(name: str, **change) -> Path:
        cert = make_certificate(k=4)
        for key, value in change.items():
            if key in CERT_DATASETS:
                setattr(cert, key, value)
            else:
                cert.attrs[key] = value
        path = tmp_path / f"{name}.h5"
        write_certificate(path, cert)
        return path

    refused(read_certificate, variant("rows", psnr=np.zeros(3)), "rows")
    refused(read_certificate, variant("cols", flags=np.zeros((4, 3), bool)), "columns")
    refused(read_certificate, variant("listed", listed_count=5), "listed_count")
    refused(read_certificate, variant("countonly", count_only=True), "count-only")
    refused(read_certificate, variant("prob", prob=np.array([0.5, 0.5, 1.5, -0.5])), "prob")
    refused(read_certificate, variant("nan", prob=np.array([0.5, 0.5, np.nan, 0])), "prob")
    refused(read_certificate, variant("logp", log_prob=np.array([0.0, 0.5, -1, -1])), "log_prob")
    refused(read_certificate, variant("near", nearest_train=np.array([0, -1, 2, 3])), "nearest_train")
    refused(read_certificate, variant("pm1", latents=np.zeros((4, 1, 3, 3), np.int8)), "±1")
    refused(read_certificate, variant("dtype", prob=np.full(4, 0.25, np.float32)), "float64")
    refused(read_certificate, variant("reach", reachable_count="10**40"), "reachable_count")
    refused(read_certificate, variant("cfg", config="[1, 2]"), "config")
    refused(read_certificate, variant("uir", uir='{"20": "high"}'), "uir")
    for key, value, match in [("format_version", 3, "format 3"), ("format_version", 0, "version 0"),
                              ("format_version", "1", "format_version"), ("format", "other", "not an fscert"),
                              ("fscert_version", 3, "fscert_version")]:
        path = variant("attr")
        with h5py.File(path, "r+") as f:
            f.attrs[key] = value
        refused(read_certificate, path, match)
    path = variant("noversion")
    with h5py.File(path, "r+") as f:
        del f.attrs["format_version"]
    refused(read_certificate, path, "format_version")
    # a probability vector that no longer sums to 1 is read: `fscert verify` reports it
    assert read_certificate(variant("sum", prob=np.full(4, 0.1))).prob.sum() == pytest.approx(0.4)


def test_damaged_global_heap_is_refused_not_hung(valid, tmp_path):
    """libhdf5 2.0 loops forever on a global heap collection (where str attributes live) whose
    free-space object has size 0; the readers refuse such a file before libhdf5 decodes it."""
    for base, reader in (("cert", read_certificate), ("latents", read_latents)):
        data = bytearray(valid[base].read_bytes())
        at = data.find(b"GCOL\x01")
        assert at >= 0
        end, p = at + int.from_bytes(data[at + 8:at + 16], "little"), at + 16
        while int.from_bytes(data[p:p + 2], "little"):              # walk to the free-space object
            p += 16 + -(-int.from_bytes(data[p + 8:p + 16], "little") // 8) * 8
        assert p < end
        data[p + 8:p + 16] = bytes(8)
        path = tmp_path / f"heap-{base}.h5"
        path.write_bytes(bytes(data))
        refused(reader, path, "global heap")


def test_long_strings_and_many_attributes_round_trip(tmp_path):
    """Global heaps spanning several collections (long str attributes) are read back intact."""
    attrs = {f"a{i}": "x" * (i * 997) for i in range(12)}
    attrs["config"] = json.dumps({"k": "y" * 200_000})
    write_latents(tmp_path / "l.h5", np.ones((2, 1, 2, 2), np.int8), attrs)
    assert read_latents(tmp_path / "l.h5").attrs == attrs
    cert = make_certificate(k=3)
    cert.attrs.update(attrs)
    write_certificate(tmp_path / "c.h5", cert)
    got = read_certificate(tmp_path / "c.h5")
    assert all(got.attrs[k] == v for k, v in attrs.items())


def test_types_fscert_never_writes_are_refused_before_reading(valid, tmp_path):
    """Attributes and datasets of other HDF5 type classes are refused from their type alone
    (libhdf5 has crashed reading a damaged variable-length sequence)."""
    p = tmp_path / "t.h5"
    odd_attrs = {"vlen": (np.array([np.arange(3), np.arange(2)], dtype=object), h5py.vlen_dtype(np.int64)),
                 "compound": (np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]), None),
                 "opaque": (np.void(b"\x00\x01"), None)}
    for key, (value, dtype) in odd_attrs.items():
        with h5py.File(p, "w") as f:
            f["latents"] = np.ones((2, 1, 2, 2), np.int8)
            f.attrs.create(key, value, dtype=dtype)
        refused(read_latents, p, f"attribute '{key}' has an unsupported HDF5 type")
    with h5py.File(p, "w") as f:
        f["latents"] = np.ones((2, 1, 2, 2), np.int8)
        f.attrs["ref"] = f["latents"].ref
    refused(read_latents, p, "reference")
    for data in (np.array(["a", "b"], dtype=h5py.string_dtype()), odd_attrs["compound"][0]):
        with h5py.File(p, "w") as f:
            f["latents"] = np.ones((2, 1, 2, 2), np.int8)
            f["counts"] = data
        refused(read_latents, p, "'counts' must be numeric")
    # the on-disk variable-length string of attribute 'data' turned into a sequence of bytes
    data = bytearray(valid["latents"].read_bytes())
    at = data.find(b"\x19\x01\x01\x00\x10\x00\x00\x00")                 # version 1, VLEN, string, UTF-8
    assert at >= 0
    data[at + 1] = 0x00                                                   # string → sequence
    p.write_bytes(bytes(data))
    refused(read_latents, p, "variable-length sequence")


def test_filters(tmp_path):
    """gzip, lzf, shuffle and fletcher32 are read; other HDF5 filters are refused unread."""
    z = np.ones((4, 1, 2, 2), np.int8)
    p = tmp_path / "f.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("latents", data=z, compression="lzf", shuffle=True, fletcher32=True)
        f.create_dataset("counts", data=np.arange(1, 5), compression="gzip")
    assert np.array_equal(read_latents(p).latents, z)
    with h5py.File(p, "w") as f:
        f.create_dataset("latents", data=z, scaleoffset=0)
    refused(read_latents, p, "filter 6")


def test_attribute_name_that_is_not_utf8(valid, tmp_path):
    """A damaged attribute name (h5py gives it as bytes) is refused, not passed on as a key."""
    data = bytearray(valid["latents"].read_bytes())
    at = data.find(b"limit\x00")
    assert at >= 0
    data[at + 2] = 0xED                                                  # "limit" → b"li\xedit"
    p = tmp_path / "name.h5"
    p.write_bytes(bytes(data))
    refused(read_latents, p, "not UTF-8")
