"""Exact near-copy search over every reachable image, without listing them (paper Eq. 9, DESIGN §6–7).

For a training image x_t and a threshold γ, a reachable latent z is a **near-copy** of x_t
iff PSNR(d(z), x_t) ≥ γ, i.e. ‖d(z) − x_t‖² ≤ B_γ = D·10^(−γ/10) (peak 1), where the norm
and D = C·h·w count only the pixels of the comparison geometry's region
(:mod:`fscert.geometry`: the images' stored size, e.g. 28×28 of the 32×32 canvas).
The decoder is local, so ‖d(z) − x_t‖² = Σ over blocks (y, x) of the error of the block
decoded from z's R×R window at (y, x), restricted to the region (:mod:`fscert.blocks`; a
block outside it contributes 0, which keeps every bound below admissible). Summed in raster order of
the blocks' completion cells, partial sums only grow: :func:`fscert.search.search` prunes a
partial stitching as soon as its completed blocks (plus an admissible bound on the rest)
exceed B_γ, and keeps a state per distinct frontier of the last max(ρW+ρ, (R−1)(W+1)+1)
cells. When ρ ≥ R−1 every window of a reachable latent is a window of some member of E at
the same position (the Pre of the block's last cell covers the window), so the rest is
bounded by each later block's smallest error over E's windows; when ρ < R−1 windows are new
stitchings, decoded on demand, and the bound of the rest is 0.

Per training image t, for the smallest γ (the largest budget) one search gives:

* **every near-copy latent**, listed by the output-sensitive walk when there are at most
  ``max_listed`` of them; each is then decoded canonically (float64, :func:`decode_exact`)
  and its PSNR recomputed with the metrics' own exact float64 sum, which decides the flags
  at every γ (so the figures equal those of a full listing: same latents, same probabilities
  as products of the same conditionals, same images, same PSNR);
* otherwise a **certified interval** for the count and the mass (binned dynamic program,
  :func:`fscert.search_paths.count_binned`); the count is exact where both ends agree;
* the **best reachable output** (highest PSNR to x_t over *all* reachable latents): the
  search's exact minimum h(root) when some output is within the budget; otherwise the
  search is repeated at budgets 4×, 16×, 64× larger (γ − 6, −12, −18 dB) and, if none
  finds one, the best PSNR is bounded (< γ − 18 dB).

Probabilities are renormalised over dead ends exactly as the listing's:
prob = product of conditionals / (1 − dead_end_mass).

Union over training images (:mod:`fscert.nearcopy_union`): exact where every training image's
near-copies were listed, otherwise bounded, and the reason is recorded.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .blocks import BlockDecoder, BlockErrors, decode_exact, generated_values
from .enumeration.tables import Tables, build_tables
from .geometry import Targets, targets_of
from .metrics import nearest_train
from .metrics.nearest import Rows, exact_sqdist, psnr_from_sqdist, sqdist_from_psnr
from .nearcopy_union import dedupe, disjoint_groups, overlap as overlap_of, union_bounds
from .progress import Progress
from .search import SLACK, Graph, Layout, SearchTooLarge, _window_keys, make_layout, search
from .search_paths import count_binned, list_paths, tokens_to_latents
from .survival import Survival, SurvivalTooLarge

#: listed near-copies decoded and compared at a time when results are merged (a multiple of the
#: nearest-neighbour search's query batch, so each row's nearest training image is the one a
#: single pass finds): bounds the merge's memory at any number of listed near-copies
MERGE_ROWS = 64 * 2048

#: budget multipliers tried when no output is within the smallest γ (−6, −12, −18 dB)
LADDER = (4.0, 16.0, 64.0)

logger = logging.getLogger(__name__)


@dataclass
class NearCopyConfig:
    """Options of the near-copy search (recorded in the certificate's ``config``)."""

    gammas: tuple[float, ...] = (25.0, 30.0)
    max_listed: int = 100_000        # near-copies listed per training image before switching to intervals
    bins: int = 4096                 # cost bins of the interval counts
    max_edges: int = 20_000_000      # candidate edges per layer of one search
    max_states: int | None = 200_000  # states kept per cell (most probable first); beyond: intervals


@dataclass
class TrainResult:
    """What one training image's search proved (per γ lists are in ``gammas`` order)."""

    index: int
    listed: bool                               # every near-copy (smallest γ) listed
    count_low: list[int]
    count_high: list[int]
    mass_low: list[float]                      # raw (un-renormalised) mass
    mass_high: list[float]
    best_psnr: float                           # exact best PSNR, or a bound (best_kind)
    best_exact: bool                           # best_kind == "exact"
    best_latent: np.ndarray | None             # int8 (M, h, w) of the best output found
    best_raw_prob: float
    latents: np.ndarray | None = None          # near-copies at the smallest γ (canonical PSNR ≥ γ_min)
    raw_prob: np.ndarray | None = None
    psnr: np.ndarray | None = None
    reason: str = ""
    max_states: int = 0
    best_kind: str = "exact"                   # "exact", "at most" (bound), "at least" (a reachable output), "unknown"
    dropped_mass: float = 0.0                  # raw mass the state cap left unexamined (0: nothing)


class NearCopySearch:
    """Searches every training image's near-copies over the reachable set of E at range ρ."""

    def __init__(self, latents: np.ndarray, counts: np.ndarray | None, rho: int, model,
                 train: np.ndarray | Targets, cfg: NearCopyConfig, tables: Tables | None = None):
        self.tables = tables if tables is not None else build_tables(latents, rho, counts)
        self.model = model
        tg = targets_of(train)                    # a bare array: compared on the whole canvas
        self.train = np.asarray(tg.canvas, np.float32)
        self.geometry = tg.geometry
        self.train_rows = self.geometry.rows(self.train)          # the compared region, one row per image
        self.region = None if self.geometry.whole_canvas else self.geometry.mask()
        self.cfg = cfg
        self.radius = (model.config.receptive_field - 1) // 2
        self.layout: Layout = make_layout(self.tables, self.radius)
        self.dec = BlockDecoder(model, self.tables.shape, self.radius, self.layout.per_word)
        self.dim = self.geometry.pixels(self.train.shape[1])
        self.gammas = tuple(sorted(float(g) for g in cfg.gammas))
        self.windows_in_e = self.tables.rho >= 2 * self.radius
        self._e_blocks: dict[tuple[int, int], np.ndarray] | None = None
        self._latents = np.asarray(latents, np.int8)
        self.survival = _LazySurvival(self.tables)

    # ------------------------------------------------------------------ costs and bounds

    def budget(self, gamma: float) -> float:
        return sqdist_from_psnr(gamma, self.dim)

    def _window_keys_of_e(self) -> dict[tuple[int, int], np.ndarray]:
        """Block ids of every window of E at every position (ρ ≥ R−1: the only windows)."""
        if self._e_blocks is None:
            m, h, w = self.tables.shape
            ids = self.window_ids(self._latents, [(y, x) for y in range(h) for x in range(w)])
            self._e_blocks = {pos: np.unique(v) for pos, v in ids.items()}
        return self._e_blocks

    def lower_bound(self, err: BlockErrors) -> np.ndarray:
        """lb[i]: admissible bound on the error of the blocks completing after cell i."""
        n = self.layout.n_cells
        per_cell = np.zeros(n)
        if self.windows_in_e:
            ids = self._window_keys_of_e()
            for i in range(n):
                per_cell[i] = sum(float(err.of(pos, ids[pos]).min()) for pos in self.layout.blocks[i])
        suffix = np.concatenate([np.cumsum(per_cell[::-1])[::-1][1:], [0.0]])
        return suffix * (1.0 - SLACK)

    def cost_fn(self, err: BlockErrors) -> Callable:
        lay = self.layout

        def cost(i: int, parent: np.ndarray, pair: np.ndarray, child: np.ndarray) -> np.ndarray:
            total = np.zeros(len(parent))
            if not lay.blocks[i]:
                return total
            keys = _window_keys(child, lay.window_slots[i], lay.per_word, self.tables.shape[0], lay.key_words)
            ids = self.dec.lookup_many({pos: keys[:, b, :] for b, pos in enumerate(lay.blocks[i])})
            for pos in lay.blocks[i]:
                total += err.of(pos, ids[pos])
            return total

        return cost

    # ------------------------------------------------------------------ one training image

    def images(self, latents: np.ndarray) -> np.ndarray:
        """Canonical images of reachable latents, stitched from the decoded blocks
        (:meth:`fscert.blocks.BlockDecoder.images`: always equal to ``decode_exact``)."""
        return self.dec.images(latents)

    def window_ids(self, latents: np.ndarray, positions: list[tuple[int, int]]) -> dict[tuple[int, int], np.ndarray]:
        return self.dec.window_ids(latents, positions)

    def canonical_psnr(self, latents: np.ndarray, t: int, batch: int = 4096) -> np.ndarray:
        """PSNR of each latent's canonical image to training image t, as the metrics compute it."""
        if len(latents) == 0:
            return np.zeros(0)
        out = np.empty(len(latents))
        ref = Rows(self.train_rows[t:t + 1])
        for lo in range(0, len(latents), batch):
            imgs = self.geometry.rows(generated_values(self.images(latents[lo:lo + batch])))
            q = Rows(imgs, center=ref.center_D)
            n = len(imgs)
            d = exact_sqdist(q, torch.arange(n), ref, torch.zeros(n, dtype=torch.int64))
            out[lo:lo + n] = psnr_from_sqdist(d.numpy(), self.dim)
        return out

    def run_one(self, t: int) -> TrainResult:
        """Search training image t's near-copies (module docstring)."""
        gs = self.gammas
        err = BlockErrors(self.dec, self.train[t], self.region)
        cost = self.cost_fn(err)
        lb = self.lower_bound(err)
        b0 = self.budget(gs[0])
        n = len(gs)
        try:
            graph = search(self.tables, self.layout, cost, b0, lb, self.cfg.max_edges, self.cfg.max_states,
                           self.survival)
        except SearchTooLarge as e:
            return TrainResult(t, False, [0] * n, [-1] * n, [0.0] * n, [math.nan] * n, math.nan, False, None,
                               math.nan, reason=f"search too large: {e}", best_kind="unknown")
        best_psnr, kind, best_lat, best_p = self._best(graph, t, cost, lb, b0)
        dropped = graph.dropped_mass
        note = (f"the search kept the {self.cfg.max_states:,} most probable states per cell; the paths through "
                f"the others (raw mass ≤ {dropped:.3g}) are bounded, not listed" if dropped > 0 else "")
        if dropped > 0 and self.survival.exact is False:
            note += f" (weighed by their forward mass, a looser bound: {self.survival.reason})"
        common = dict(best_psnr=best_psnr, best_exact=kind == "exact", best_latent=best_lat, best_raw_prob=best_p,
                      max_states=graph.max_states, best_kind=kind, dropped_mass=dropped)
        paths = list_paths(graph, max_out=self.cfg.max_listed)
        if not paths.overflow:
            lat = tokens_to_latents(paths.tok, self.tables.shape)
            psnr = self.canonical_psnr(lat, t)
            keep = psnr >= gs[0]
            lat, raw, psnr = lat[keep], paths.raw_prob[keep], psnr[keep]
            counts = [int((psnr >= g).sum()) for g in gs]
            masses = [float(raw[psnr >= g].sum()) for g in gs]
            if dropped == 0:
                return TrainResult(t, True, counts, list(counts), masses, list(masses), latents=lat, raw_prob=raw,
                                   psnr=psnr, **common)
            return TrainResult(t, False, counts, [-1] * n, masses, [m + dropped for m in masses], latents=lat,
                               raw_prob=raw, psnr=psnr, reason=note, **common)
        lo_c, hi_c, lo_m, hi_m, reasons = [], [], [], [], []
        for g in gs:
            try:
                bc = count_binned(graph, self.budget(g), self.tables.n_limbs, bins=self.cfg.bins)
                lo_c.append(bc.count_low), hi_c.append(bc.count_high if dropped == 0 else -1)
                lo_m.append(bc.mass_low), hi_m.append(bc.mass_high + dropped)
            except SearchTooLarge as e:
                lo_c.append(self.cfg.max_listed + 1 if g == gs[0] else 0), hi_c.append(-1)
                lo_m.append(0.0), hi_m.append(math.nan)
                reasons.append(f"γ = {g:g}: interval count too large ({e})")
        return TrainResult(t, False, lo_c, hi_c, lo_m, hi_m,
                           reason="; ".join([f"more than {self.cfg.max_listed:,} near-copies: interval"] + reasons
                                            + ([note] if note else [])), **common)

    def _best(self, graph: Graph, t: int, cost, lb, b0: float) -> tuple[float, str, np.ndarray | None, float]:
        """The best output (highest PSNR to x_t) over every reachable latent: ("exact", its PSNR);
        ("at most", bound) when no output reaches the last budget tried; ("at least", PSNR of a
        reachable output) when the state cap dropped states, so a better one may exist."""
        g, budget = graph, b0
        if not math.isfinite(g.best):
            for mult in LADDER:
                if g.dropped_mass > 0:
                    break
                budget = b0 * mult
                try:
                    g = search(self.tables, self.layout, cost, budget, lb, self.cfg.max_edges, self.cfg.max_states,
                               self.survival)
                except SearchTooLarge:
                    break
                if math.isfinite(g.best):
                    break
        if not math.isfinite(g.best):
            if g.dropped_mass > 0:
                return math.nan, "unknown", None, math.nan
            return float(psnr_from_sqdist(budget, self.dim)), "at most", None, math.nan
        tied = list_paths(g, budget=g.best * (1 + 4 * SLACK), max_out=64)
        lat = tokens_to_latents(tied.tok, self.tables.shape)
        psnr = self.canonical_psnr(lat, t)
        j = int(np.argmax(psnr))
        return float(psnr[j]), "exact" if g.dropped_mass == 0 else "at least", lat[j], float(tied.raw_prob[j])


class _LazySurvival:
    """:class:`fscert.survival.Survival`, built by :meth:`build` (or the first time a search drops
    states); where even its bounded-memory table does not fit, survival is bounded by 1 (the
    dropped forward mass: a looser bound) and ``reason`` says why."""

    def __init__(self, tables: Tables, progress: bool = False):
        self.tables, self._s, self.exact, self.reason, self.progress = tables, None, None, "", progress

    @property
    def ready(self) -> bool:
        """Built (then every search also drops the states that can only end in a dead end)."""
        return bool(self.exact)

    @property
    def directory(self):
        """Where the built table lies (None: not built, or too large)."""
        return self._s.directory if self.exact else None

    def build(self) -> None:
        if self.exact is None:
            try:
                self._s, self.exact = Survival(self.tables, progress=self.progress), True
            except SurvivalTooLarge as e:
                self.exact, self.reason = False, str(e)

    def adopt(self, exact: bool | None, reason: str, directory) -> None:
        """Take the state of another process's table: attached from ``directory`` where this
        process can read it, else built here (the same values: the table is deterministic)."""
        self.exact, self.reason = exact, reason
        if exact:
            try:
                self._s = Survival.attach(directory, self.tables)
            except FileNotFoundError:
                self.exact = None
                self.build()

    def of(self, i: int, states: np.ndarray, layout: Layout) -> np.ndarray:
        self.build()
        return self._s.of(i, states, layout) if self.exact else np.ones(len(states))


# ----------------------------------------------------------------------------- all training images


@dataclass
class NearCopyResult:
    """The near-copy verdict over every reachable image (see the module docstring)."""

    gammas: tuple[float, ...]
    dead_end_mass: float
    per_train: list[TrainResult]
    latents: np.ndarray                  # int8 (K, M, h, w): every listed near-copy (smallest γ), deduplicated
    prob: np.ndarray                     # float64 (K,), renormalised
    log_prob: np.ndarray
    nearest_train: np.ndarray            # int64 (K,): the training image of highest PSNR (ties: lower index)
    psnr: np.ndarray                     # float64 (K,)
    flags: np.ndarray                    # bool (K, G): PSNR ≥ γ
    pair_row: np.ndarray                 # int64 (P,): every (near-copy, training image) pair at the smallest γ
    pair_train: np.ndarray
    pair_psnr: np.ndarray
    union: dict[str, Any] = field(default_factory=dict)
    ties: int = 0
    windows_decoded: int = 0
    images: np.ndarray | None = None     # uint8 (K, C, H, W): canonical images of ``latents``
    searcher: Any = None                 # the NearCopySearch (its decoded blocks)

    def images_of(self, latents: np.ndarray) -> np.ndarray:
        """Canonical images of any reachable latents, from the search's decoded blocks."""
        return self.searcher.images(latents)


def near_copy_search(latents: np.ndarray, counts: np.ndarray | None, rho: int, model,
                     train: np.ndarray | Targets, cfg: NearCopyConfig, dead_end_mass: float, progress: bool = False,
                     tables: Tables | None = None, train_indices: list[int] | None = None,
                     client=None, checkpoint=None) -> NearCopyResult:
    """Run :class:`NearCopySearch` for every training image (or ``train_indices``) and merge: the
    listed near-copies deduplicated, each one's nearest training image and PSNR computed as the
    listing's metrics do (``metrics.nearest_train``), and the union bounded
    (:func:`fscert.nearcopy_union.union_bounds`).

    ``train``: canvas images compared on the whole canvas, or :class:`fscert.geometry.Targets`
    (canvas images and the region compared: every PSNR, budget and distance is over the region).

    ``client``: a ``dask.distributed.Client``; the training images' searches then run as tasks
    on its workers (:mod:`fscert.nearcopy_sharded`), with the same results.

    ``checkpoint``: a :class:`fscert.nearcopy_checkpoint.SearchCheckpoint`; each finished
    training image's result is saved there, and the ones it already holds are not searched
    again (the same results as an uninterrupted run)."""
    s = NearCopySearch(latents, counts, rho, model, train, cfg, tables)
    s.survival.progress = progress
    idx = list(range(len(train))) if train_indices is None else list(train_indices)
    done = checkpoint.load() if checkpoint is not None else {}
    todo = [t for t in idx if t not in done]
    if todo:                  # before any search: each training image's result is then independent of the others
        s.survival.build()
    if done:
        logger.info(f"{len(idx) - len(todo):,} of {len(idx):,} training images' searches resumed from {checkpoint.dir}")
    save = checkpoint.save if checkpoint is not None else None
    if client is None:
        for t in Progress(todo, desc="near-copies", unit="training image", show=progress, leave=False):
            done[t] = s.run_one(t)
            if save is not None:
                save(done[t])
    else:
        from .nearcopy_sharded import run_sharded
        for r in run_sharded(s, (latents, counts, rho, model, train, cfg), todo, client, progress, save):
            done[r.index] = r
    return merge_results(s, [done[t] for t in idx], dead_end_mass)


def merge_results(s: NearCopySearch, per: list[TrainResult], dead_end_mass: float) -> NearCopyResult:
    """The :class:`NearCopyResult` of searcher ``s``'s per-training-image results ``per``
    (:func:`near_copy_search`'s second half: dedupe, nearest training image, union)."""
    model = s.model
    lat, raw, pair_row, pair_train, pair_psnr = dedupe(per, s.tables.shape)
    c = model.config
    k = len(lat)
    prob = raw / (1.0 - dead_end_mass)
    with np.errstate(divide="ignore"):
        logp = np.log(raw) - math.log(1.0 - dead_end_mass)
    unlisted = [r.index for r in per if not r.listed]
    images = np.empty((k, *c.image_shape), np.uint8)
    nn_idx, nn_psnr = np.zeros(k, np.int64), np.zeros(k, np.float64)
    near_unlisted = None
    for lo in range(0, k, MERGE_ROWS):           # millions of listed near-copies: decoded and compared in chunks
        hi = min(k, lo + MERGE_ROWS)
        images[lo:hi] = s.images(lat[lo:hi])
        gen = s.geometry.rows(generated_values(images[lo:hi]))
        nn_idx[lo:hi], nn_psnr[lo:hi] = nearest_train(gen, s.train_rows)
        if unlisted:                             # listed near-copies also near an unlisted image
            part = overlap_of(gen, s.train_rows[unlisted], prob[lo:hi], s.gammas)
            near_unlisted = part if near_unlisted is None else [
                [(n0 + n1, m0 + m1) for (n0, m0), (n1, m1) in zip(a, b)] for a, b in zip(near_unlisted, part)]
    flags = nn_psnr[:, None] >= np.asarray(s.gammas, np.float64)[None, :]
    overlap, groups = {}, None
    if unlisted:
        if near_unlisted is not None:
            overlap = dict(zip(unlisted, near_unlisted))
        groups = disjoint_groups(s.train_rows, [s.budget(g) for g in s.gammas])
    union = union_bounds(per, s.gammas, flags, prob, dead_end_mass, overlap, groups)
    return NearCopyResult(s.gammas, dead_end_mass, per, lat, prob, logp, np.asarray(nn_idx, np.int64), nn_psnr,
                          flags, pair_row, pair_train, pair_psnr, union, ties=s.dec.ties,
                          windows_decoded=s.dec.decoded, images=images, searcher=s)
