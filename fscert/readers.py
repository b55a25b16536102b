"""Per-format readers of image files (PNG, JPEG, TIFF, DICOM, NIfTI), each read faithfully or
refused with one line (array files: :mod:`fscert.array_files`).

An image file is decoded into :class:`Decoded` — its stored values and the value range
``lo..hi`` that is shown as 0..1 — and :func:`normalise` maps it to float32 in [0, 1] as
``(v − lo) / (hi − lo)`` (``(hi − v) / (hi − lo)`` for inverted photometry), computed in
float64 and cast once to float32. Guarantees:

* Integer pixels are scaled by the true maximum of their stored depth: 8-bit by 255, 16-bit
  by 65535, a 12-bit TIFF by 4095. So an 8-bit value v and its 16-bit copy v·257 give
  identical float32 pixels, and distinct stored values (≤ 16 bits) give distinct pixels.
* PNG: 1/2/4/8/16-bit grayscale, 8-bit RGB, palette, 8-bit grayscale+alpha and RGBA (alpha
  only when every pixel is opaque). The bit depth is read from the IHDR chunk; 16-bit colour
  PNGs are refused (Pillow would read them as 8 bits per channel). JPEG: grayscale and RGB.
* TIFF (tifffile): one image series, unsigned integers of 1..16 bits or floats in [0, 1],
  grayscale (MINISWHITE inverted) or RGB; a stack of pages gives one image per page.
* DICOM (pydicom): MONOCHROME1, MONOCHROME2 or RGB, BitsStored ≤ 16. For grayscale the
  stored value s becomes v = RescaleSlope·s + RescaleIntercept and ``lo..hi`` is the image of
  the full stored range (0..2^B−1 unsigned, −2^(B−1)..2^(B−1)−1 signed, B = BitsStored);
  MONOCHROME1 is inverted (high values dark). Window/VOI LUTs and Pixel Padding Value are
  not applied (display choices, not pixel values). Refused: other photometric
  interpretations (YBR, palette: their conversion is not exact), a Modality LUT Sequence,
  per-frame rescale values that differ, compressed pixel data without an installed decoder.
* NIfTI (nibabel): a 2-D image or each z-slice of a 3-D volume (``vol.nii.gz[z=3]``), pixels
  in stored voxel order (row = first axis i, column = second axis j; no reorientation);
  integers of ≤ 16 bits with scl_slope/scl_inter treated as DICOM's rescale, floats in [0, 1].
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import FscertError

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".nii.gz")
KINDS = "PNG, JPEG, TIFF, DICOM or NIfTI"


class NotAnImage(Exception):
    """A readable file that holds no image (a DICOMDIR, a structured report): skipped in folders."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Decoded:
    """The stored values of one image file, before normalisation to [0, 1]."""

    pixels: np.ndarray      # K×C×H×W: the K images the file holds, C = 1 or 3
    lo: float               # the value shown as 0 (as 1 when ``invert``)
    hi: float               # the value shown as 1 (as 0 when ``invert``)
    bits: int | None        # stored bits per sample; None for float pixels
    invert: bool = False    # MONOCHROME1, MINISWHITE: high values are dark
    modality: bool = False  # rescaled DICOM/NIfTI values: a folder maps them through one range
    axis: str = "frame"     # images after the first are named NAME[axis=k]


def sniff(head: bytes, name: str) -> str | None:
    """The image kind that a file's first 348 bytes show ('png', 'jpeg', 'tiff', 'dicom', 'nifti'), else None."""
    if head[128:132] == b"DICM":
        return "dicom"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[344:348] == b"n+1\x00" or head[4:8] == b"n+2\x00":
        return "nifti"
    if head[:2] == b"\x1f\x8b" and name.lower().endswith(".nii.gz"):
        return "nifti"
    return None


