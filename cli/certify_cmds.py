"""`fscert draw`, `fscert finetune`, `fscert enumerate`, `fscert verify` (DESIGN §6, paper A.3.6)."""
from __future__ import annotations

import sys

import click

from fscert.defaults import DEFAULTS
from fscert.errors import FscertError, check_output_path

from fscert.resources import Plan, gib_to_bytes, training_step

from .common import (OutputPath, batch_size_option, echo_err, force_option, gamma_option, kappa_check, limit_option,
                     max_memory_option, option, out_option, positive_int, progress_enabled, quiet_option, seed_option,
                     split_option, tau_check)


def _json_attr(v):
    import json

    try:
        return json.loads(v) if isinstance(v, str) else v
    except ValueError:
        return v


@click.command("draw")
@click.option("--latents", "latents_path", required=True, type=click.Path(dir_okay=False),
              help="Training latents (HDF5 from `fscert encode`).")
@click.option("--trials", default=DEFAULTS["trials"], show_default=True, type=int, callback=positive_int,
              help="Rademacher samples per training latent (T).")
@click.option("--tau", default=DEFAULTS["tau"], show_default=True, type=float, callback=tau_check, help="Noise scale τ.")
@click.option("--kappa", default=DEFAULTS["kappa"], show_default=True, type=float, callback=kappa_check,
              help="Triangular sharpness κ.")
@seed_option()
@out_option("Output empirical set E (HDF5).")
@max_memory_option("the draws")
@force_option("an existing output")
@quiet_option(expose_value=False)
def draw(latents_path, trials, tau, kappa, seed, out, max_memory, force):
    """Draw the empirical set E: T Rademacher samples of every training latent, each bit flipped
    with probability q(τ, κ) (DESIGN §6.1). One row per distinct (sample, source image) with its
    multiplicity (`counts`) and source image (`source_index`)."""
    from fscert.empirical import DrawConfig, draw_attrs, draw_samples, plan_draws
    from fscert.certificate import latents_sha256
    from fscert.latents import read_latents, write_latents

    check_output_path(out, force)
    src = read_latents(latents_path)
    cfg = DrawConfig(trials=trials, tau=tau, kappa=kappa, seed=seed).validate()
    plan_draws(src, cfg).check(gib_to_bytes(max_memory), echo_err)
    E = draw_samples(src, cfg)
    attrs = draw_attrs(cfg, src.attrs, latents_sha256(src.latents, src.counts))
    write_latents(out, E.latents, attrs, counts=E.counts, source_index=E.source_index)
    click.echo(f"{len(E.latents)} distinct samples ({int(E.counts.sum())} draws, q = {cfg.flip_prob:.6g}) → {out}")


@click.command("finetune")
@click.argument("model_path", metavar="MODEL", type=click.Path(dir_okay=False))
@click.argument("empirical_path", metavar="E.h5", type=click.Path(dir_okay=False))
@option("--train", "data", required=True, metavar="DATA", hidden_aliases=("--data",),
        help="Training images (file, folder or bundled name) that E was drawn from.")
@limit_option("Use only the first N training images [default: the number recorded in E, else all].")
@split_option()
@out_option("Fine-tuned model (.pt).")
@click.option("--epochs", default=DEFAULTS["finetune_epochs"], show_default=True, type=int, callback=positive_int,
              help="Fine-tuning epochs.")
@batch_size_option(DEFAULTS["batch_size"], "Latents per training step.")
@click.option("--lr", default=DEFAULTS["lr"], show_default=True, type=float, help="Adam learning rate.")
@seed_option()
@max_memory_option("fine-tuning")
@force_option("an existing output")
@quiet_option(expose_value=False)
def finetune(model_path, empirical_path, data, limit, split, out, epochs, batch_size, lr, seed, max_memory, force):
    """Fine-tune the decoder on E (each sample's target: its source image, weighted by its
    count) so that it has seen every latent it will decode (DESIGN §6.2, paper A.3.6)."""
    from fscert.autoencoder import load_model, save_model
    from fscert.data import data_sha256, load_images
    from fscert.empirical import finetune_targets
    from fscert.hashing import sha256_state_dict
    from fscert.latents import read_latents
    from fscert.training import finetune_decoder

    check_output_path(out, force)
    if not lr > 0:
        raise FscertError(f"--lr must be positive, got {lr}")
    model = load_model(model_path)
    E = read_latents(empirical_path)
    if limit is None and "limit" in E.attrs:
        limit = int(E.attrs["limit"])
    images = load_images(data, limit=limit, split=split)
    targets = finetune_targets(E.source_index, images, str(empirical_path))
    Plan().add(training_step(len(targets), model, batch_size, decoder_epochs=epochs, what="fine-tune")).check(
        gib_to_bytes(max_memory), echo_err)
    hist = finetune_decoder(model, E.latents, targets, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                            counts=E.counts, progress=progress_enabled())
    extra = dict(getattr(model, "extra", {}) or {})
    extra.update(finetuned_on=str(empirical_path), finetune_epochs=epochs, finetune_seed=seed,
                 finetune_data_sha256=data_sha256(images),
                 finetune_history=[{k: v for k, v in row.items() if k != "seconds"} for row in hist])
    save_model(model, out, extra=extra)
    last = hist[-1] if hist else {}
    psnr = last.get("psnr")
    click.echo(f"fine-tuned on {len(E.latents)} samples for {epochs} epochs"
               + (f", PSNR {psnr:.2f} dB" if isinstance(psnr, (int, float)) else "")
               + f" → {out} (weights sha256 {sha256_state_dict(model.state_dict())[:12]})")


