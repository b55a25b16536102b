"""The local autoencoder (paper §4.1, Tab. 1–4; DESIGN §1, §3).

Any image H×W and latent grid h×w with integer pixel blocks p_h × p_w = H/h × W/w (28×28 with
7×7 cells of 4×4 px, 64×64 with 16×16 cells, 32×64 with 8×16 cells, 25×25 with 5×5 cells of
5×5 px; the paper's Tab. 1–4 are 32×32 with 8×8, 16×16 or 32×32 cells).

The encoder follows Tab. 1–4, generalised: two strided convolutions whose strides multiply to
p along each axis (p = 4: 2 and 2, p = 2: 2 and 1, p = 1: 1 and 1, exactly Tab. 1–4; p = 5:
5 and 1; p = 8: 4 and 2), a 1×1 convolution to M channels, two residual 1×1 blocks, and tanh
bounds the output. The decoder is **local**: residual 1×1 blocks, one R×R ``Unfold`` (the
only layer that mixes cells), then per-cell 1×1 layers and a depth-to-space step (PixelShuffle,
or its rectangular form when p_h ≠ p_w) that turns each cell into its p_h×p_w block of pixels,
and a per-pixel refiner. So every pixel depends only on the R×R latent cells around its own
cell: the receptive field is exactly R×R latent cells (proven by ``tests/test_autoencoder.py``,
square and rectangular shapes).

With ``transition=True`` (Tab. 1, Fig. 2) a 2×2 stride-2 transposed convolution first splits
each cell into 2×2 sub-cells; the Unfold then spans 2R−1 sub-cells, which is still exactly R×R
latent cells, and the sub-cells at the cell borders act as consistency-preserving transitions.
It needs even p_h and p_w.
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import check_config_keys, load_checkpoint, load_weights, save_checkpoint
from .errors import FscertError

MODEL_FORMAT = "fscert-autoencoder"
MODEL_VERSION = 1


@dataclass
class AEConfig:
    """The autoencoder's shape (Tab. 2 at an 8×8 latent: M = 7, R = 3): the defaults of `fscert train`.

    ``image_size`` / ``latent_size`` are the heights H and h; ``image_width`` / ``latent_width``
    the widths (None: square). Files saved before the widths existed load as square."""

    image_size: int = 32          # H (and W unless image_width)
    image_channels: int = 1
    latent_size: int = 8          # h (and w unless latent_width): 8, 16 or 32 at 32×32 (Tab. 2, 3, 4)
    latent_channels: int = 7      # M
    receptive_field: int = 3      # R (odd): the decoder sees R×R latent cells
    hidden: int = 256             # width of the per-cell 1×1 layers (1024 in the paper; 256: the
                                  # README's measured figures, tests/benchmarks/test_bench_training.py)
    transition: bool = False      # ConvT transition for patch consistency (Tab. 1)
    image_width: int | None = None   # W (None: = image_size)
    latent_width: int | None = None  # w (None: = latent_size)

    @classmethod
    def for_images(cls, image_shape: tuple[int, int, int], latent_hw: tuple[int, int] | None = None,
                   base: "AEConfig | None" = None) -> "AEConfig":
        """The config for images of C×H×W: ``base``'s other fields (M, R, hidden, transition),
        the latent grid ``latent_hw`` or, when None, cells of 4×4 pixels (H/4 × W/4: the paper's
        8×8 grid at 32×32, 7×7 at 28×28, 16×16 at 64×64). Validated."""
        c, hh, ww = (int(v) for v in image_shape)
        if latent_hw is None:
            if hh % 4 or ww % 4:
                raise FscertError(f"{hh}×{ww} images have no default latent grid (4×4-pixel cells need sides "
                                  "divisible by 4): give the grid (--latent-size h or hxw, dividing the image), "
                                  "or --pad / --resize H W")
            latent_hw = (hh // 4, ww // 4)
        h, w = (int(v) for v in latent_hw)
        b = base if base is not None else cls()
        return dataclasses.replace(b, image_channels=c, image_size=hh, image_width=None if ww == hh else ww,
                                   latent_size=h, latent_width=None if w == h else w).validate()

    @property
    def image_hw(self) -> tuple[int, int]:
        """(H, W) of the images."""
        return self.image_size, self.image_size if self.image_width is None else self.image_width

    @property
    def latent_hw(self) -> tuple[int, int]:
        """(h, w) of the latent grid."""
        return self.latent_size, self.latent_size if self.latent_width is None else self.latent_width

    @property
    def patch_hw(self) -> tuple[int, int]:
        """Pixels per latent cell (p_h, p_w)."""
        (hh, ww), (h, w) = self.image_hw, self.latent_hw
        return hh // h, ww // w

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """C×H×W of an image."""
        return (self.image_channels, *self.image_hw)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """M×h×w of a latent."""
        return (self.latent_channels, *self.latent_hw)

    def validate(self) -> "AEConfig":
        for name, v in (("image_size", self.image_size), ("image_width", self.image_width),
                        ("latent_size", self.latent_size), ("latent_width", self.latent_width)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise FscertError(f"{name} must be a positive integer, got {v!r}")
        if self.image_channels not in (1, 3):
            raise FscertError(f"image_channels must be 1 or 3, got {self.image_channels}")
        (hh, ww), (h, w) = self.image_hw, self.latent_hw
        if hh % h or ww % w:
            raise FscertError(f"a {hh}×{ww} image does not split into a {h}×{w} grid of equal pixel blocks "
                              f"({hh}/{h} and {ww}/{w} must be integers)")
        if not 1 <= self.latent_channels <= 16:
            raise FscertError(f"latent_channels must be in 1..16, got {self.latent_channels}")
        if self.receptive_field < 1 or self.receptive_field % 2 == 0:
            raise FscertError(f"receptive_field must be an odd number ≥ 1, got {self.receptive_field}")
        if self.hidden < 1:
            raise FscertError(f"hidden must be ≥ 1, got {self.hidden}")
        if self.transition and any(p % 2 for p in self.patch_hw):
            raise FscertError("the transition layer splits each cell into 2×2 sub-cells: it needs an even number of "
                              f"pixels per cell along each side, got {'×'.join(map(str, self.patch_hw))}")
        return self

    @property
    def patch_size(self) -> int:
        """Pixels per latent cell along each side (p) of square blocks (see :attr:`patch_hw`)."""
        ph, pw = self.patch_hw
        if ph != pw:
            raise ValueError(f"blocks are {ph}×{pw} pixels, not square: use patch_hw")
        return ph


def _strides(p: int) -> tuple[int, int]:
    """Strides of the encoder's two convolutions along an axis of p pixels per cell: s1·s2 = p,
    s2 the largest divisor of p not above √p (p = 4: 2, 2; p = 2: 2, 1; p = 1: 1, 1; Tab. 1–4)."""
    s2 = max(d for d in range(1, int(p ** 0.5) + 1) if p % d == 0)
    return p // s2, s2


def _conv_shape(s: int) -> tuple[int, int]:
    """(kernel, padding) of a stride-s convolution that maps n pixels to n/s: Tab. 1–4's
    (4, 1) at s = 2 and (3, 1) at s = 1; (2s, s/2) for even s, (s + 2, 1) for odd s."""
    return (2 * s, s // 2) if s % 2 == 0 else (s + 2, 1)


def depth_to_space(y_NDhw: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """N×(C·ph·pw)×h×w → N×C×(h·ph)×(w·pw): channel c·ph·pw + i·pw + j goes to pixel (i, j) of its
    cell's block (PixelShuffle's order; PixelShuffle itself when ph = pw)."""
    if ph == pw:
        return F.pixel_shuffle(y_NDhw, ph)
    n, d, h, w = y_NDhw.shape
    c = d // (ph * pw)
    return y_NDhw.view(n, c, ph, pw, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c, h * ph, w * pw)


class ResConv1x1(nn.Module):
    """y = Conv1x1(x) + x (the ResConv2d of Tab. 1–4)."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        return x + self.conv(x)


