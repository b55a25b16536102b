"""Fig. 10 (A.3.1, Eq. 27–28): the patch-consistency difference map M, without / with the transition layer."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..autoencoder import decode_batched, encode_batched
from ..consistency import CENTRE_ROW, consistency_map
from .common import TINY_AE, AESettings, Sizes, as_float, mean_psnr, mnist, train_ae
from .plotting import pyplot, save_figure

M = 7                   # latent channels (8×8 latent, R = 3)
DEGENERATE_DB = 12.0    # below this recon PSNR a decoder outputs (nearly) one image for every latent
#: the four maps: (transition layer, shared centre row) → name
VARIANTS = {(False, True): "plain_shared_centre", (False, False): "plain_eq27_printed",
            (True, True): "transition_shared_centre", (True, False): "transition_eq27_printed"}
PLOT_ORDER = ("plain_shared_centre", "transition_shared_centre", "plain_eq27_printed", "transition_eq27_printed")


@dataclass(frozen=True)
class ConsistencySettings:
    ae: AESettings
    pairs: int                  # pairs (image i, image i + pairs)


SIZES = Sizes(full=ConsistencySettings(AESettings(n_images=256, hidden=256, epochs=25, finetune_epochs=5), 32),
              quick=ConsistencySettings(AESettings(n_images=32, hidden=32, epochs=2, finetune_epochs=1), 8),
              tiny=ConsistencySettings(TINY_AE, 8))


def exp_consistency(out: Path, seed: int = 0, quick: bool = False, tiny: bool = False) -> dict:
    """Fig. 10 (A.3.1, Eq. 27–28): the patch-consistency difference map M.

    CPU settings: two 8×8, M = 7 models (R = 3) trained on 256 MNIST images for 25 + 5 epochs,
    without and with the transition layer (``AEConfig(transition=True)``, Tab. 1); 32 pairs
    (image i, image i + 32). Each column of M is one pair's |X₊⁻ − X₋⁺| summed over image
    columns, rows = the 32 image rows; the centre latent row 3 covers image rows 12..15.
    The centre row is shared by both stitchings (z⁻'s row 3; see
    :func:`fscert.consistency.consistency_map`); Eq. 27 as printed (centre from the upper
    part's source) is reported too.
    Quick: 32 images, 2 + 1 epochs, hidden 32, 8 pairs. Tiny: the tests' autoencoder (16 images), 8 pairs.

    Paper: a prominent dark line at the centre of the difference maps (CIFAR-10, CelebA,
    MNIST), showing that the stitched patches are consistent.
    """
    s = SIZES.pick(quick, tiny)
    x = mnist(s.ae)
    maps, stats, secs_total = {}, {}, 0.0
    for transition in (False, True):
        model, _, secs = train_ae(x, s.ae, M, seed, transition=transition)
        secs_total += secs
        z = encode_batched(model, x)
        zm, zp = z[:s.pairs], z[s.pairs:2 * s.pairs]
        p = model.config.patch_size
        centre_rows = slice(p * CENTRE_ROW, p * (CENTRE_ROW + 1))            # image rows 12..15
        recon_psnr = mean_psnr(as_float(decode_batched(model, z)), x)
        for shared in (True, False):
            key = VARIANTS[transition, shared]
            maps[key] = m = consistency_map(model, zm, zp, shared_centre=shared)
            prof = m.mean(axis=1)
            centre = prof[centre_rows].mean()
            rest = np.delete(prof, centre_rows).mean()
            stats[key] = {"row_profile": prof, "centre_rows_mean": float(centre), "other_rows_mean": float(rest),
                          "centre_over_other": float(centre / rest) if rest > 0 else None,
                          "recon_psnr_db": recon_psnr}
    plot_maps(maps, stats, out / "consistency.png")
    res = {
        "settings": {"data": "mnist", "n_images": s.ae.n_images, "latent": [M, 8, 8], "epochs": s.ae.epochs,
                     "finetune_epochs": s.ae.finetune_epochs, "hidden": s.ae.hidden, "pairs": s.pairs,
                     "centre_latent_row": CENTRE_ROW, "centre_image_rows": [12, 15]},
        "paper": "Fig. 10: a prominent dark line at the centre of the difference maps (patch consistency)",
        "stats": stats, "train_seconds": secs_total,
    }
    bad = sorted({k.split("_")[0] for k, v in stats.items() if v["recon_psnr_db"] < DEGENERATE_DB})
    if bad:      # a decoder that outputs (nearly) one image for every latent makes D ≈ 0 everywhere
        res["degenerate_models"] = bad
    res["summary"] = [f"{k}: centre rows {v['centre_rows_mean']:.2f} vs other rows {v['other_rows_mean']:.2f} "
                      f"(ratio {_ratio(v)}), recon {v['recon_psnr_db']:.1f} dB" for k, v in stats.items()]
    if bad:
        res["summary"].append(f"warning: {', '.join(bad)} model(s) did not train (recon < 12 dB): their maps are "
                              "near zero everywhere and say nothing about consistency")
    return res


def _ratio(stat: dict) -> str:
    """centre/other as text; "n/a" where the other rows are all zero (a degenerate decoder)."""
    r = stat["centre_over_other"]
    return "n/a" if r is None else f"{r:.2f}"


def plot_maps(maps: dict[str, np.ndarray], stats: dict[str, dict], path: Path) -> None:
    """Fig. 10: the four maps M side by side, the centre latent row's image rows marked in red."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    for ax, k in zip(axes, PLOT_ORDER):
        ax.imshow(maps[k], cmap="gray", aspect="auto")
        ax.set_title(f"{k.replace('_', ' ')}\ncentre/other {_ratio(stats[k])}", fontsize=8)
        ax.set_xlabel("pair")
        ax.set_ylabel("image row")
        ax.axhline(11.5, color="r", lw=0.5)
        ax.axhline(15.5, color="r", lw=0.5)
    fig.suptitle("Fig. 10 (CPU): M = concat Σ_col |X₊⁻ − X₋⁺| (red: centre latent row)", fontsize=9)
    save_figure(fig, path)
