"""`fscert verify`: recompute a certificate from its inputs; exit 0 only when everything matches."""
from __future__ import annotations

import sys

import click

from fscert.certificate_files import verify_files

from .common import progress_enabled, quiet_option


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
    diffs, checked, cert = verify_files(cert_path, model_path=model_path, train_spec=train_spec,
                                        latents_path=latents_path, train_latents_path=train_latents_path,
                                        progress=progress_enabled())
    if diffs:
        for d in diffs:
            click.echo(f"DIFFERS {d}")
        sys.exit(1)
    click.echo(f"verified: {', '.join(checked)} ({cert.attrs.get('reachable_count')} reachable latents)")


COMMANDS = [verify]
