"""The most probable outputs of an empirical FS-LAR generator, without listing the others
(DESIGN §6.3–6.5; paper §4.2 "Exhaustive searching", A.3.6).

A certificate of 10^18 reachable images cannot list them, but it must still show the outputs
that matter most: the k most probable reachable latents, and every latent whose probability
is at least ε. A reachable latent is a path through the layered graph of frontier states
(:mod:`fscert.enumeration`); its raw probability is the product of the conditionals of its
edges in raster order (DESIGN §6.3–6.4), and its probability is raw / (1 − dead_end_mass).
So −log raw = Σ −log cond is an additive path cost, and the most probable latents are the
cheapest paths: :func:`fscert.search.search` finds every path of cost ≤ B without listing the
rest, and :func:`fscert.search_paths.list_paths` lists them in the enumerator's order.

Search. Edge cost c = −log cond (≥ 0) of its pair (Pre, token) at cell i; radius-0 layout
(no decoder blocks are involved, so the state is exactly the enumerator's frontier); lower
bound lb[i] = Σ_{j>i} min over the pairs at cell j of −log cond (every completion pays at
least that at every later cell, so lb is admissible; it is shrunk by 1e-12 relative so that
rounding never makes it exceed a real completion). Costs are float64 sums; the search keeps
every path whose cost is ≤ B and may keep some up to B·(1 + SLACK).

Ranking. The probability of a listed path is recomputed as the float64 product of its
conditionals in raster order (list_paths' raw_prob, bit for bit the enumerator's raw_prob),
divided by (1 − dead_end_mass) exactly as the listing divides; results are ranked by that
figure (decreasing), ties in the enumeration's order (lexicographic in the raster token
sequence: list_paths walks in that order and the sort is stable). Two raw products one ulp
apart can be equal after the division, and then they tie, as in the listing. The ranking
never uses the cost sums, so the search's SLACK only ever adds candidates. The bounds below
are on raw products; division by (1 − dead_end_mass) is monotone, so they carry over.

**Top k** (:func:`most_probable`). Budgets on Σ −log cond, over the admissible minimum
LB = Σ_j min_j c: search at LB + Δ (Δ = 0.75, not log 2: see MARGIN; doubled until some
path is within it; then h(root) is the best path's exact cost c*), and afterwards at
c* + Δ with Δ doubled each round, until a listing proves k results (or the whole reachable
set: once B ≥ UB = Σ_j max_j c every reachable path is within the budget). Listings hold at
most cap = max(2k, ``max_listed``) paths. Proof of a listing at budget b (candidates sorted
as above, p_1 ≥ p_2 ≥ …):

* every path of cost ≤ b is listed, every listed one costs at most b·(1 + SLACK); so a path
  that is not listed has real cost > b, and its float64 product is < t(b) = e^(−b)·(1 + 1e-8)
  (the relative error of a float64 product of L factors and of the float64 costs is far
  below 1e-8);
* when the listing overflowed its cap (more than cap paths within b, only the first cap in
  lexicographic order listed), the candidates are that prefix plus the ``known`` paths X
  (the best k candidates of the earlier listings), and the unlisted paths after the last
  listed one ℓ are bounded by q = the *exact* largest float64 product over the graph's paths
  lexicographically after ℓ that are not in X (:mod:`fscert.probable_unlisted`): a forward
  pass keeps the |X ∩ after ℓ| + 1 largest prefix products per state (``top_after``), exact
  because float64 multiplication by a positive conditional is monotone (the largest prefix
  products at a state extend to the largest path products), and X's own products are taken
  out of that multiset by value (``max_excluding``). X is in every later graph (its costs
  are below the later budgets);
* hence candidate i outranks every unlisted path iff p_i > t(b) and (no overflow, or p_i > q,
  or p_i = q and i comes before ℓ — an unlisted path after ℓ loses a tie to it, but maybe not
  to a known candidate after ℓ); the leading run of candidates that pass is exactly the
  global top of that length, and the k best of a listing that proves k are exactly the k
  best overall.

When a listing proves fewer than k: if its first unproven candidate fails only t(b), a
larger budget is needed (the next, larger search); if it fails q, better paths lie beyond
the listed prefix and the same graph is re-listed at bisected budgets (failing q lowers the
upper end, failing t raises the lower end; the best k seen are carried along as X). This
proves the k best in all cases but one: more than cap paths whose probabilities lie within
~1e-8 (relative) of the k-th without being equal to it (e.g. equal real products that
differ by an ulp in float64), in an order that puts better ones after the first cap; or a
later search over its edge limit (:class:`fscert.search.SearchTooLarge`). Then only the
proven prefix is claimed: ``n_exact`` says how long it is, ``exact`` is False and ``note``
says why — never a silent truncation. Exact ties, however many (the common case:
conditionals 1/2 at many cells; e.g. 2^64 equiprobable latents), are proven by q: the k best
are the better ones (in X) and then the lexicographically first of the tie.

**Above ε** (``min_prob``). Every latent with probability ≥ ε has cost ≤ b_ε = −log(ε·(1 −
dead_end_mass)) (up to rounding, covered by a 1e-7 relative margin): one search at that
budget, one listing, and the filter prob ≥ ε on the recomputed probabilities gives the exact
set (count and mass: math.fsum, correctly rounded). If more than ``max_listed`` paths are
within the budget, nothing is listed as "the set" (``above_complete`` False): the count and
the mass are bracketed by the binned dynamic program (:func:`fscert.search_paths.count_binned`)
at b_ε ∓ the margin, ``n_above`` ≤ true count ≤ ``n_above_high`` (None where the binned
pass was itself too large). When the ε set is complete and holds at least k latents, the
top k are its first k (every other latent has probability < ε ≤ p_k).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .enumeration.tables import Tables
from .errors import FscertError
from .probable_unlisted import lex_after, max_excluding, merge_lex, top_after
from .search import Graph, SearchTooLarge, make_layout, search
from .search_paths import Paths, count_binned, list_paths, tokens_to_latents

#: relative margin of the separation threshold t(b) = e^(−b)·(1 + TAIL) (module docstring)
TAIL = 1e-8
#: relative margin around the ε budget (covers float64 rounding of costs and products)
EPS_MARGIN = 1e-7
#: first budget margin over the best cost (e^−0.75 ≈ 0.47; deliberately not log 2, which
#: would put budgets exactly on the ties that conditionals of 1/2 create)
MARGIN = 0.75


@dataclass
class Probable:
    """The most probable reachable latents (module docstring).

    Top k: ``latents`` int8 (K, M, H, W), K = min(k, number of reachable latents) unless the
    search could not prove them all (``exact`` False; then the first ``n_exact`` are proven
    and ``note`` says why); ``prob`` (renormalised), ``log_prob``, decreasing probability,
    ties in the enumeration's order; ``covered_mass`` = their total probability.

    Above ε (only when ``min_prob`` was given): ``eps``; ``above_complete`` True: ``n_above``
    and ``above_mass`` are exact and ``above_latents`` / ``above_prob`` / ``above_log_prob``
    hold the whole set, decreasing; False: more than ``max_listed`` candidates, nothing
    listed, ``n_above`` ≤ true count ≤ ``n_above_high`` and ``above_mass`` ≤ true mass ≤
    ``above_mass_high`` (None: no upper bound could be computed).
    """

    latents: np.ndarray
    prob: np.ndarray
    log_prob: np.ndarray
    covered_mass: float
    k_requested: int
    exact: bool = True
    n_exact: int = 0
    note: str = ""
    eps: float | None = None
    n_above: int | None = None
    n_above_high: int | None = None
    above_mass: float | None = None
    above_mass_high: float | None = None
    above_complete: bool | None = None
    above_latents: np.ndarray | None = None
    above_prob: np.ndarray | None = None
    above_log_prob: np.ndarray | None = None
    searches: int = 0                  # bounded-cost searches run (diagnostic)
    max_states: int = 0                # largest layer of any search (diagnostic)


@dataclass
class _Ranked:
    """Candidates of one listing, sorted by decreasing renormalised probability (stable, so
    ties stay in lexicographic order), and how many leading ones are proven to be the global top."""

    tok: np.ndarray
    raw: np.ndarray
    cost: np.ndarray
    n_proven: int
    overflow: bool
    need: str = ""          # "up": a larger budget would prove more; "down": a smaller one


class _Problem:
    """Tables, costs and bounds shared by every search of one call."""

    def __init__(self, tables: Tables, dead_end_mass: float, max_edges: int):
        self.tables = tables
        self.layout = make_layout(tables, 0)
        self.max_edges = max_edges
        self.norm = 1.0 - float(dead_end_mass)
        with np.errstate(divide="ignore"):
            self.costs = [np.maximum(-np.log(ct.cond), 0.0) for ct in tables.cells]
        mins = np.array([c.min() if len(c) else 0.0 for c in self.costs])
        maxs = np.array([c.max() if len(c) else 0.0 for c in self.costs])
        suffix = np.concatenate([np.cumsum(mins[::-1])[::-1][1:], [0.0]])
        self.lb = suffix * (1.0 - 1e-12)
        self.lb_root = float(mins.sum())
        #: every reachable path costs at most this: a search at this budget keeps all of them
        self.b_all = float(maxs.sum()) * (1.0 + 1e-7) + 1e-12
        self.searches = 0
        self.max_states = 0

    def cost(self, i: int, parent: np.ndarray, pair: np.ndarray, child: np.ndarray) -> np.ndarray:
        return self.costs[i][pair]

    def run(self, budget: float) -> Graph:
        g = search(self.tables, self.layout, self.cost, budget, self.lb, self.max_edges)
        self.searches += 1
        self.max_states = max(self.max_states, g.max_states)
        return g

    def tail(self, b: float) -> float:
        """Upper bound on the float64 raw probability of any path of real cost > b (−1: none
        exists, the budget holds every reachable path)."""
        return -1.0 if b >= self.b_all else math.exp(-b) * (1.0 + TAIL)

    def rank(self, graph: Graph, b: float, cap: int, known: _Ranked | None = None) -> _Ranked:
        """List ``graph`` at budget b (at most ``cap`` paths), merge the ``known`` paths (real
        paths of the graph), sort, and count the proven prefix (module docstring). ``need``
        says which way the budget should move when the prefix is short: "down" where the first
        unproven candidate fails q (better paths lie beyond the listed prefix), otherwise "up"
        (it fails only t(b), or every candidate is proven)."""
        paths: Paths = list_paths(graph, b, max_out=cap)
        tok, raw, cost = paths.tok, paths.raw_prob, paths.cost
        q = -1.0
        last = tok[-1] if paths.overflow and len(tok) else None
        if last is not None:
            after = lex_after(known.tok, last) if known is not None else np.zeros(0, bool)
            q = max_excluding(top_after(graph, last, int(after.sum()) + 1),
                               known.raw[after] if known is not None else np.zeros(0))
        if known is not None and len(known.tok):
            tok, raw, cost = merge_lex(tok, raw, cost, known.tok, known.raw, known.cost)
        # rank and prove on the renormalised probability (the listing's figure): raw products
        # one ulp apart can become equal after the division, and then tie
        nrm = self.norm if self.norm > 0.0 else 1.0
        prob = raw / nrm
        order = np.argsort(-prob, kind="stable")
        tok, raw, cost, prob = tok[order], raw[order], cost[order], prob[order]
        tail, q = self.tail(b) / nrm, q / nrm           # division is monotone: bounds carry over
        # an unlisted path after ``last`` loses a tie to a candidate before it, not to a known
        # candidate after it (which may come later still): those must beat q strictly
        late = lex_after(tok, last) if last is not None else np.zeros(len(tok), bool)
        ok = (prob > tail) & ((prob > q) | ((prob == q) & ~late))
        n_proven = len(ok) if ok.all() else int(np.argmin(ok))
        need = "down" if n_proven < len(ok) and prob[n_proven] < q else "up"
        return _Ranked(tok, raw, cost, n_proven, paths.overflow, need)

    def outputs(self, tok: np.ndarray, raw: np.ndarray, cost: np.ndarray):
        """(latents, renormalised prob, log_prob) exactly as the listing computes them."""
        if len(raw) and self.norm <= 0.0:
            raise FscertError("dead_end_mass is 1 but reachable latents exist")
        prob = raw / self.norm if len(raw) else raw.copy()
        log_prob = -cost - math.log(self.norm) if len(raw) else cost.copy()
        return tokens_to_latents(tok, self.tables.shape), prob, log_prob


def _top_k(pb: _Problem, k: int, cap: int) -> tuple[_Ranked, bool, str]:
    """(ranked candidates, exact, note): the first min(k, n_proven) candidates are the global top."""
    empty = _Ranked(np.zeros((0, pb.tables.n_cells), np.uint64), np.zeros(0), np.zeros(0), 0, False)
    if k <= 0:
        return empty, True, ""
    margin = MARGIN
    while True:                                         # 1. a budget with at least one path
        budget = min(pb.lb_root + margin, pb.b_all)
        graph = pb.run(budget)
        if graph.complete:
            break
        if budget >= pb.b_all:
            return empty, True, ""                       # no reachable latent at all
        margin *= 2.0
    best = graph.best
    lo = best                                           # largest budget known to need "up"
    known: _Ranked | None = None                        # the best k candidates seen so far
    while True:                                         # 2. grow until k are proven
        r = pb.rank(graph, budget, cap, known)
        if r.n_proven >= k or (not r.overflow and budget >= pb.b_all):
            return r, True, ""
        known = _head(r, k)
        if r.need == "down":
            r, ok, at_top = _bisect(pb, graph, lo, budget, k, cap, r, known)
            if ok:
                return r, True, ""
            if not at_top:
                return r, False, (f"more than {cap} latents lie within ~1e-8 (relative) of the "
                                  f"{r.n_proven + 1}-th probability; only the first {r.n_proven} are proven")
            known = _head(r, k)                         # the proof needs a budget above this search's
        lo = budget
        nxt = min(best + max(2.0 * (budget - best), MARGIN), pb.b_all)
        if nxt <= budget:
            return r, False, f"the budget cannot grow further; only the first {r.n_proven} are proven"
        try:
            graph = pb.run(nxt)
        except SearchTooLarge as e:
            return r, False, (f"the search at budget {nxt:.6g} (−log raw probability) is too large "
                              f"({e}); only the first {r.n_proven} are proven")
        budget = nxt


def _head(r: _Ranked, k: int) -> _Ranked:
    return _Ranked(r.tok[:k], r.raw[:k], r.cost[:k], min(k, r.n_proven), r.overflow, r.need)


def _bisect(pb: _Problem, graph: Graph, lo: float, hi: float, k: int, cap: int, first: _Ranked,
            known: _Ranked) -> tuple[_Ranked, bool, bool]:
    """Re-list ``graph`` at budgets in (lo, hi) until a listing proves k (module docstring):
    a listing that needs a smaller budget lowers hi, one that needs a larger one raises lo;
    the best k candidates seen are carried along as known paths. Returns (ranked, proven,
    at_top): at_top when every listing asked for more than hi (the search's own budget)."""
    keep = first
    top = hi
    for _ in range(100):
        if hi - lo <= 1e-13 * (1.0 + abs(hi)):
            break
        mid = 0.5 * (lo + hi)
        r = pb.rank(graph, mid, cap, known)
        if r.n_proven >= k:
            return r, True, False
        if r.n_proven >= keep.n_proven:
            keep = r
        known = _head(r, k)
        if r.need == "down":
            hi = mid
        else:
            lo = mid
    return keep, False, hi == top


def _above(pb: _Problem, eps: float, max_listed: int) -> dict:
    """The ε part of :class:`Probable` (module docstring, "Above ε")."""
    b0 = -math.log(eps * pb.norm) if eps * pb.norm > 0.0 else math.inf
    margin = EPS_MARGIN * (1.0 + abs(b0)) if math.isfinite(b0) else 0.0
    b_hi = min(b0 + margin, pb.b_all)
    b_lo = min(b0 - margin, pb.b_all)
    out: dict = {"eps": float(eps)}
    if b_hi < 0.0:
        graph = None
    else:
        try:
            graph = pb.run(b_hi)
        except SearchTooLarge:
            out.update(n_above=0, n_above_high=None, above_mass=0.0, above_mass_high=None, above_complete=False)
            return out
    if graph is None or not graph.complete:
        z = np.zeros((0,) + pb.tables.shape, np.int8)
        out.update(n_above=0, n_above_high=0, above_mass=0.0, above_mass_high=0.0, above_complete=True,
                   above_latents=z, above_prob=np.zeros(0), above_log_prob=np.zeros(0))
        return out
    paths = list_paths(graph, b_hi, max_out=max_listed)
    prob = paths.raw_prob / pb.norm
    keep = prob >= eps
    if not paths.overflow:
        order = np.argsort(-prob[keep], kind="stable")
        z, p, lp = pb.outputs(paths.tok[keep][order], paths.raw_prob[keep][order], paths.cost[keep][order])
        mass = math.fsum(p.tolist())
        out.update(n_above=len(p), n_above_high=len(p), above_mass=mass, above_mass_high=mass,
                   above_complete=True, above_latents=z, above_prob=p, above_log_prob=lp)
        return out
    n_low, mass_low = int(keep.sum()), math.fsum(prob[keep].tolist())
    n_high = mass_high = None
    n_limbs = pb.tables.n_limbs
    try:
        if b_lo >= 0.0:
            lo = count_binned(graph, b_lo, n_limbs)
            n_low, mass_low = max(n_low, lo.count_low), max(mass_low, lo.mass_low / pb.norm)
        hi = count_binned(graph, b_hi, n_limbs)
        n_high, mass_high = hi.count_high, min(1.0, hi.mass_high / pb.norm)
    except (SearchTooLarge, OverflowError):
        pass
    out.update(n_above=n_low, n_above_high=n_high, above_mass=mass_low, above_mass_high=mass_high,
               above_complete=False)
    return out


def most_probable(tables: Tables, k: int, dead_end_mass: float, min_prob: float | None = None,
                  max_listed: int = 100_000, max_edges: int = 20_000_000) -> Probable:
    """The k most probable reachable latents, exactly, and (``min_prob`` = ε) every latent of
    probability ≥ ε (module docstring).

    ``tables``: :func:`fscert.enumeration.build_tables` of E; ``dead_end_mass``: from
    :func:`fscert.enumeration.count_reachable` (probabilities are raw / (1 − dead_end_mass)).
    ``max_listed``: the most latents listed above ε (more: bounds and ``above_complete``
    False); the top-k listings hold up to max(2k, max_listed) candidates. ``max_edges``: per
    layer of one search (:class:`fscert.search.SearchTooLarge` if even the first is larger).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise FscertError(f"k must be an integer ≥ 0, got {k!r}")
    d = float(dead_end_mass)
    if not 0.0 <= d <= 1.0:
        raise FscertError(f"dead_end_mass must lie in [0, 1], got {dead_end_mass}")
    if min_prob is not None and not 0.0 < float(min_prob) <= 1.0:
        raise FscertError(f"min_prob (ε) must lie in (0, 1], got {min_prob}")
    if not isinstance(max_listed, (int, np.integer)) or max_listed < 1:
        raise FscertError(f"max_listed must be an integer ≥ 1, got {max_listed!r}")
    k = int(k)
    pb = _Problem(tables, d, max_edges)
    above = _above(pb, float(min_prob), int(max_listed)) if min_prob is not None else {}
    if above.get("above_complete") and above["n_above"] >= k:
        z, p, lp = above["above_latents"][:k], above["above_prob"][:k], above["above_log_prob"][:k]
        exact, note = True, ""
    else:
        r, exact, note = _top_k(pb, k, max(2 * k, int(max_listed)))
        n = min(k, len(r.raw))
        z, p, lp = pb.outputs(r.tok[:n], r.raw[:n], r.cost[:n])
    n_exact = len(p) if exact else min(len(p), r.n_proven)
    return Probable(z, p, lp, math.fsum(p.tolist()), k, exact, n_exact, note, searches=pb.searches,
                    max_states=pb.max_states, **above)
