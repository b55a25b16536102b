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
  :func:`fscert.search.count_binned`); the count is exact where both ends agree;
* the **best reachable output** (highest PSNR to x_t over *all* reachable latents): the
  search's exact minimum h(root) when some output is within the budget; otherwise the
  search is repeated at budgets 4×, 16×, 64× larger (γ − 6, −12, −18 dB) and, if none
  finds one, the best PSNR is bounded (< γ − 18 dB).

Probabilities are renormalised over dead ends exactly as the listing's:
prob = product of conditionals / (1 − dead_end_mass).

Union over training images (the memorization mass P[an output is within γ of some
training image] and the number of such outputs): exact (deduplicated latents) when every
training image's near-copies were listed; otherwise bounded: max_t ≤ union ≤ Σ_t, tightened
by the listed part, and the reason is recorded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .blocks import BlockDecoder, BlockErrors, decode_exact, generated_values
from .enumeration import Tables, build_tables
from .geometry import Targets, targets_of
from .metrics.nearest import psnr_from_sqdist, sqdist_from_psnr
from .search import (SLACK, Graph, Layout, SearchTooLarge, count_binned, list_paths, make_layout, search,
                     tokens_to_latents)
from .survival import Survival, SurvivalTooLarge

#: budget multipliers tried when no output is within the smallest γ (−6, −12, −18 dB)
LADDER = (4.0, 16.0, 64.0)


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
        from .search import _window_keys

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
        import torch

        from .metrics.nearest import Rows, exact_sqdist

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
    """:class:`fscert.survival.Survival`, built the first time a search drops states; where even its
    bounded-memory table does not fit, survival is bounded by 1 (the dropped forward mass: a looser
    bound) and ``reason`` says why."""

    def __init__(self, tables: Tables, progress: bool = False):
        self.tables, self._s, self.exact, self.reason, self.progress = tables, None, None, "", progress

    @property
    def ready(self) -> bool:
        """Built (then every search also drops the states that can only end in a dead end)."""
        return bool(self.exact)

    def of(self, i: int, states: np.ndarray, layout: Layout) -> np.ndarray:
        if self.exact is None:
            try:
                self._s, self.exact = Survival(self.tables, progress=self.progress), True
            except SurvivalTooLarge as e:
                self.exact, self.reason = False, str(e)
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


def _renorm(raw: float, dead: float) -> float:
    return raw / (1.0 - dead)


def near_copy_search(latents: np.ndarray, counts: np.ndarray | None, rho: int, model,
                     train: np.ndarray | Targets, cfg: NearCopyConfig, dead_end_mass: float, progress: bool = False,
                     tables: Tables | None = None, train_indices: list[int] | None = None) -> NearCopyResult:
    """Run :class:`NearCopySearch` for every training image (or ``train_indices``) and merge: the
    listed near-copies deduplicated, each one's nearest training image and PSNR computed as the
    listing's metrics do (``metrics.nearest_train``), and the union bounded (:func:`_union`).

    ``train``: canvas images compared on the whole canvas, or :class:`fscert.geometry.Targets`
    (canvas images and the region compared: every PSNR, budget and distance is over the region)."""
    from .progress import Progress

    from .metrics import nearest_train

    s = NearCopySearch(latents, counts, rho, model, train, cfg, tables)
    s.survival.progress = progress
    idx = list(range(len(train))) if train_indices is None else list(train_indices)
    per = [s.run_one(t) for t in Progress(idx, desc="near-copies", unit="training image", show=progress, leave=False)]
    lat, raw, pair_row, pair_train, pair_psnr = _dedupe(per, s.tables.shape)
    c = model.config
    images = s.images(lat) if len(lat) else np.zeros((0, c.image_channels, c.image_size, c.image_size), np.uint8)
    gen = s.geometry.rows(generated_values(images))
    if len(lat):
        nn_idx, nn_psnr = nearest_train(gen, s.train_rows)
    else:
        nn_idx, nn_psnr = np.zeros(0, np.int64), np.zeros(0)
    nn_psnr = np.asarray(nn_psnr, np.float64)
    flags = nn_psnr[:, None] >= np.asarray(s.gammas, np.float64)[None, :]
    prob = raw / (1.0 - dead_end_mass)
    with np.errstate(divide="ignore"):
        logp = np.log(raw) - math.log(1.0 - dead_end_mass)
    unlisted = [r.index for r in per if not r.listed]
    overlap, groups = {}, None
    if unlisted:
        if len(lat):                                 # listed near-copies also near an unlisted image
            psnr = _psnr_matrix(gen, s.train_rows[unlisted])
            overlap = {t: [(int((psnr[:, i] >= g).sum()), float(prob[psnr[:, i] >= g].sum())) for g in s.gammas]
                       for i, t in enumerate(unlisted)}
        groups = disjoint_groups(s.train_rows, [s.budget(g) for g in s.gammas])
    union = _union(per, s.gammas, flags, prob, dead_end_mass, overlap, groups)
    return NearCopyResult(s.gammas, dead_end_mass, per, lat, prob, logp, np.asarray(nn_idx, np.int64), nn_psnr,
                          flags, pair_row, pair_train, pair_psnr, union, ties=s.dec.ties,
                          windows_decoded=s.dec.decoded, images=images, searcher=s)