@click.command("enumerate")
@click.option("--latents", "latents_path", required=True, type=click.Path(dir_okay=False),
              help="Empirical set E (from `fscert draw`); with --full-support, the source latents.")
@click.option("--rho", default=DEFAULTS["rho_certify"], show_default=True, type=int, help="Observation range ρ (≥ 0).")
@out_option("Certificate (HDF5).")
@click.option("--count-only", is_flag=True, help="Only the exact number of reachable latents.")
@click.option("--max-images", default=DEFAULTS["max_images"], show_default=True, type=int, callback=positive_int,
              help="List at most this many latents. Above it, with --model and --train, every training image's "
                   "near-copies are searched without listing (exact figures or certified intervals); without "
                   "them, refuse (the exact count is still reported).")
@click.option("--no-recon-search", is_flag=True,
              help="When searching without listing: skip the second search, for near-copies of the decoder's "
                   "reconstructions of the training images (it takes about as long as the first); their figures "
                   "are then recorded as unknown.")
@click.option("--near-copies-only", is_flag=True,
              help="Search near-copies without listing every image, whatever the count (needs --model, --train).")
@max_memory_option("listing, decoding and auditing")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run from OUT.partial.h5 (same inputs and options): the result is "
                   "identical to an uninterrupted run.")
@click.option("--graph", "graph_path", type=OutputPath(dir_okay=False),
              help="Export the compatible-patch graph (GraphML).")
@click.option("--full-support", is_flag=True, help="List all 2^(M·H·W) latents under the direct sampler (≤ 24 bits).")
@click.option("--tau", type=float, callback=tau_check, help="τ of the direct sampler (--full-support).")
@click.option("--kappa", type=float, callback=kappa_check, help="κ of the direct sampler (--full-support).")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="Decoder to decode every listed latent.")
@click.option("--train", "train_spec", metavar="DATA",
              help="Training images for the memorization metrics (needs --model).")
@limit_option("Use only the first N training images [default: the number recorded in E, else all].")
@split_option()
@click.option("--train-latents", "train_latents_path", type=click.Path(dir_okay=False),
              help="The training images' own latents (the file `fscert encode` wrote, that E was drawn from): "
                   "records the decoder's reconstruction PSNR and the near-copies of its reconstructions "
                   "(without it they are recorded as unknown).")