def normalise(d: Decoded, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """float32 K×C×H×W in [0, 1]: ``(v − lo)/(hi − lo)`` (inverted: ``(hi − v)/(hi − lo)``) in float64."""
    lo, hi = (d.lo if lo is None else lo), (d.hi if hi is None else hi)
    v = d.pixels.astype(np.float64)
    u = (hi - v) / (hi - lo) if d.invert else (v - lo) / (hi - lo)
    return u.astype(np.float32)


def read_image(path: Path, kind: str) -> Decoded:
    """Decode one image file of a sniffed ``kind``; FscertError (one line) for what cannot be read faithfully."""
    reader = {"png": _read_pil, "jpeg": _read_pil, "tiff": _read_tiff, "dicom": _read_dicom, "nifti": _read_nifti}[kind]
    try:
        with _quiet():
            return reader(path)
    except (FscertError, NotAnImage):
        raise
    except Exception as e:                          # corrupt or truncated files, unsupported encodings
        msg = " ".join(f"{type(e).__name__}: {e}".split())
        msg = msg if len(msg) <= 300 else msg[:299] + "…"
        raise FscertError(f"cannot read {kind.upper()} image {path}: {msg}") from None


@contextlib.contextmanager
def _quiet():
    """Silence the libraries' warnings and log lines (VR notes, header fixes): fscert reports one line."""
    loggers = [logging.getLogger(name) for name in ("tifffile", "nibabel.global", "pydicom")]
    saved = [lg.disabled for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for lg in loggers:
                lg.disabled = True
            yield
        finally:
            for lg, was in zip(loggers, saved):
                lg.disabled = was


def _to_kchw(a: np.ndarray, channels_last: bool) -> np.ndarray:
    """H×W, H×W×C (or K×… of either) → K×C×H×W."""
    if channels_last:
        a = a[None] if a.ndim == 3 else a
        return a.transpose(0, 3, 1, 2)
    return a[None, None] if a.ndim == 2 else a[:, None]


def _opaque(a: np.ndarray, path: Path, full: int) -> np.ndarray:
    """Drop an alpha channel (last axis) that is opaque everywhere; refuse real transparency."""
    if (a[..., -1] != full).any():
        raise FscertError(f"{path}: has transparent pixels; fscert reads images with an alpha channel only when it is opaque")
    return a[..., :-1]


# --------------------------------------------------------------------------- PNG, JPEG


def _read_pil(path: Path) -> Decoded:
    from PIL import Image

    depth = ctype = None
    with path.open("rb") as f:
        head = f.read(26)
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        if len(head) < 26 or head[12:16] != b"IHDR":
            raise FscertError(f"{path}: PNG without an IHDR chunk")
        depth, ctype = head[24], head[25]
        if depth == 16 and ctype != 0:
            names = {2: "RGB", 4: "grayscale+alpha", 6: "RGBA"}
            raise FscertError(f"{path}: 16-bit {names.get(ctype, f'colour type {ctype}')} PNG: Pillow reads it "
                              "as 8 bits per channel, so fscert refuses it (save it as 16-bit TIFF)")
    with Image.open(path) as im:
        if getattr(im, "n_frames", 1) > 1:
            raise FscertError(f"{path}: holds {im.n_frames} frames (animated); fscert reads single images")
        mode = im.mode
        if mode == "1":
            return Decoded(_to_kchw(np.asarray(im.convert("L")), False), 0, 255, 1)
        if mode == "L":
            return Decoded(_to_kchw(np.asarray(im), False), 0, 255, depth if depth in (1, 2, 4) else 8)
        if mode.startswith("I;16") or (mode == "I" and depth == 16):
            a = np.asarray(im).astype(np.uint16)
            return Decoded(_to_kchw(a, False), 0, 65535, 16)
        if mode == "RGB":
            return Decoded(_to_kchw(np.asarray(im), True), 0, 255, 8)
        if mode == "LA":
            return Decoded(_to_kchw(_opaque(np.asarray(im), path, 255)[..., 0], False), 0, 255, 8)
        if mode in ("RGBA", "P", "PA"):
            return Decoded(_to_kchw(_opaque(np.asarray(im.convert("RGBA")), path, 255), True), 0, 255, 8)
    raise FscertError(f"{path}: pixel mode {mode} is not read (grayscale, RGB, palette and opaque alpha are)")


# --------------------------------------------------------------------------- TIFF


def _read_tiff(path: Path) -> Decoded:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if len(tif.series) != 1:
            raise FscertError(f"{path}: TIFF holds {len(tif.series)} image series; fscert reads files with one")
        s = tif.series[0]
        page = s.keyframe
        photo = getattr(page.photometric, "name", str(page.photometric))
        fmt = getattr(page.sampleformat, "name", str(page.sampleformat))
        bps = int(page.bitspersample)
        spp = int(page.samplesperpixel)
        axes = s.axes
        a = s.asarray()
    if photo not in ("MINISBLACK", "MINISWHITE", "RGB"):
        raise FscertError(f"{path}: TIFF photometric {photo} is not read (grayscale and RGB are)")
    if spp != (3 if photo == "RGB" else 1):
        raise FscertError(f"{path}: TIFF with {spp} samples per pixel ({photo}); fscert reads 1 (grayscale) or 3 (RGB)")
    if "S" in axes:                                     # samples (RGB) to the last axis
        a = np.moveaxis(a, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    lead = axes[:-3] if axes.endswith("YXS") else axes[:-2]
    if not (axes.endswith("YX") or axes.endswith("YXS")) or len(lead) > 1 or lead not in "IQZT":
        raise FscertError(f"{path}: TIFF axes {s.axes} are not read (one image or one stack of pages: YX, YXS, IYX…)")
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if fmt == "IEEEFP" or a.dtype.kind == "f":
        if photo == "MINISWHITE":
            raise FscertError(f"{path}: float TIFF with MINISWHITE photometric is not read")
        return Decoded(_to_kchw(a, photo == "RGB"), 0.0, 1.0, None, axis="page")
    if a.dtype.kind != "u" or not 1 <= bps <= 16:
        raise FscertError(f"{path}: TIFF samples are {bps}-bit {fmt.lower()}; fscert reads unsigned integers of 1..16 bits or floats")
    top = (1 << bps) - 1
    if a.max(initial=0) > top:
        raise FscertError(f"{path}: TIFF values exceed the {bps}-bit maximum {top}")
    return Decoded(_to_kchw(a, photo == "RGB"), 0, top, bps, invert=photo == "MINISWHITE", axis="page")


# --------------------------------------------------------------------------- DICOM


def _dicom_rescale(ds) -> tuple[float, float]:
    """(slope, intercept): top level, or one shared/per-frame Pixel Value Transformation for all frames."""
    found = set()
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        found.add((ds.get("RescaleSlope"), ds.get("RescaleIntercept")))
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for item in ds.get(group, []):
            for t in item.get("PixelValueTransformationSequence", []):
                found.add((t.get("RescaleSlope"), t.get("RescaleIntercept")))
    values = {(float(1 if m is None else m), float(0 if b is None else b)) for m, b in found}
    if len(values) > 1:
        raise FscertError(f"rescale slope/intercept differ between frames ({len(values)} pairs); fscert refuses this file")
    return values.pop() if values else (1.0, 0.0)


def _dicom_meta(ds, path: Path) -> tuple[str, int, int, int, float, float]:
    """(photometric, bits stored, smallest and largest stored value, slope, intercept), validated."""
    pi = str(ds.get("PhotometricInterpretation", "")).strip()
    spp = int(ds.get("SamplesPerPixel", 1))
    if pi not in ("MONOCHROME1", "MONOCHROME2", "RGB") or spp != (3 if pi == "RGB" else 1):
        raise FscertError(f"{path}: DICOM photometric interpretation {pi or 'missing'} with {spp} samples is not read "
                          "(MONOCHROME1, MONOCHROME2 and RGB are; converting YBR or palette colour is not exact)")
    bits, signed = int(ds.BitsStored), int(ds.get("PixelRepresentation", 0)) == 1
    if not 1 <= bits <= 16:
        raise FscertError(f"{path}: DICOM BitsStored {bits}; fscert reads 1..16 bits per sample faithfully")
    if "ModalityLUTSequence" in ds:
        raise FscertError(f"{path}: DICOM Modality LUT Sequence (a non-linear rescale) is not supported")
    try:
        slope, intercept = _dicom_rescale(ds)
    except FscertError as e:
        raise FscertError(f"{path}: {e}") from None
    if not (np.isfinite(slope) and np.isfinite(intercept)) or slope == 0:
        raise FscertError(f"{path}: DICOM RescaleSlope {slope:g} / RescaleIntercept {intercept:g} are unusable")
    if pi == "RGB" and (slope, intercept) != (1.0, 0.0):
        raise FscertError(f"{path}: RGB DICOM with a rescale slope/intercept is not read")
    smin, smax = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return pi, bits, smin, smax, slope, intercept


def _read_dicom(path: Path) -> Decoded:
    import pydicom
    from pydicom.pixels import get_decoder

    ds = pydicom.dcmread(path)
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise FscertError(f"{path}: DICOM float pixel data is not read (integer Pixel Data is)")
        raise NotAnImage("DICOM without pixel data")
    pi, bits, smin, smax, slope, intercept = _dicom_meta(ds, path)
    ts = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
    if ts is not None and ts.is_compressed:
        try:
            available = get_decoder(ts).is_available
        except NotImplementedError:
            available = False
        if not available:
            raise FscertError(f"{path}: DICOM pixel data is compressed ({ts.name}) and no decoder for it is "
                              "installed (e.g. pylibjpeg or gdcm); fscert refuses it")
    s = np.asarray(ds.pixel_array)
    if int(ds.get("NumberOfFrames", 1) or 1) == 1:
        s = s[None]
    if s.size and (s.min() < smin or s.max() > smax):
        raise FscertError(f"{path}: DICOM stored values {s.min()}..{s.max()} exceed the BitsStored range {smin}..{smax}")
    v = s.astype(np.float64) * slope + intercept
    lo, hi = sorted((smin * slope + intercept, smax * slope + intercept))
    return Decoded(_to_kchw(v, pi == "RGB"), lo, hi, bits, invert=pi == "MONOCHROME1", modality=pi != "RGB")


def value_range(path: Path, kind: str) -> tuple[float, float] | None:
    """``(lo, hi)`` of a rescaled DICOM/NIfTI file from its header alone (pixels not decoded), as
    :func:`read_image` would give it; None for other files and for headers that are not read."""
    try:
        with _quiet():
            if kind == "dicom":
                import pydicom

                ds = pydicom.dcmread(path, stop_before_pixels=True)
                if "Rows" not in ds:
                    return None
                pi, _, smin, smax, slope, intercept = _dicom_meta(ds, path)
                return None if pi == "RGB" else tuple(sorted((smin * slope + intercept, smax * slope + intercept)))
            if kind == "nifti":
                return _nifti_meta(path)[2]
    except Exception:
        return None
    return None


# --------------------------------------------------------------------------- NIfTI


def _nifti_meta(path: Path):
    """(image, shape as 2-D or 3-D, (lo, hi) or None for floats, slope, intercept), validated."""
    import nibabel as nib

    img = nib.load(path)
    shape = tuple(int(n) for n in img.shape)
    if len(shape) > 3 and all(n == 1 for n in shape[3:]):
        shape = shape[:3]
    if len(shape) not in (2, 3):
        raise FscertError(f"{path}: NIfTI of shape {img.shape}; fscert reads a 2-D image or the z-slices of a 3-D volume")
    dtype = np.dtype(img.get_data_dtype())
    slope, inter = img.header.get_slope_inter()
    slope, inter = (1.0 if slope is None else float(slope)), (0.0 if inter is None else float(inter))
    if dtype.kind == "f":
        return img, shape, None, slope, inter
    if dtype.kind not in "ui" or dtype.itemsize > 2:
        raise FscertError(f"{path}: NIfTI data type {dtype}; fscert reads integers of up to 16 bits or floats")
    info = np.iinfo(dtype)
    return img, shape, tuple(sorted((info.min * slope + inter, info.max * slope + inter))), slope, inter


def _read_nifti(path: Path) -> Decoded:
    img, shape, rng, slope, inter = _nifti_meta(path)
    a = np.asarray(img.dataobj.get_unscaled()).reshape(shape + (1,) * (3 - len(shape)))
    v = a.transpose(2, 0, 1)[:, None].astype(np.float64) * slope + inter   # K×1×I×J: rows = axis i, columns = j
    if rng is None:
        return Decoded(v, 0.0, 1.0, None, axis="z")
    return Decoded(v, rng[0], rng[1], np.dtype(img.get_data_dtype()).itemsize * 8, modality=True, axis="z")
