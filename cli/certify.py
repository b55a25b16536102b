"""`fscert certify`: the main job in one command (fscert/certify.py)."""
from __future__ import annotations

import click

from fscert.certify import CertifyConfig, run_certify, summary_lines
from fscert.cluster import client_for
from fscert.data import SPLITS

from .common import (KAPPA, TAU, Console, FloatRange, IntRange, batch_size_option, cluster_options, fit_options,
                     force_option, gamma_option, json_option, latent_grid_option, limit_option, lr_option, make_fit,
                     max_memory_option, out_option, quiet_option, seed_option, split_option, write_json)

#: the job's defaults: the components' own, with the certify preset (fscert.certify)
J = CertifyConfig()


@click.command()
@click.argument("data", default=J.data)
@out_option("Output folder.", folder=True)
@split_option(J.split)
@limit_option("Train on (and audit against) the first N images of DATA.", default=J.n_train,
              hidden_aliases=("--n-train",))
@latent_grid_option()
@fit_options()
@click.option("--channels", "-M", "latent_channels", type=IntRange(1, 16), default=J.latent_channels,
              show_default=True, help="Latent channels M.")
@click.option("--receptive-field", "-R", type=IntRange(1, 15), default=J.receptive_field, show_default=True)
@click.option("--hidden", type=IntRange(1, 8192), default=J.hidden, show_default=True)
@click.option("--transition/--no-transition", default=J.transition, show_default=True)
# same shape as train's decorators, not the same logic: own defaults and help (shared ones: common.py)
@click.option("--epochs", type=IntRange(min=0), default=J.epochs, show_default=True, help="Phase-1 epochs (Eq. 2).")
@click.option("--finetune-epochs", type=IntRange(min=0), default=J.finetune_epochs, show_default=True,
              help="Phase-2 epochs (Eq. 4).")
@click.option("--draw-finetune-epochs", type=IntRange(min=1), default=J.draw_finetune_epochs, show_default=True,
              help="Epochs of decoder fine-tuning on the drawn samples, at half the learning rate (A.3.6).")
@batch_size_option(J.batch_size, "Images per training step.")
@lr_option(J.lr)
@click.option("--train-tau", type=TAU, default=J.train_tau, show_default=True, help="Training noise τ (Eq. 2).")
@click.option("--train-kappa", type=KAPPA, default=J.train_kappa, show_default=True)
@click.option("--beta0", type=FloatRange(min=0, symbol="β₀"), default=J.beta0, show_default=True)
@click.option("--trials", type=IntRange(min=1), default=J.trials, show_default=True,
              help="Rademacher samples per training latent (T).")
@click.option("--tau", type=TAU, default=J.tau, show_default=True, help="Draw noise τ.")
@click.option("--kappa", type=KAPPA, default=J.kappa, show_default=True, help="Draw noise κ.")
@click.option("--rho", type=IntRange(min=0), default=J.rho, show_default=True, help="Observation range ρ.")
@gamma_option(J.gammas)
@click.option("--max-images", type=IntRange(min=1), default=J.max_images, show_default=True,
              help="List at most this many images; above it the certificate holds the exact count only.")
@click.option("--near-copies-only", is_flag=True, default=J.near_copies_only,
              help="Search every training image's near-copies without listing every image, whatever the count.")
@click.option("--recon-search/--no-recon-search", default=J.recon_search, show_default=True,
              help="Above --max-images: also search the near-copies of the decoder's reconstructions (about doubles "
                   "the search time); off: those figures are recorded as unknown.")
@click.option("--test", "test", metavar="DATA", default=J.test,
              help="Held-out real images the generator never saw: the baseline every near-copy figure is read "
                   "against (how many of them are within γ dB of a training image), and the C_T test set.")
@click.option("--test-split", type=click.Choice(SPLITS), default=J.test_split, show_default=True,
              help="Split of --test to read from MedMNIST-style .npz files.")
@click.option("--test-limit", type=IntRange(min=1), default=J.test_limit, metavar="N",
              help="Use only the first N held-out images.")
# same shape as train's decorators, not the same logic: own defaults and help (shared ones: common.py)
@max_memory_option("training, listing, decoding and auditing")
@seed_option(J.seed)
@cluster_options("the count, the decoding, the near-copy searches and the nearest-neighbour searches")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run from OUT.partial (same options and data): finished stages are "
                   "reused and the result is identical to an uninterrupted run.")
@force_option("an existing output folder")
@json_option("the summary (as OUT/summary.json)")
@quiet_option()
def certify(data, out, force, resume, json_out, quiet, limit, max_memory, scheduler, workers, pad, resize, latent_hw,
            **options):
    """Certify an FS-LAR generator trained on DATA, end to end.

    train → encode → draw → fine-tune → enumerate → audit → report. Defaults are the paper's
    certifiable setting (64 MNIST images, one latent channel, 4×4-pixel cells, 10 trials);
    images keep their stored size (MNIST: 28×28, a 7×7 latent) unless --pad (the paper's
    32×32 canvas, an 8×8 latent) or --resize is given. Writes OUT/cert.h5, the
    models, the latents, OUT/audit.json, OUT/summary.json and the HTML report OUT/report/.
    """
    con = Console(quiet, json_out)
    job = CertifyConfig(data=data, n_train=limit, max_memory_gib=max_memory, fit=make_fit(pad, resize),
                        latent_hw=latent_hw, **options)
    with client_for(scheduler, workers) as client:
        res = run_certify(job, out, force=force, progress=con.progress, resume=resume, client=client)
    for line in summary_lines(res.summary):
        con.result(line)
    if json_out:
        write_json(json_out, res.summary)


COMMANDS = [certify]
