"""`fscert nfig train` and `fscert nfig sample`: the NFIG peer generator (DESIGN.md §8)."""
from __future__ import annotations

from pathlib import Path

import click

from fscert.data import load_dataset
from fscert.fit import onto
from fscert.fileio import check_output_path
from fscert.nfig import NFIGConfig, load_labels, load_nfig, sample_nfig, save_nfig, train_nfig, write_samples
from fscert.sample import SampleConfig

from .common import (FscertGroup, IntRange, batch_size_option, echo_err, force_option, limit_option, option,
                     out_option, param_default, progress_enabled, quiet_option, seed_option, split_option)

ORDERS = ("frequency", "scale")


@click.group(cls=FscertGroup)
def nfig() -> None:
    """NFIG (next-frequency image generation), a network generator audited from its samples.

    `fscert nfig train DATA --out nfig.pt` trains the FR-VAE tokenizer and then the
    class-conditional next-frequency transformer; `fscert nfig sample nfig.pt -n 1000 --out
    samples.npz` writes images for `fscert audit --generated samples.npz`.
    """


@nfig.command("train")
@click.argument("data", required=False, default="mnist")
@out_option("Model file to write (.pt).")
@click.option("--epochs", type=IntRange(min=1), default=None,
              help=f"Epochs for both stages [default: {NFIGConfig.vae_epochs} for the FR-VAE, "
                   f"{NFIGConfig.gpt_epochs} for the transformer].")
@click.option("--vae-epochs", type=IntRange(min=1), default=None, help="FR-VAE epochs (overrides --epochs).")
@click.option("--order", type=click.Choice(ORDERS), default=NFIGConfig.order, show_default=True,
              help="Residual order: NFIG's frequency bands, or VAR's plain next-scale residuals (ablation).")
@limit_option()
@split_option(param_default(load_dataset, "split"))
@click.option("--unconditional", is_flag=True, help="Ignore labels stored with the data (one class).")
@seed_option(NFIGConfig.seed)
@force_option("an existing output")
@quiet_option(expose_value=False)
def train_cmd(data: str, out: str, epochs: int | None, vae_epochs: int | None, order: str, limit: int | None,
              split: str, unconditional: bool, seed: int, force: bool) -> None:
    """Train NFIG on DATA (default: the bundled mnist): FR-VAE, then the transformer."""
    out_p = check_output_path(out, force)
    ds = load_dataset(data, limit=limit, split=split)
    fit = onto(ds.native_hw, (32, 32))                                # NFIG works at 32×32
    x = fit.apply(ds.images)
    if not fit.native:
        echo_err(f"images: {fit.words(ds.native_hw)} (NFIG works at 32×32)")
    labels = None if unconditional else load_labels(data, len(x), split=split, limit=limit)
    kw: dict = {"order": order, "seed": seed, "in_channels": int(x.shape[1])}
    if labels is None:
        kw["num_classes"] = 1
    if epochs is not None:
        kw["vae_epochs"] = kw["gpt_epochs"] = epochs
    if vae_epochs is not None:
        kw["vae_epochs"] = vae_epochs
    cfg = NFIGConfig(**kw)
    echo_err(f"nfig: {len(x)} images of {x.shape[1]}×32×32, "
             f"{'unconditional' if labels is None else f'{int(labels.max()) + 1} classes'}, order={order}, "
             f"{cfg.vae_epochs} FR-VAE + {cfg.gpt_epochs} transformer epochs")
    model, stats = train_nfig(x, labels, cfg, progress=progress_enabled())
    save_nfig(model, out_p)
    click.echo(f"wrote {out_p}: FR-VAE reconstruction PSNR {stats['recon_psnr']:.2f} dB "
               f"(codebook usage {100 * stats['codebook_usage']:.0f}%), transformer CE {stats['gpt_ce_loss']:.3f}, "
               f"trained in {stats['train_seconds']:.0f} s (FR-VAE {stats['vae_seconds']:.0f} s, "
               f"transformer {stats['gpt_seconds']:.0f} s)")


@nfig.command("sample")
@click.argument("model", type=click.Path(dir_okay=False))
@option("-n", "--n-samples", "n", type=IntRange(min=1), default=SampleConfig.n_samples, show_default=True,
        help="Number of images (as `fscert sample -n`).")
@click.option("--class", "cls", type=IntRange(min=0), default=None,
              help="Generate only this class (default: classes in turn).")
@click.option("--cfg", type=float, default=param_default(sample_nfig, "cfg"), show_default=True,
              help="Classifier-free guidance strength at the last scale (ramped from 0; 0 = off).")
@click.option("--top-k", type=IntRange(min=0), default=param_default(sample_nfig, "top_k"), show_default=True,
              help="Top-k filter (0 = off).")
@click.option("--top-p", type=float, default=param_default(sample_nfig, "top_p"), show_default=True,
              help="Nucleus filter in (0, 1) (0 or 1 = off).")
@seed_option(param_default(sample_nfig, "seed"))
@batch_size_option(param_default(sample_nfig, "batch_size"), "Images generated at once.")
@out_option("Output .npz (keys images uint8 N×C×32×32, labels); a PNG grid goes next to it.")
@force_option()
@quiet_option(expose_value=False)
def sample_cmd(model: str, n: int, cls: int | None, cfg: float, top_k: int, top_p: float, seed: int,
               batch_size: int, out: str, force: bool) -> None:
    """Sample images from a trained NFIG MODEL into an npz (plus a PNG grid)."""
    out_p = check_output_path(out, force)
    png_p = check_output_path(out_p.with_suffix(".png") if out_p.suffix != ".png" else Path(f"{out_p}.grid.png"), force)
    m = load_nfig(model)
    images, labels = sample_nfig(m, n, seed=seed, cfg=cfg, top_k=top_k, top_p=top_p, classes=cls,
                                 batch_size=batch_size, progress=progress_enabled(), return_labels=True)
    write_samples(images, labels, out_p, png_p)
    click.echo(f"wrote {out_p} ({n} images, {images.shape[1]}×32×32 uint8) and {png_p}")


COMMANDS = [nfig]
