"""Real medical inputs (issue 12): PNG/TIFF at 8 and 16 bits, DICOM, NIfTI, folders, traceability.

References are computed here independently of fscert: the bundled X-rays (uint8) divided by
255 in float64; 16-bit PNGs written by a small PNG encoder below (not Pillow); DICOM pixels
from pydicom's own ``pixel_array``/``apply_modality_lut`` and the documented formula. The
sample DICOM files are those shipped inside the pydicom wheel (read from disk, never fetched).
"""
from __future__ import annotations

import shutil
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.pixels import apply_modality_lut, get_decoder
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless, generate_uid

from fscert.data import Dataset, load_dataset, load_images, load_raw, match_channels, natural_key
from fscert.errors import FscertError

SAMPLES = Path(pydicom.__file__).parent / "data" / "test_files"
CR = ["dicomdirtests/77654033/CR1/6154", "dicomdirtests/77654033/CR2/6247", "dicomdirtests/77654033/CR3/6278"]


def sample(name: str) -> Path:
    p = SAMPLES / name
    if not p.is_file():
        pytest.skip(f"pydicom sample {name} is not in this wheel")
    return p


@pytest.fixture(scope="module")
def xrays() -> np.ndarray:
    a = load_raw("pneumoniamnist")[:6]
    assert a.dtype == np.uint8 and a.shape == (6, 28, 28)
    return a


def ref8(a: np.ndarray) -> np.ndarray:
    """The expected float32 pixels of 8-bit values: v / 255 in float64, cast once."""
    return (a.astype(np.float64) / 255.0).astype(np.float32)


