"""The paper's certification experiments on an empirical generator (A.3.6, Fig. 15 and Fig. 19).

* :func:`trials_curve` — Fig. 15: for T = 1..10 trials, how many latents the empirical
  generator can produce (exact count), how many are training latents, and how many decoded
  images are new. The paper reports 69 images (64 training, 5 new) at T = 1 and over 400 at
  T = 10 for 64 MNIST images with a 1×8×8 latent.
* :func:`coverage_curve` — Fig. 19: how much of an enumerated set (its members and its
  probability mass) repeated sampling reaches after 640, 6,400 and 64,000 draws.
* :func:`empirical_sampler` — ancestral sampling of the empirical distribution P_E (DESIGN
  §6.3), restarting at dead ends (DESIGN §6.4): the generator the certificate describes.

Guarantees: counts are the exact counts of :mod:`fscert.enumeration.count`; the sampler draws
from exactly the distribution the listing's ``prob`` describes (tested against it), and the
same seed gives the same draws.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

from ..latents import LatentSet
from ..patches import index_to_token
from .count import forward
from .listing import list_from_tables
from .tables import build_tables

Decoder = Callable[[np.ndarray, int], np.ndarray]      # (latents int8 K×M×H×W, trials) → uint8 images
Sampler = Callable[[int, int], np.ndarray]             # (n, seed) → latents int8 n×M×H×W


def trials_curve(latents: np.ndarray, rho: int, tau: float, kappa: float, trials: Iterable[int] = range(1, 11),
                 seed: int = 0, counts: np.ndarray | None = None, decoder: Decoder | None = None,
                 train_images: np.ndarray | None = None, gamma: float = 30.0,
                 max_images: int | None = 100_000, progress: bool = False) -> list[dict]:
    """Fig. 15. For each T: draw E with T trials (same seed, so E(T) ⊂ E(T+1)), then

    * ``reachable`` — exact number of reachable latents (Python int);
    * ``listed`` — latents listed (0 when ``reachable`` exceeds ``max_images``);
    * ``training_copies`` — listed latents equal to one of the training latents ``latents``;
    * ``new`` — listed − training_copies;
    * ``empirical_copies`` — listed latents that are samples of E themselves (the paper's
      "64 of these images are training images" at T = 1: after fine-tuning, each sample
      decodes to its source image); ``stitched`` = listed − empirical_copies;
    * ``unique`` — with ``decoder``: listed images that are not copies. Given
      ``train_images`` (float [0, 1]): PSNR to the nearest training image < γ (UIR's rule);
      otherwise: images differing from every decoded training latent. None without a decoder.
    * ``distinct_images`` — distinct decoded images (None without a decoder);
    * ``dead_end_mass``, ``empirical_rows`` (distinct samples in E).

    ``decoder(z, T)`` gets the trial count so that a decoder fine-tuned on E(T) can be used.
    """
    from ..empirical import DrawConfig, draw_samples    # imports torch (~1 s); only this curve draws E

    z_train = np.asarray(latents, np.int8)
    train_keys = {row.tobytes() for row in z_train}
    out = []
    for t in trials:
        E = draw_samples(_as_set(z_train, counts), DrawConfig(trials=int(t), tau=tau, kappa=kappa, seed=seed))
        tables = build_tables(E.latents, rho, E.counts)
        res = forward(tables, progress=progress)
        row: dict = {"trials": int(t), "reachable": res.count, "listed": 0, "training_copies": None, "new": None,
                     "empirical_copies": None, "stitched": None,
                     "unique": None, "distinct_images": None, "dead_end_mass": res.dead_end_mass,
                     "empirical_rows": int(len(E.latents))}
        if max_images is None or res.count <= max_images:
            lst = list_from_tables(tables, res.count, progress=progress)
            copies = int(sum(z.tobytes() in train_keys for z in lst.latents))
            e_keys = {z.tobytes() for z in E.latents}
            in_e = int(sum(z.tobytes() in e_keys for z in lst.latents))
            row.update(listed=lst.count, training_copies=copies, new=lst.count - copies,
                       empirical_copies=in_e, stitched=lst.count - in_e)
            if decoder is not None and lst.count:
                imgs = np.asarray(decoder(lst.latents, int(t)))
                row["distinct_images"] = int(len(np.unique(imgs.reshape(len(imgs), -1), axis=0)))
                if train_images is not None:
                    from ..metrics import nearest_train       # imports torch (~1 s)

                    _, psnr = nearest_train(imgs.reshape(len(imgs), -1).astype(np.float32) / 255.0,
                                            np.asarray(train_images, np.float32).reshape(len(train_images), -1))
                    row["unique"] = int((psnr < gamma).sum())
                else:
                    ref = {im.tobytes() for im in np.asarray(decoder(z_train, int(t)))}
                    row["unique"] = int(sum(im.tobytes() not in ref for im in imgs))
        out.append(row)
    return out


def _as_set(z: np.ndarray, counts: np.ndarray | None) -> LatentSet:
    return LatentSet(z, counts=counts)


def empirical_sampler(latents: np.ndarray, rho: int, counts: np.ndarray | None = None) -> Sampler:
    """Ancestral sampler of P_E (DESIGN §6.3): cell by cell, draw the token from the empirical
    conditional of the current context; a sample whose context never occurs in E is a dead end
    and is drawn again (DESIGN §6.4). Returns ``sample(n, seed) → int8 (n, M, H, W)``."""
    tables = build_tables(latents, rho, counts)
    m, h, w = tables.shape
    cum = []
    for ct in tables.cells:
        c_of_e = np.repeat(np.arange(ct.n_contexts), np.diff(ct.ctx_ptr))
        within = np.cumsum(ct.cond) - np.repeat(np.concatenate(([0.0], np.cumsum(ct.cond)))[ct.ctx_ptr[:-1]],
                                                np.diff(ct.ctx_ptr))
        within[ct.ctx_ptr[1:] - 1] = 1.0                              # each context's last token closes at 1
        cum.append(c_of_e + within)

    def run(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        tid = np.zeros((n, h * w), np.int64)
        ok = np.ones(n, bool)
        per = tables.per_word
        for i, ct in enumerate(tables.cells):
            q = np.zeros((n, ct.ctx_keys.shape[1]), np.uint64)
            for p, j in enumerate(ct.pre_cells):
                q[:, p // per] |= tid[:, j].astype(np.uint64) << np.uint64((p % per) * m)
            allk = np.concatenate([ct.ctx_keys, q])
            _, inv = np.unique(allk, axis=0, return_inverse=True)
            inv = inv.reshape(-1)
            lookup = np.full(len(allk), -1, np.int64)
            lookup[inv[:ct.n_contexts]] = np.arange(ct.n_contexts)
            c = lookup[inv[ct.n_contexts:]]
            ok &= c >= 0
            c = np.where(c >= 0, c, 0)
            e = np.searchsorted(cum[i], c + rng.random(n), side="right")
            e = np.minimum(e, ct.ctx_ptr[c + 1] - 1)
            tid[:, i] = ct.tok[e].astype(np.int64)
        return tid, ok

    def sample(n: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        got: list[np.ndarray] = []
        need = n
        while need > 0:
            tid, ok = run(max(need, 16), rng)
            got.append(tid[ok][:need])
            need -= len(got[-1])
        tid = np.concatenate(got)
        return np.ascontiguousarray(index_to_token(tid, m).reshape(n, h, w, m).transpose(0, 3, 1, 2))

    return sample


def coverage_curve(cert_latents: np.ndarray, cert_prob: np.ndarray, sampler: Sampler,
                   n_draws: Iterable[int] = (640, 6400, 64000), seed: int = 0) -> list[dict]:
    """Fig. 19: draw max(n_draws) samples once and, for each prefix of n draws, report

    * ``distinct`` — listed latents reached at least once, and ``fraction`` of the listing;
    * ``mass`` — their total probability (what fraction of the distribution has been seen);
    * ``outside`` — draws that are not in the listing (0 for a correct certificate).
    """
    keys = {z.tobytes(): k for k, z in enumerate(np.asarray(cert_latents, np.int8))}
    n_draws = sorted(int(n) for n in n_draws)
    draws = np.asarray(sampler(max(n_draws), seed), np.int8)
    idx = np.array([keys.get(z.tobytes(), -1) for z in draws], np.int64)
    prob = np.asarray(cert_prob, np.float64)
    out = []
    for n in n_draws:
        hit = idx[:n]
        seen = np.unique(hit[hit >= 0])
        out.append({"n_draws": n, "distinct": int(len(seen)), "fraction": len(seen) / max(1, len(keys)),
                    "mass": float(prob[seen].sum()), "outside": int((hit < 0).sum())})
    return out