class Encoder(nn.Module):
    def __init__(self, cfg: AEConfig):
        super().__init__()
        c, m = cfg.image_channels, cfg.latent_channels
        (s1h, s2h), (s1w, s2w) = (_strides(p) for p in cfg.patch_hw)

        def conv(sh: int, sw: int) -> tuple:
            (kh, ph), (kw, pw) = _conv_shape(sh), _conv_shape(sw)
            return (kh, kw), (sh, sw), (ph, pw)

        first, second = conv(s1h, s1w), conv(s2h, s2w)
        self.net = nn.Sequential(
            nn.Conv2d(c, 32, *first), nn.LeakyReLU(0.01),
            nn.Conv2d(32, 64, *second), nn.LeakyReLU(0.01),
            nn.Conv2d(64, m, 1), ResConv1x1(m), ResConv1x1(m),
        )

    def forward(self, x_NCHW):
        return self.net(x_NCHW)      # pre-tanh latent, N×M×h×w


class LocalDecoder(nn.Module):
    def __init__(self, cfg: AEConfig):
        super().__init__()
        m, r, c = cfg.latent_channels, cfg.receptive_field, cfg.image_channels
        ph, pw = cfg.patch_hw
        self.pre = nn.Sequential(ResConv1x1(m), ResConv1x1(m))
        if cfg.transition:
            self.split = nn.ConvTranspose2d(m, m, 2, stride=2)        # each cell → 2×2 sub-cells
            k, self.pix = 2 * r - 1, (ph // 2, pw // 2)
        else:
            self.split = None
            k, self.pix = r, (ph, pw)
        self.unfold = nn.Unfold(k, padding=k // 2)                    # the only cross-cell layer
        self.cell = nn.Sequential(
            nn.Conv2d(m * k * k, cfg.hidden, 1), nn.LeakyReLU(0.01),
            nn.Conv2d(cfg.hidden, cfg.hidden, 1), nn.LeakyReLU(0.01),
            nn.Conv2d(cfg.hidden, c * self.pix[0] * self.pix[1], 1),
        )
        self.refine = nn.Sequential(nn.Conv2d(c, 32, 1), nn.LeakyReLU(0.01), nn.Conv2d(32, c, 1))

    def forward(self, z_NMhw):
        z = self.pre(z_NMhw)
        if self.split is not None:
            z = self.split(z)
        n, _, h, w = z.shape
        u_NDhw = self.unfold(z).view(n, -1, h, w)
        y = depth_to_space(self.cell(u_NDhw), *self.pix)               # → N×C×H×W
        return y + self.refine(y)                                      # unbounded; decode() clamps


class LocalAutoencoder(nn.Module):
    """FS-LAR autoencoder: ``encode`` gives ±1 latents, ``decode`` maps ±1 latents to images."""

    def __init__(self, config: AEConfig):
        super().__init__()
        self.config = config.validate()
        self.encoder = Encoder(config)
        self.decoder = LocalDecoder(config)

    def encode_continuous(self, x_NCHW: torch.Tensor) -> torch.Tensor:
        """tanh(e(x)) ∈ (−1, 1) (Eq. 2)."""
        return torch.tanh(self.encoder(x_NCHW))

    @torch.no_grad()
    def encode(self, x_NCHW: torch.Tensor) -> torch.Tensor:
        """Binary latents sign(tanh(e(x))) ∈ {−1, +1} (0 maps to +1), int8 N×M×h×w."""
        x_NCHW = torch.as_tensor(x_NCHW, dtype=torch.float32)
        return torch.where(self.encode_continuous(x_NCHW) >= 0, 1, -1).to(torch.int8)

    def decode_raw(self, z_NMhw: torch.Tensor) -> torch.Tensor:
        """Unclamped decoder output (what training fits: no saturating output non-linearity)."""
        return self.decoder(torch.as_tensor(z_NMhw).to(torch.float32))

    def decode(self, z_NMhw: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], N×C×H×W, from (±1 or continuous) latents."""
        return self.decode_raw(z_NMhw).clamp(0, 1)

    def forward(self, x_NCHW):
        return self.decode(self.encode_continuous(x_NCHW))


def to_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    x = torch.as_tensor(x)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


@torch.no_grad()
def decode_batched(model: LocalAutoencoder, z: np.ndarray, batch: int = 256, progress: bool = False) -> np.ndarray:
    """Decode int8 (K, M, h, w) latents in batches → uint8 (K, C, H, W)."""
    check_latent_shape(model.config, z.shape)
    model.eval()
    out = np.empty((len(z), *model.config.image_shape), np.uint8)
    from .progress import Progress

    for i in Progress(range(0, len(z), batch), desc="decode", unit="batch", show=progress, leave=False):
        out[i:i + batch] = to_uint8(model.decode(torch.from_numpy(np.asarray(z[i:i + batch], np.float32))))
    return out


@torch.no_grad()
def encode_batched(model: LocalAutoencoder, x_NCHW: np.ndarray, batch: int = 256) -> np.ndarray:
    """Encode float32 images in batches → int8 ±1 latents (N, M, h, w)."""
    check_image_shape(model.config, x_NCHW.shape)
    model.eval()
    return np.concatenate([model.encode(torch.from_numpy(x_NCHW[i:i + batch])).numpy()
                           for i in range(0, len(x_NCHW), batch)])


def check_latent_shape(cfg: AEConfig, shape: tuple) -> None:
    want = cfg.latent_shape
    if tuple(shape[1:]) != want:
        raise FscertError(f"latents of shape {tuple(shape[1:])} do not fit the model, which decodes M×H×W = {want}")


def check_image_shape(cfg: AEConfig, shape: tuple) -> None:
    want = cfg.image_shape
    if tuple(shape[1:]) != want:
        raise FscertError(f"images of shape {tuple(shape[1:])} do not fit the model, which expects C×H×W = {want}")


def save_model(model: LocalAutoencoder, path: str | Path, extra: dict | None = None) -> None:
    """Save state dict + config (+ JSON-able extras) atomically; loadable with weights_only=True."""
    save_checkpoint(path, MODEL_FORMAT, MODEL_VERSION, asdict(model.config), model, extra=extra or {})


def load_model(path: str | Path, map_location: str = "cpu") -> LocalAutoencoder:
    """Load a model saved by :func:`save_model`. Untrusted files: ``weights_only=True``, so a
    checkpoint that carries pickled code is refused without running it."""
    blob = load_checkpoint(path, MODEL_FORMAT, MODEL_VERSION, "fscert autoencoder")
    check_config_keys(path, blob["config"], {f.name for f in dataclasses.fields(AEConfig)}, "model")
    model = load_weights(path, LocalAutoencoder(AEConfig(**blob["config"])), blob["state_dict"])
    model.extra = blob.get("extra", {})
    return model.to(map_location)


def model_sha256(model: LocalAutoencoder) -> str:
    from .hashing import sha256_state_dict

    return sha256_state_dict(model.state_dict())