@gamma_option()
@batch_size_option(256, "Images decoded at once.", hidden_aliases=("--batch",), name="batch")
@force_option("existing outputs (--out and --graph)")
@quiet_option(expose_value=False)
def enumerate_cmd(latents_path, rho, out, count_only, max_images, no_recon_search, near_copies_only, max_memory,
                  resume, graph_path, full_support, tau, kappa, model_path, train_spec, limit, split,
                  train_latents_path, gammas, batch, force):
    """Certify: list every latent the generator can produce with its exact probability
    (DESIGN §6), decode each one and audit it against the training set (DESIGN §7), comparing
    images at their stored size (28×28 images: without the border the model's canvas adds)."""
    from fscert.certificate import write_certificate
    from fscert.certify import CertifyConfig, Inputs, certify
    from fscert.latents import read_latents

    check_output_path(out, force)
    if rho < 0:
        raise FscertError(f"--rho must be ≥ 0, got {rho}")
    if graph_path:
        check_output_path(graph_path, force)
    if train_spec and not model_path:
        raise FscertError("--train needs --model (the images to compare are decoded by the model)")
    if near_copies_only and not (model_path and train_spec):
        raise FscertError("--near-copies-only needs --model and --train (the near-copies of which images?)")
    if train_latents_path and not (model_path and train_spec):
        raise FscertError("--train-latents needs --model and --train (their reconstructions are compared with them)")
    E = read_latents(latents_path)
    if limit is None and train_spec and "limit" in E.attrs:
        limit = int(E.attrs["limit"])
    cfg = CertifyConfig(rho=rho, count_only=count_only, max_images=max_images, full_support=full_support,
                        tau=tau, kappa=kappa, gammas=tuple(gammas) or tuple(DEFAULTS["gammas"]),
                        train=train_spec, train_limit=limit, train_split=split, batch=batch,
                        near_copies_only=near_copies_only, recon_search=not no_recon_search,
                        max_memory=gib_to_bytes(max_memory)).validate()
    model = train = geometry = train_latents = None
    if model_path:
        from fscert.autoencoder import load_model

        model = load_model(model_path)
    if train_spec:
        from fscert.geometry import load_compared

        train, geometry = load_compared(train_spec, limit=limit, split=split)
    if train_latents_path:
        train_latents = read_latents(train_latents_path).latents
    from pathlib import Path

    partial = Path(str(out) + ".partial.h5")
    if not resume:
        partial.unlink(missing_ok=True)
    elif not partial.exists():
        click.echo(f"no checkpoint {partial} to resume from; starting from the beginning", err=True)
    try:
        cert = certify(Inputs(E, model, train, train_latents=train_latents, geometry=geometry), cfg,
                       progress=progress_enabled(), checkpoint=partial, log=echo_err)
    except KeyboardInterrupt:
        if partial.exists():
            echo_err(f"the listing and the images decoded so far are kept in {partial}; "
                     "rerun with --resume to continue")
        raise
    if graph_path:
        from fscert.enumeration import write_graphml

        write_graphml(graph_path, E.latents, rho, E.counts)
    digest = write_certificate(out, cert)
    partial.unlink(missing_ok=True)
    a = cert.attrs
    click.echo(f"{a['reachable_count']} reachable latents ({a['mode']}, ρ = {rho}), {a['listed_count']} listed"
               + (f", near-copies searched without listing ({len(cert.extra.get('near_latents', ()))} listed)"
                  if a.get("verdict_scope") == "searched" else "") + ", "
               f"dead-end mass {a['dead_end_mass']:.6g} → {out} (content {digest[:12]})")
    mass = _json_attr(a.get("memorization_mass"))
    if isinstance(mass, dict):
        from fscert.certify import has_figures, verdict_words

        for g, v in mass.items():
            if has_figures(a):
                click.echo(f"  γ = {g}: memorization mass {v:.6g}, UIR {_json_attr(a['uir'])[g]:.4g}, "
                           f"M-UIR {_json_attr(a['m_uir'])[g]:.4g}")
            else:
                click.echo(f"  γ = {g}: {verdict_words(a, float(g))}")


@click.command("verify")
@click.argument("cert_path", metavar="CERT.h5", type=click.Path(dir_okay=False))
@click.option("--model", "model_path", type=click.Path(dir_okay=False), help="Model the certificate claims.")
@click.option("--train", "train_spec", metavar="DATA", help="Training images the certificate claims.")
@click.option("--latents", "latents_path", type=click.Path(dir_okay=False), help="Input latents: re-enumerate.")
@click.option("--train-latents", "train_latents_path", type=click.Path(dir_okay=False),
              help="The training images' own latents: must equal those the certificate's fidelity was computed from.")
@quiet_option(expose_value=False)
def verify(cert_path, model_path, train_spec, latents_path, train_latents_path):
    """Recompute the certificate's content hash and, given its inputs, their fingerprints and the
    whole certificate (metrics in its comparison geometry, decoder fidelity, near-copies of the
    reconstructions); exit 0 only when everything matches (one line per difference otherwise)."""
    from fscert.certificate import attr_json, read_certificate
    from fscert.certify import CertifyConfig, verify as verify_cert
    from fscert.latents import read_latents

    cert = read_certificate(cert_path)
    cfg = CertifyConfig.from_json(attr_json(cert, "config", {}) or {})
    E = read_latents(latents_path) if latents_path else None
    model = train = geometry = None
    if model_path:
        from fscert.autoencoder import load_model

        model = load_model(model_path)
    if train_spec:
        from fscert.geometry import load_compared

        train, geometry = load_compared(train_spec, limit=cfg.train_limit, split=cfg.train_split)
    tz = read_latents(train_latents_path).latents if train_latents_path else None
    diffs = verify_cert(cert, E, model, train, progress=progress_enabled(), train_latents=tz, geometry=geometry)
    if diffs:
        for d in diffs:
            click.echo(f"DIFFERS {d}")
        sys.exit(1)
    checked = ["content hash"] + (["latents"] if E is not None else []) + (["model"] if model is not None else []) \
        + (["training set"] if train is not None else []) + (["training latents"] if tz is not None else [])
    click.echo(f"verified: {', '.join(checked)} ({cert.attrs.get('reachable_count')} reachable latents)")


COMMANDS = [draw, finetune, enumerate_cmd, verify]