def _psnr_matrix(gen: np.ndarray, train: np.ndarray, pairs: int = 1 << 22) -> np.ndarray:
    """Exact PSNR (the metrics' float64 sums) of every generated row to every given training row,
    in blocks of at most ``pairs`` pairs."""
    from .metrics import pairwise_psnr

    g = gen.reshape(len(gen), -1)
    t = np.asarray(train, np.float32).reshape(len(train), -1)
    out = np.empty((len(g), len(t)))
    step = max(1, pairs // max(1, len(t)))
    for lo in range(0, len(g), step):
        out[lo:lo + step] = pairwise_psnr(g[lo:lo + step], t)
    return out


def _dedupe(per: list[TrainResult], shape) -> tuple[np.ndarray, ...]:
    """The listed near-copies of every training image, deduplicated, in the listing's order
    (lexicographic in the raster token sequence), with their raw probabilities and every
    (near-copy row, training image, PSNR) pair sorted by row then training index."""
    m, h, w = shape
    rows: dict[bytes, int] = {}
    lat_list, raw_list = [], []
    pr, pt, pp = [], [], []
    for r in per:
        if r.latents is None:
            continue
        for k in range(len(r.latents)):
            key = r.latents[k].tobytes()
            j = rows.get(key)
            if j is None:
                j = rows[key] = len(lat_list)
                lat_list.append(r.latents[k])
                raw_list.append(r.raw_prob[k])
            pr.append(j), pt.append(r.index), pp.append(float(r.psnr[k]))
    n = len(lat_list)
    lat = np.stack(lat_list) if n else np.zeros((0, m, h, w), np.int8)
    raw = np.asarray(raw_list, np.float64)
    pair_row, pair_train, pair_psnr = np.asarray(pr, np.int64), np.asarray(pt, np.int64), np.asarray(pp, np.float64)
    order = np.lexsort(lat.transpose(0, 2, 3, 1).reshape(n, -1).T[::-1]) if n else np.zeros(0, np.int64)
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    pair_row = rank[pair_row] if n else pair_row
    o2 = np.lexsort((pair_train, pair_row))
    return lat[order], raw[order], pair_row[o2], pair_train[o2], pair_psnr[o2]


def disjoint_groups(train: np.ndarray, budgets: list[float], chunk: int = 1024) -> list[np.ndarray]:
    """Per budget B: a group id per training image such that images in different groups have
    disjoint near-copy sets. An output within B of both x_t and x_t′ puts them within 2√B of
    each other (triangle inequality), so images farther apart than that can share no near-copy;
    groups are the connected components of "within 2√B" (with a 1e-6 relative margin)."""
    import torch

    x = torch.from_numpy(np.asarray(train, np.float64).reshape(len(train), -1))
    n = len(x)
    out = []
    for b in budgets:
        parent = np.arange(n)

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for lo in range(0, n, chunk):
            d = torch.cdist(x[lo:lo + chunk], x).pow(2).numpy()
            ii, jj = np.nonzero(d <= 4 * b * (1 + 1e-6))
            for i, j in zip((ii + lo).tolist(), jj.tolist()):
                if i < j:
                    ri, rj = find(i), find(j)
                    if ri != rj:
                        parent[max(ri, rj)] = min(ri, rj)
        out.append(np.array([find(i) for i in range(n)]))
    return out


def _union(per: list[TrainResult], gammas, flags: np.ndarray, prob: np.ndarray, dead: float,
           overlap: dict[int, list[tuple[int, float]]] | None = None,
           groups: list[np.ndarray] | None = None) -> dict[str, Any]:
    """Per γ: count and mass of outputs within γ of some training image, exact or [low, high].

    ``overlap[t][j]``: count and mass of the listed near-copies that are also within γ_j of an
    unlisted training image t; they are in the union already, so they are not counted twice.
    ``groups[j]`` (:func:`disjoint_groups`): unlisted images of different groups have disjoint
    sets, so the lower end adds each group's largest set; a group with one unlisted image whose
    figures are exact makes its part of the union exact."""
    out: dict[str, Any] = {}
    unlisted = [r for r in per if not r.listed]
    overlap = overlap or {}
    for j, g in enumerate(gammas):
        listed_count = int(flags[:, j].sum())
        listed_mass = float(prob[flags[:, j]].sum())
        key = str(int(g)) if float(g).is_integer() else repr(float(g))
        if not unlisted:
            out[key] = {"exact": True, "count_low": str(listed_count), "count_high": str(listed_count),
                        "mass_low": listed_mass, "mass_high": listed_mass, "reason": "every near-copy listed"}
            continue
        ov = [overlap.get(r.index, [(0, 0.0)] * len(gammas))[j] for r in unlisted]
        lows = [max(0, r.count_low[j] - o[0]) for r, o in zip(unlisted, ov)]        # outside the listed union
        highs = [r.count_high[j] - o[0] if r.count_high[j] >= 0 else -1 for r, o in zip(unlisted, ov)]
        mlow = [max(0.0, _renorm(r.mass_low[j], dead) - o[1]) for r, o in zip(unlisted, ov)]
        mhigh = [_renorm(r.mass_high[j], dead) - o[1] for r, o in zip(unlisted, ov)]
        unknown = any(v < 0 for v in highs) or any(not math.isfinite(v) for v in mhigh)
        gid = [int(groups[j][r.index]) if groups is not None else 0 for r in unlisted]
        best_c: dict[int, int] = {}
        best_m: dict[int, float] = {}
        for g_id, lo_c, lo_m in zip(gid, lows, mlow):
            best_c[g_id] = max(best_c.get(g_id, 0), lo_c)
            best_m[g_id] = max(best_m.get(g_id, 0.0), lo_m)
        c_lo = listed_count + sum(best_c.values())
        m_lo = listed_mass + math.fsum(best_m.values())
        c_hi = None if unknown else listed_count + sum(highs)
        m_hi = 1.0 if unknown else min(1.0, listed_mass + math.fsum(max(0.0, v) for v in mhigh))
        exact = c_hi is not None and c_lo == c_hi and m_hi - m_lo <= 1e-12 * max(m_hi, 1e-300)
        shared = len(set(gid)) < len(gid)
        out[key] = {"exact": bool(exact), "count_low": str(c_lo), "count_high": None if c_hi is None else str(c_hi),
                    "mass_low": m_lo if not exact else m_hi, "mass_high": m_hi,
                    "reason": (f"{len(unlisted)} training image(s) have too many near-copies to list; counted "
                               "exactly without listing, and no two of them are within 2√B of each other, so "
                               "their sets cannot overlap: the union is their exact sum" if exact else
                               f"{len(unlisted)} training image(s) have too many near-copies to list"
                               + ("; some of them are close enough to share near-copies, so the union is bounded "
                                  "by the largest set and the sum of the sets" if shared else
                                  "; their own counts are intervals (cost bins)")
                               + ("; some searches were too large, so the upper end is unknown" if unknown else ""))}
    return out