def colour(x: np.ndarray) -> np.ndarray:
    """An RGB version (H×W×3, channels that differ) of 8-bit grayscale images."""
    return np.stack([x, 255 - x, x // 2], axis=-1)


def png_bytes(a: np.ndarray, colour_type: int, depth: int) -> bytes:
    """A PNG written without Pillow: IHDR, one zlib IDAT of unfiltered rows, IEND."""
    h, w = a.shape[:2]
    rows = a.astype(">u2" if depth == 16 else "u1").reshape(h, -1)
    raw = b"".join(b"\x00" + r.tobytes() for r in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def write_folder(d: Path, images, name="im{}.png", depth=8) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(images):
        ctype = 2 if a.ndim == 3 else 0
        (d / name.format(i)).write_bytes(png_bytes(a.astype(np.uint16) * 257 if depth == 16 else a, ctype, depth))


# --------------------------------------------------------------------------- PNG and TIFF, 8 and 16 bits


@pytest.mark.parametrize("fmt", ["png8", "png16", "png8-pil", "png16-pil", "tif8", "tif16"])
def test_grayscale_8_and_16_bit_read_exactly(tmp_path, xrays, fmt):
    d = tmp_path / fmt
    d.mkdir()
    for i, a in enumerate(xrays):
        a16 = a.astype(np.uint16) * 257
        if fmt in ("png8", "png16"):
            (d / f"{i}.png").write_bytes(png_bytes(a16 if fmt == "png16" else a, 0, 16 if fmt == "png16" else 8))
        elif fmt.endswith("-pil"):
            Image.fromarray(a16 if fmt == "png16-pil" else a).save(d / f"{i}.png")
        else:
            tifffile.imwrite(d / f"{i}.tif", a16 if fmt == "tif16" else a, photometric="minisblack")
    if fmt.startswith("png16"):
        assert (d / "0.png").read_bytes()[24] == 16                    # IHDR: really 16 bits
    ds = load_dataset(d)
    assert ds.images.dtype == np.float32 and ds.images.shape == (6, 1, 28, 28)
    assert np.array_equal(ds.images[:, 0], ref8(xrays))               # bit-identical, not merely close
    assert ds.bit_depth == (16 if "16" in fmt else 8)


@pytest.mark.parametrize("fmt", ["png8", "tif8", "tif16"])
def test_rgb_8_and_16_bit_read_exactly(tmp_path, xrays, fmt):
    d = tmp_path / fmt
    d.mkdir()
    for i, a in enumerate(xrays):
        rgb = colour(a)
        if fmt == "png8":
            Image.fromarray(rgb).save(d / f"{i}.png")
        else:
            tifffile.imwrite(d / f"{i}.tif", rgb.astype(np.uint16) * 257 if fmt == "tif16" else rgb, photometric="rgb")
    x = load_images(d)
    assert x.shape == (6, 3, 28, 28)
    assert np.array_equal(x, ref8(colour(xrays)).transpose(0, 3, 1, 2))


@pytest.mark.parametrize("ctype", [2, 4, 6])
def test_16_bit_colour_png_refused_not_truncated(tmp_path, xrays, ctype):
    channels = {2: 3, 4: 2, 6: 4}[ctype]
    a = np.repeat(xrays[0][..., None].astype(np.uint16) * 257 + 1, channels, axis=-1)
    (tmp_path / "c.png").write_bytes(png_bytes(a, ctype, 16))
    with pytest.raises(FscertError, match="16-bit .*PNG.*refuses") as e:
        load_dataset(tmp_path / "c.png")
    assert "\n" not in str(e.value)


def test_alpha_read_only_when_opaque(tmp_path, xrays):
    rgba = np.concatenate([colour(xrays[0]), np.full((28, 28, 1), 255, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert np.array_equal(load_images(tmp_path / "a.png")[0], ref8(colour(xrays[0])).transpose(2, 0, 1))
    rgba[3, 4, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "t.png")
    with pytest.raises(FscertError, match="transparent"):
        load_images(tmp_path / "t.png")


def test_tiff_stack_float_and_miniswhite(tmp_path, xrays):
    tifffile.imwrite(tmp_path / "stack.tif", xrays, photometric="minisblack")
    ds = load_dataset(tmp_path / "stack.tif")
    assert np.array_equal(ds.images[:, 0], ref8(xrays))
    assert ds.names == [f"stack.tif[page={i}]" for i in range(6)] and ds.order == "stored order of the file"
    f = xrays[0].astype(np.float32) / 255
    tifffile.imwrite(tmp_path / "f.tif", f)
    x = load_dataset(tmp_path / "f.tif")
    assert np.array_equal(x.images[0, 0], f) and x.bit_depth is None
    tifffile.imwrite(tmp_path / "w.tif", 255 - xrays[0], photometric="miniswhite")
    assert np.array_equal(load_images(tmp_path / "w.tif")[0, 0], ref8(xrays[0]))
    tifffile.imwrite(tmp_path / "big.tif", np.full((4, 4), 2.0, np.float32))
    with pytest.raises(FscertError, match=r"\[0, 1\]"):
        load_images(tmp_path / "big.tif")
    tifffile.imwrite(tmp_path / "i32.tif", np.zeros((4, 4), np.uint32))
    with pytest.raises(FscertError, match="1..16 bits"):
        load_images(tmp_path / "i32.tif")


def test_uint16_arrays_scaled_by_65535(tmp_path, xrays):
    np.save(tmp_path / "a.npy", xrays.astype(np.uint16) * 257)
    ds = load_dataset(tmp_path / "a.npy")
    assert np.array_equal(ds.images[:, 0], ref8(xrays)) and ds.bit_depth == 16
    assert ds.names == [f"#{i}" for i in range(6)] and ds.order == "stored order of the array"


# --------------------------------------------------------------------------- DICOM


def expected_dicom(path: Path) -> np.ndarray:
    """The documented mapping, computed from pydicom's own decoding and modality LUT."""
    ds = pydicom.dcmread(path)
    v = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    b = int(ds.BitsStored)
    smin, smax = (-(2 ** (b - 1)), 2 ** (b - 1) - 1) if ds.PixelRepresentation == 1 else (0, 2 ** b - 1)
    ends = apply_modality_lut(np.array([smin, smax], np.float64), ds)
    lo, hi = min(ends), max(ends)
    u = (hi - v) / (hi - lo) if ds.PhotometricInterpretation == "MONOCHROME1" else (v - lo) / (hi - lo)
    return u.astype(np.float32)


@pytest.mark.parametrize("name", CR + ["CT_small.dcm", "MR_small.dcm"])
def test_pydicom_samples_rescaled_and_inverted(name):
    path = sample(name)
    raw = pydicom.dcmread(path)
    ds = load_dataset(path)
    assert np.array_equal(ds.images[0, 0], expected_dicom(path))
    assert ds.bit_depth == raw.BitsStored and ds.native_hw == (raw.Rows, raw.Columns)
    if raw.PhotometricInterpretation == "MONOCHROME1":       # CR: the brightest stored value is the darkest pixel
        s = raw.pixel_array
        assert ds.images[0, 0][s == s.max()].max() < ds.images[0, 0][s == s.min()].min()
        assert float(raw.RescaleSlope) != 1                     # the sample really exercises the rescale


def test_dicom_transfer_syntaxes_agree():
    ref = load_images(sample("MR_small.dcm"))
    for other in ("MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm"):
        assert np.array_equal(load_images(sample(other)), ref), other


@pytest.mark.parametrize("name,match", [
    ("examples_ybr_color.dcm", "YBR"), ("examples_palette.dcm", "PALETTE"), ("rtdose.dcm", "BitsStored 32"),
    ("rtplan.dcm", "no image"), ("MR_truncated.dcm", "cannot read DICOM"),
])
def test_dicom_refusals(name, match):
    with pytest.raises(FscertError, match=match) as e:
        load_images(sample(name))
    assert "\n" not in str(e.value)


def test_compressed_dicom_without_decoder_refused():
    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    with pytest.raises(FscertError, match="compressed .*no decoder"):
        load_images(sample("MR_small_jpeg_ls_lossless.dcm"))


def write_dicom(path: Path, frames: np.ndarray, bits: int = 16, photometric: str = "MONOCHROME2", **extra) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\x00" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "OT", "fscert-test"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.Rows, ds.Columns = frames.shape[-2:]
    ds.BitsAllocated = 16 if bits > 8 else 8
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    if frames.ndim == 3:
        ds.NumberOfFrames = len(frames)
    for k, v in extra.items():
        setattr(ds, k, v)
    ds.PixelData = frames.astype("<u2" if bits > 8 else "u1").tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_dicom_written_from_xrays_round_trips(tmp_path, xrays):
    d = tmp_path / "dicom"
    d.mkdir()
    for i, a in enumerate(xrays):
        write_dicom(d / f"x{i}.dcm", a.astype(np.uint16) * 257)                   # 16 bits stored
    ds = load_dataset(d)
    assert np.array_equal(ds.images[:, 0], ref8(xrays)) and ds.bit_depth == 16
    write_dicom(tmp_path / "m1.dcm", 255 - xrays[0], bits=8, photometric="MONOCHROME1")
    assert np.array_equal(load_images(tmp_path / "m1.dcm")[0, 0], ref8(xrays[0]))
    write_dicom(tmp_path / "multi.dcm", xrays.astype(np.uint16) * 257)
    ds = load_dataset(tmp_path / "multi.dcm")
    assert np.array_equal(ds.images[:, 0], ref8(xrays))
    assert ds.names == [f"multi.dcm[frame={i}]" for i in range(6)]
    write_dicom(tmp_path / "neg.dcm", xrays[0], bits=8, RescaleSlope=-2, RescaleIntercept=7)
    assert np.array_equal(load_images(tmp_path / "neg.dcm")[0, 0], ref8(255 - xrays[0]))


def test_dicom_folder_without_suffixes_and_pixelless_files_counted(tmp_path):
    d = tmp_path / "cr"
    d.mkdir()
    for name in CR:
        shutil.copy(sample(name), d / Path(name).name)              # 6154, 6247, 6278: no suffix, 'DICM' magic
    shutil.copy(sample("rtplan.dcm"), d / "plan.dcm")
    (d / "notes.txt").write_text("x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                  # warn=False: the notes are only kept
        ds = load_dataset(d, warn=False)
    assert ds.names == ["6154", "6247", "6278"]
    assert ds.skipped == {"DICOM without pixel data": 1, "not an image": 1}
    assert any("skipped 1 files that are not images (notes.txt)" in line for line in ds.notes)
    for i, name in enumerate(CR):
        assert np.array_equal(ds.images[i, 0], expected_dicom(sample(name)))


def test_dicom_folder_with_different_ranges_uses_one_range(tmp_path, xrays):
    d = tmp_path / "mixed"
    d.mkdir()
    write_dicom(d / "a.dcm", xrays[0], bits=8)                          # 0..255
    write_dicom(d / "b.dcm", xrays[1], bits=8, RescaleIntercept=-100)   # -100..155
    ds = load_dataset(d, warn=False)
    x = ds.images
    lo, hi = -100.0, 255.0
    assert np.array_equal(x[0, 0], ((xrays[0] - lo) / (hi - lo)).astype(np.float32))
    assert np.array_equal(x[1, 0], ((xrays[1] - 100.0 - lo) / (hi - lo)).astype(np.float32))
    assert any("common range -100..255" in line for line in ds.notes)
    assert np.array_equal(load_dataset(d, limit=1, warn=False).images, x[:1])   # a prefix


# --------------------------------------------------------------------------- NIfTI


def test_nifti_image_and_volume_slices(tmp_path, xrays):
    nib = pytest.importorskip("nibabel")
    vol = xrays.transpose(1, 2, 0)                                     # I×J×K: slice z = vol[:, :, z]
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "vol.nii.gz")
    ds = load_dataset(tmp_path / "vol.nii.gz")
    assert ds.names == [f"vol.nii.gz[z={z}]" for z in range(6)] and ds.bit_depth == 8
    assert np.array_equal(ds.images[:, 0], ref8(xrays))
    nib.save(nib.Nifti1Image(xrays[0].astype(np.float32) / 255, np.eye(4)), tmp_path / "one.nii")
    assert np.array_equal(load_images(tmp_path / "one.nii")[0, 0], xrays[0].astype(np.float32) / 255)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2, 3), np.uint8), np.eye(4)), tmp_path / "t.nii")
    with pytest.raises(FscertError, match="2-D image or the z-slices"):
        load_images(tmp_path / "t.nii")


# --------------------------------------------------------------------------- folders


def test_natural_order_stated_and_followed(tmp_path, xrays):
    d = tmp_path / "nat"
    d.mkdir()
    order = ["im1.png", "im2.png", "im10.png", "im11.png", "im100.png", "im200.png"]
    for name, a in zip(reversed(order), xrays):                       # written in another order
        Image.fromarray(a).save(d / name)
    ds = load_dataset(d)
    assert ds.names == order and ds.order == "natural sort of file paths (im2 before im10)"
    assert np.array_equal(ds.images[:, 0], ref8(xrays[::-1]))
    got = sorted(["b10", "a10/x", "a2/y1", "im2", "b9", "a2/x", "im02", "a2/y0"], key=natural_key)
    assert got == ["a2/x", "a2/y0", "a2/y1", "a10/x", "b9", "b10", "im02", "im2"]


def test_class_subfolders_labels_and_skipped_files(tmp_path, xrays):
    d = tmp_path / "classes"
    write_folder(d / "pneumonia", xrays[:3], "im_{}.png")
    write_folder(d / "normal", xrays[3:], "im_{}.png", depth=16)
    (d / "README.txt").write_text("labels are folder names")
    (d / "normal" / "meta.csv").write_text("a,b")
    (d / ".DS_Store").write_bytes(b"\x00")
    with pytest.warns(UserWarning) as caught:
        ds = load_dataset(d)
    assert [str(w.message) for w in caught] == [f"{d}: skipped 1 hidden files or folders (.DS_Store)",
                                                f"{d}: skipped 2 files that are not images (README.txt, normal/meta.csv)"]
    assert all(w.filename == __file__ for w in caught)                  # pointed at the caller
    assert isinstance(ds, Dataset)
    assert ds.names == [f"normal/im_{i}.png" for i in range(3)] + [f"pneumonia/im_{i}.png" for i in range(3)]
    assert ds.labels == ["normal"] * 3 + ["pneumonia"] * 3
    assert ds.skipped == {"not an image": 2, "hidden": 1} and ds.bit_depth == 16
    assert np.array_equal(ds.images[:, 0], ref8(np.concatenate([xrays[3:], xrays[:3]])))
    assert ds.notes == [str(w.message) for w in caught]                 # the same notices, kept with the set
    assert load_dataset(d / "normal", warn=False).labels is None


def test_folder_refusals(tmp_path, xrays):
    write_folder(tmp_path / "mix", xrays[:2])
    write_folder(tmp_path / "mix" / "cls", xrays[2:4])
    with pytest.raises(FscertError, match="both at its top level"):
        load_images(tmp_path / "mix")
    write_folder(tmp_path / "sizes", [xrays[0], xrays[1][:20, :20]])
    with pytest.raises(FscertError, match="differ in size: im0.png is 28×28, im1.png is 20×20"):
        load_images(tmp_path / "sizes")
    write_folder(tmp_path / "fake", xrays[:1])
    (tmp_path / "fake" / "im9.png").write_text("not a png")
    with pytest.raises(FscertError, match="named like an image"):
        load_images(tmp_path / "fake")
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "a.txt").write_text("x")
    with pytest.raises(FscertError, match="no PNG.*skipped 1"):
        load_images(tmp_path / "none")


def test_gray_stored_as_rgb_in_a_grayscale_folder(tmp_path, xrays):
    write_folder(tmp_path / "g", [xrays[0], np.repeat(xrays[1][..., None], 3, axis=-1)])
    x = load_images(tmp_path / "g")
    assert x.shape == (2, 1, 28, 28) and np.array_equal(x[:, 0], ref8(xrays[:2]))
    write_folder(tmp_path / "c", [xrays[0], colour(xrays[1])])
    with pytest.raises(FscertError, match="im1.png is colour, im0.png is grayscale"):
        load_images(tmp_path / "c")


def test_folder_limit_is_a_prefix(tmp_path, xrays):
    write_folder(tmp_path / "f", xrays)
    full = load_dataset(tmp_path / "f")
    part = load_dataset(tmp_path / "f", limit=4)
    assert np.array_equal(part.images, full.images[:4]) and part.names == full.names[:4]


# --------------------------------------------------------------------------- npz ambiguity, match_channels


def test_medmnist_npz_must_be_unambiguous_when_split_is_none(tmp_path, xrays):
    np.savez(tmp_path / "m.npz", train_images=xrays, val_images=xrays[:2], test_images=xrays[:3])
    with pytest.raises(FscertError, match="holds train_images, val_images, test_images: say which with --generated-split"):
        load_dataset(tmp_path / "m.npz", split=None, split_option="--generated-split")
    assert len(load_dataset(tmp_path / "m.npz", split="val").images) == 2
    assert len(load_images(tmp_path / "m.npz")) == 6                              # load_images: train, as before
    with pytest.raises(FscertError, match="--generated-split must be one of"):
        load_dataset(tmp_path / "m.npz", split="bogus", split_option="--generated-split")
    np.savez(tmp_path / "one.npz", test_images=xrays[:3])
    ds = load_dataset(tmp_path / "one.npz", split=None)
    assert len(ds.images) == 3 and "test_images" in ds.order
    np.savez(tmp_path / "i.npz", images=xrays, train_images=xrays[:1], val_images=xrays[:1])
    assert len(load_dataset(tmp_path / "i.npz", split=None).images) == 6


def test_match_channels(xrays):
    gray = ref8(xrays)[:, None]
    gray_rgb = np.repeat(gray, 3, axis=1)
    col = ref8(colour(xrays)).transpose(0, 3, 1, 2)
    assert np.array_equal(match_channels(gray_rgb, gray, "gen"), gray)
    assert match_channels(gray, gray, "gen") is gray
    assert np.array_equal(match_channels(gray, gray_rgb, "gen"), gray_rgb)
    with pytest.raises(FscertError, match="gen: colour images"):
        match_channels(col, gray, "gen")
    with pytest.raises(FscertError, match="gen: grayscale images cannot be compared with colour"):
        match_channels(gray, col, "gen")


def test_single_png_is_a_dataset_of_one(tmp_path, xrays):
    Image.fromarray(xrays[0]).save(tmp_path / "one.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_dataset(tmp_path / "one.png")
    assert ds.names == ["one.png"] and ds.native_hw == (28, 28) and ds.images.shape == (1, 1, 28, 28)
    assert np.array_equal(ds.images[0, 0], ref8(xrays[0]))


@pytest.mark.parametrize("name", ["a.png", "a.jpg", "a.tif", "a.dcm", "a.nii"])
def test_damaged_image_files_give_one_line(tmp_path, xrays, name):
    """Truncated or byte-flipped files of every image kind: read, or refused with one line."""
    good = tmp_path / ("good" + name[1:])
    if name == "a.dcm":
        shutil.copy(sample("CT_small.dcm"), good)
    elif name == "a.tif":
        tifffile.imwrite(good, xrays[0])
    elif name == "a.nii":
        nib = pytest.importorskip("nibabel")
        nib.save(nib.Nifti1Image(xrays[0], np.eye(4)), good)
    else:
        Image.fromarray(xrays[0]).save(good)
    data, rng = good.read_bytes(), np.random.default_rng(0)
    for trial in range(40):
        bad = bytearray(data[:rng.integers(1, len(data))] if trial % 2 else data)
        for i in rng.integers(0, len(bad), 0 if trial % 2 else 6):
            bad[i] = rng.integers(0, 256)
        (tmp_path / name).write_bytes(bytes(bad))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                x = load_images(tmp_path / name)
        except FscertError as e:
            assert "\n" not in str(e) and str(tmp_path / name) in str(e)
            continue
        assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
