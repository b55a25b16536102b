"""Decoded pixel blocks of the local decoder, and the certificate's canonical images (DESIGN §3, §6.6).

The decoder is local (paper §4.1; ``tests/test_autoencoder.py`` proves it): the p_h×p_w pixel
block of latent cell (y, x) depends only on the R×R window of cells around it. So the
image of a latent is the stitching of its blocks, and a block can be decoded from its
window alone: the in-grid part of the window, decoded as a small latent (the decoder's
Unfold pads the grid border with zeros, and a crop's border does the same).

**Canonical images.** A float32 decoder gives slightly different values for the same
window depending on the batch and the grid it is decoded in (measured: up to 6e-8), and a
value near a rounding boundary then changes its uint8 pixel. Certificates therefore decode
in **float64** (:func:`decode_exact`), where those differences are ~1e-16 and a pixel can
only differ between two evaluations when its value lies within ~1e-13 of a rounding
boundary. :class:`BlockDecoder` decodes windows in float64 too and records, for every pixel
within ``TIE`` of a boundary, both roundings; searches bound such pixels by the smaller of
the two errors, so they stay admissible (``ties`` counts them; it is 0 in practice).
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from .enumeration.kernels import dedupe_rows

#: a float64 pixel value within this distance (in 1/255 units) of a rounding boundary is a tie
TIE = 1e-7


def float64_model(model):
    """A float64 copy of ``model`` for canonical decoding (the original is untouched)."""
    if getattr(model, "_fscert_float64", False):
        return model
    m = copy.deepcopy(model).double().eval()
    m._fscert_float64 = True
    return m


@torch.no_grad()
def decode_exact(model, z: np.ndarray, batch: int = 256, progress: bool = False) -> np.ndarray:
    """The certificate's canonical images: int8 ±1 latents (K, M, h, w) → uint8 (K, C, H, W),
    decoded in float64, clamped to [0, 1], ×255, rounded half to even."""
    from .progress import Progress

    from .autoencoder import check_latent_shape

    check_latent_shape(model.config, z.shape)
    m64 = float64_model(model)
    c = model.config
    out = np.empty((len(z), *c.image_shape), np.uint8)
    for i in Progress(range(0, len(z), batch), desc="decode", unit="batch", show=progress, leave=False):
        y = m64.decoder(torch.from_numpy(np.asarray(z[i:i + batch], np.float64))).clamp(0, 1) * 255
        out[i:i + batch] = y.round().to(torch.uint8).numpy()
    return out


def decode_canonical(model, z: np.ndarray, batch: int = 256, progress: bool = False) -> np.ndarray:
    """The same images as :func:`decode_exact`, faster where latents share windows: each distinct
    (position, R×R window) is decoded once in float64 and the blocks are stitched."""
    from .progress import Progress

    from .autoencoder import check_latent_shape

    check_latent_shape(model.config, z.shape)
    if model.config.transition:                   # its centre-cell path is not faster than the whole decode
        return decode_exact(model, z, batch=batch, progress=progress)
    z = np.asarray(z, np.int8)
    m, h, w = z.shape[1:]
    dec = BlockDecoder(model, (m, h, w), (model.config.receptive_field - 1) // 2, 64 // m)
    c = model.config
    out = np.empty((len(z), *c.image_shape), np.uint8)
    step = max(batch, 4096)
    for lo in Progress(range(0, len(z), step), desc="decode", unit="chunk", show=progress, leave=False):
        out[lo:lo + step] = dec.images(z[lo:lo + step])
    return out


def generated_values(images_u8: np.ndarray) -> np.ndarray:
    """Pixel values of decoded images as the metrics see them: float32(u8) / 255 (float32)."""
    return np.asarray(images_u8).astype(np.float32) / 255.0


class BlockDecoder:
    """Blocks decoded once per distinct (position, window), looked up by packed window key.

    ``lookup(pos, keys)`` returns a block id per key row (decoding the new ones in one batch);
    ``u8[pos]`` (n, P) holds each block's canonical pixels (P = C·p_h·p_w, channel-major) and
    ``alt[pos]`` the other rounding where a pixel is a tie (else the same value).
    """

    def __init__(self, model, latent_shape: tuple[int, int, int], radius: int, per_word: int):
        self.model = float64_model(model)
        self.m, self.h, self.w = latent_shape
        self.r, self.per_word = radius, per_word
        cfg = model.config
        self.ph, self.pw = cfg.patch_hw
        self.c = cfg.image_channels
        self.index: dict[tuple[int, int], dict[bytes, int]] = {}
        self.u8: dict[tuple[int, int], np.ndarray] = {}
        self.alt: dict[tuple[int, int], np.ndarray] = {}
        self.ties = 0
        self.decoded = 0

    def crop(self, y: int, x: int) -> tuple[int, int, int, int]:
        r = self.r
        return max(0, y - r), min(self.h, y + r + 1), max(0, x - r), min(self.w, x + r + 1)

    def window_ids(self, latents: np.ndarray, positions: list[tuple[int, int]]) -> dict[tuple[int, int], np.ndarray]:
        """Block id of each latent's window at each position (decoding the windows not seen yet)."""
        from .patches import token_to_index, tokens

        m, h, w = self.m, self.h, self.w
        tid = token_to_index(tokens(latents)).astype(np.uint64)
        pw = self.per_word
        kw = max(1, -(-((2 * self.r + 1) ** 2) // pw))
        keys = {}
        for y, x in positions:
            k = np.zeros((len(latents), kw), np.uint64)
            cells = [yy * w + xx for yy in range(max(0, y - self.r), min(h, y + self.r + 1))
                     for xx in range(max(0, x - self.r), min(w, x + self.r + 1))]
            for j, c in enumerate(cells):
                k[:, j // pw] |= tid[:, c] << np.uint64((j % pw) * m)
            keys[(y, x)] = k
        return self.lookup_many(keys)

    def images(self, latents: np.ndarray) -> np.ndarray:
        """Canonical images (uint8, K×C×H×W) stitched from blocks decoded once per distinct window.

        A block without a tie pixel rounds exactly as the whole-latent float64 decode
        (:func:`decode_exact`) does; latents that use a block with a tie are decoded whole
        instead, so the result always equals ``decode_exact``."""
        h, w, ph, pw, c = self.h, self.w, self.ph, self.pw, self.c
        k = len(latents)
        out = np.empty((k, c, h * ph, w * pw), np.uint8)
        tied = np.zeros(k, bool)
        all_ids = self.window_ids(latents, [(y, x) for y in range(h) for x in range(w)])
        for (y, x), ids in all_ids.items():
            u = self.u8[(y, x)][ids]
            tied |= (u != self.alt[(y, x)][ids]).any(1)
            out[:, :, y * ph:(y + 1) * ph, x * pw:(x + 1) * pw] = u.reshape(k, c, ph, pw)
        if tied.any():
            out[tied] = decode_exact(self.model, latents[tied])
        return out

    def lookup(self, pos: tuple[int, int], keys_NK: np.ndarray) -> np.ndarray:
        return self.lookup_many({pos: keys_NK})[pos]

    def lookup_many(self, keys: dict[tuple[int, int], np.ndarray]) -> dict[tuple[int, int], np.ndarray]:
        """Block ids for the key rows of several positions; new windows of every position are
        decoded together, one batch per crop geometry (shape and centre), not one per position."""
        out, pending = {}, {}
        for pos, keys_NK in keys.items():
            keys_NK = np.ascontiguousarray(keys_NK, np.uint64)
            uniq, inv = dedupe_rows(keys_NK)
            idx = self.index.setdefault(pos, {})
            ids = np.empty(len(uniq), np.int64)
            missing = []
            for j, u in enumerate(uniq):
                got = idx.get(u.tobytes())
                if got is None:
                    missing.append(j)
                else:
                    ids[j] = got
            out[pos] = (ids, inv.ravel())
            if missing:
                pending[pos] = (uniq[missing], missing)
        groups: dict[tuple, list[tuple[int, int]]] = {}
        for pos in pending:
            y0, y1, x0, x1 = self.crop(*pos)
            groups.setdefault((y1 - y0, x1 - x0, pos[0] - y0, pos[1] - x0), []).append(pos)
        for geom, plist in groups.items():
            blocks = self._decode(geom, np.concatenate([pending[q][0] for q in plist]))
            lo = 0
            for pos in plist:
                new_keys, missing = pending[pos]
                u8, alt = blocks[0][lo:lo + len(missing)], blocks[1][lo:lo + len(missing)]
                lo += len(missing)
                idx = self.index[pos]
                start = len(idx)
                for k, j in enumerate(missing):
                    idx[new_keys[k].tobytes()] = start + k
                    out[pos][0][j] = start + k
                if pos in self.u8:
                    u8, alt = np.concatenate([self.u8[pos], u8]), np.concatenate([self.alt[pos], alt])
                self.u8[pos], self.alt[pos] = u8, alt
        return {pos: ids[inv] for pos, (ids, inv) in out.items()}

    def _unpack(self, ch: int, cw: int, keys_NK: np.ndarray) -> np.ndarray:
        """Window keys → float64 crop latents (N, M, ch, cw)."""
        m = self.m
        j = np.arange(ch * cw)
        tok = (keys_NK[:, j // self.per_word] >> ((j % self.per_word) * m).astype(np.uint64)) & np.uint64((1 << m) - 1)
        bits = (tok.astype(np.int64)[:, :, None] >> np.arange(m - 1, -1, -1)) & 1          # N, q, M
        z = (2.0 * bits - 1.0).reshape(len(keys_NK), ch, cw, m).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(z)

    def _centre_block(self, z: torch.Tensor, cy: int, cx: int) -> torch.Tensor:
        """The decoder (:class:`fscert.autoencoder.LocalDecoder`) evaluated at one cell of a crop:
        the cell-mixing Unfold is taken everywhere, the per-cell layers only at the centre cell
        (its sub-cells with the transition layer); the same operations as the whole decoder."""
        from .autoencoder import depth_to_space

        dec = self.model.decoder
        h = dec.pre(z)
        f = 1
        if dec.split is None:                       # the centre's Unfold column is its zero-padded window
            r = self.r
            n, mch, ch, cw = h.shape
            win = h.new_zeros((n, mch, 2 * r + 1, 2 * r + 1))
            win[:, :, r - cy:r - cy + ch, r - cx:r - cx + cw] = h
            y = depth_to_space(dec.cell(win.reshape(n, -1, 1, 1)), *dec.pix)
            return y + dec.refine(y)
        if dec.split is not None:
            h = dec.split(h)
            f = 2
        n, _, hh, ww = h.shape
        u = dec.unfold(h).view(n, -1, hh, ww)[:, :, cy * f:(cy + 1) * f, cx * f:(cx + 1) * f]
        y = depth_to_space(dec.cell(u), *dec.pix)
        return y + dec.refine(y)

    @torch.no_grad()
    def _decode(self, geom: tuple[int, int, int, int], keys_NK: np.ndarray, batch: int = 4096
                ) -> tuple[np.ndarray, np.ndarray]:
        """Decode crops of one geometry (ch, cw, centre y, centre x): canonical and tie-alternative pixels."""
        ch, cw, cy, cx = geom
        us, alts = [], []
        for lo in range(0, len(keys_NK), batch):
            z = torch.from_numpy(self._unpack(ch, cw, keys_NK[lo:lo + batch]))
            out = self._centre_block(z, cy, cx)
            v = (out.clamp(0, 1) * 255).reshape(len(z), -1).numpy()
            u = np.round(v)                                        # numpy rounds half to even, as torch
            tie = np.abs(v - np.floor(v) - 0.5) < TIE
            alt = np.where(tie, np.where(u == np.floor(v), np.ceil(v), np.floor(v)), u)
            self.ties += int(tie.sum())
            us.append(u.astype(np.uint8))
            alts.append(alt.astype(np.uint8))
        self.decoded += len(keys_NK)
        return np.concatenate(us), np.concatenate(alts)


def block_of(image_CHW: np.ndarray, y: int, x: int, ph: int, pw: int) -> np.ndarray:
    """The ph×pw block of cell (y, x), flattened channel-major (P = C·ph·pw)."""
    return np.ascontiguousarray(image_CHW[:, y * ph:(y + 1) * ph, x * pw:(x + 1) * pw]).reshape(-1)


class BlockErrors:
    """Squared error of decoded blocks to one training image, per position, grown lazily.

    The per-pixel error of uint8 value a against training value t is
    (float64(float32(a)/255) − float64(t))², exactly the terms the metrics sum
    (``metrics.nearest.exact_sqdist``); a block's error is their float64 sum, the smaller
    rounding taken at ties.

    ``region`` (bool H×W over the canvas, :meth:`fscert.geometry.Geometry.mask`): only its
    pixels are compared; a pixel outside it contributes an error of exactly 0, so a block's
    error is the error of its pixels inside the region (0 for a block wholly outside) and the
    sum over blocks is the squared error over the region (the comparison geometry).
    """

    def __init__(self, dec: BlockDecoder, target_CHW: np.ndarray, region: np.ndarray | None = None):
        self.dec = dec
        self.target = np.asarray(target_CHW, np.float32)
        self.region = None if region is None else np.broadcast_to(np.asarray(region, bool), self.target.shape)
        gen = generated_values(np.arange(256, dtype=np.uint8)).astype(np.float64)        # (256,)
        self.table: dict[tuple[int, int], np.ndarray] = {}
        self.sse: dict[tuple[int, int], np.ndarray] = {}
        self._gen = gen

    def _pixel_table(self, pos: tuple[int, int]) -> np.ndarray:
        t = self.table.get(pos)
        if t is None:
            tb = block_of(self.target, pos[0], pos[1], self.dec.ph, self.dec.pw).astype(np.float64)     # (P,)
            t = (self._gen[None, :] - tb[:, None]) ** 2                                  # (P, 256)
            if self.region is not None:
                t[~block_of(self.region, pos[0], pos[1], self.dec.ph, self.dec.pw)] = 0.0              # not compared
            self.table[pos] = t
        return t

    def of(self, pos: tuple[int, int], ids: np.ndarray) -> np.ndarray:
        have = self.sse.get(pos, np.zeros(0))
        n = len(self.dec.u8.get(pos, ()))
        if len(have) < n:
            tab = self._pixel_table(pos)
            u = self.dec.u8[pos][len(have):n].astype(np.int64)
            a = self.dec.alt[pos][len(have):n].astype(np.int64)
            cols = np.arange(tab.shape[0])
            e = np.minimum(tab[cols, u], tab[cols, a])                                   # (n_new, P)
            have = np.concatenate([have, e.sum(1)])
            self.sse[pos] = have
        return have[ids]
