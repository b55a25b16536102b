"""Listing every reachable latent with its exact probability (DESIGN §6.4–6.6; paper A.3.6).

Counting never lists. Listing (when the exact count is at most ``max_images``) re-runs the
forward pass storing its edges (:func:`fscert.enumeration.count.forward` with ``store``,
refused with a one-line error above the memory limit, never split), marks the states that
have at least one completion (backward pass), and expands only those with the compiled
depth-first walk (:func:`fscert.enumeration.walk.walk_paths`), tokens in ascending order.

Guarantee: the listing holds every reachable latent exactly once, in lexicographic order of
its raster token sequence (deterministic), and its length equals the counting pass's exact
count (checked). Probabilities are float64 products of the conditionals in raster order,
log-probabilities their summed logarithms; both are divided by (1 − dead_end_mass) (DESIGN
§6.4), so that the listed probabilities sum to 1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import FscertError
from .count import CountResult, forward
from .tables import Tables, build_tables
from .walk import stack_layers, walk_paths


@dataclass
class Listing:
    """Every reachable latent with its exact probability (DESIGN §6.4–6.6)."""

    latents: np.ndarray       # int8 (K, M, H, W), lexicographic in the raster token sequence
    prob: np.ndarray          # float64 (K,): product of conditionals / (1 − dead_end_mass)
    log_prob: np.ndarray      # float64 (K,): Σ log conditionals − log(1 − dead_end_mass)
    raw_prob: np.ndarray      # float64 (K,): product of conditionals (not renormalised)
    count: int
    dead_end_mass: float
    max_states: int


class TooManyImages(FscertError):
    """The exact count exceeds ``max_images``; carries the count."""

    def __init__(self, count: int, max_images: int):
        self.count = count
        self.max_images = max_images
        super().__init__(
            f"{count} reachable latents exceed --max-images {max_images}; nothing was listed. "
            "Use fewer trials, a smaller τ (fewer flips), a larger ρ, --count-only, or raise --max-images")


def _expand(tables: Tables, res: CountResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward alive marking, then the compiled depth-first walk (:func:`walk_paths`) over the
    alive edges. Only states with at least one completion are entered, so the work is
    O(count · L). Returns (latents int8 (K, M, H, W), raw products, Σ log conditionals)."""
    edges = res.edges
    n_cells = tables.n_cells
    m, h, w = tables.shape
    alive_edges: list[np.ndarray] = [np.zeros(0, bool)] * n_cells
    alive_next = np.ones(edges[-1][5], bool)
    for i in range(n_cells - 1, -1, -1):
        ep, ec, _, _, n_parent, _ = edges[i]
        a = alive_next[ec]
        alive_edges[i] = a
        alive_next = np.zeros(n_parent, bool)
        alive_next[ep[a]] = True
    ptrs, childs, toks, conds = [], [], [], []
    for i in range(n_cells):
        ep, ec, et, econd, n_parent, _ = edges[i]
        a = alive_edges[i]
        ptrs.append(np.concatenate([[0], np.cumsum(np.bincount(ep[a], minlength=n_parent))]).astype(np.int64))
        childs.append(ec[a])
        toks.append(et[a])
        conds.append(econd[a])
    k = res.count
    out = np.zeros((k, m, h, w), np.int8)
    prob = np.zeros(k, np.float64)
    logp = np.zeros(k, np.float64)
    found = 0
    if alive_next[0]:
        state_off, row_ptr = stack_layers(ptrs)
        none_f, none_i = np.zeros(0, np.float64), np.zeros(0, np.int64)
        found = walk_paths(state_off, row_ptr, np.concatenate(childs), np.concatenate(toks), np.concatenate(conds),
                           none_f, none_i, none_f, math.inf, k, m, w, np.zeros((0, 1), np.uint64), out, prob, logp)
    if found != k:
        raise RuntimeError(f"listing found {found if found <= k else 'more'} latents, the count says {k}")
    return out, prob, logp


def enumerate_reachable(latents: np.ndarray, rho: int, counts: np.ndarray | None = None,
                        max_images: int | None = 100_000, progress: bool = False,
                        max_memory: int | None = None) -> Listing:
    """List every reachable latent with its exact probability (DESIGN §6.4–6.5).

    Counts first; raises :class:`TooManyImages` (an :class:`FscertError` with the exact count)
    before listing when the count exceeds ``max_images``. ``max_memory`` bytes (None: ¾ of
    the machine's memory) bound both passes (:func:`fscert.enumeration.count.forward`).
    """
    tables = build_tables(latents, rho, counts)
    res = forward(tables, store=False, progress=progress, max_memory=max_memory)
    if max_images is not None and res.count > max_images:
        raise TooManyImages(res.count, max_images)
    return list_from_tables(tables, res.count, progress=progress, max_memory=max_memory)


def list_from_tables(tables: Tables, expected_count: int | None = None, progress: bool = False,
                     max_memory: int | None = None) -> Listing:
    """List from prebuilt tables: the stored forward pass (refused above ``max_memory``), then
    :func:`_expand`."""
    m, h, w = tables.shape
    res = forward(tables, store=True, progress=progress, max_memory=max_memory)
    if len(res.edges) < tables.n_cells or res.count == 0:
        z = np.zeros((0, m, h, w), np.int8)
        e = np.zeros(0, np.float64)
        return Listing(z, e, e.copy(), e.copy(), 0, res.dead_end_mass, res.max_states)
    if expected_count is not None and expected_count != res.count:
        raise RuntimeError(f"the listing pass counts {res.count} latents, the counting pass {expected_count}")
    z, raw, logp = _expand(tables, res)
    norm = 1.0 - res.dead_end_mass
    return Listing(z, raw / norm, logp - math.log(norm), raw, res.count,
                   res.dead_end_mass, res.max_states)
