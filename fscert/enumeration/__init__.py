"""Exhaustive enumeration of an empirical FS-LAR generator (DESIGN §6; paper §4.2, A.3.6).

The empirical set E (drawn latents with multiplicities) defines, at every cell, the conditional
P_E(z_i = k | Pre_i = z°) (DESIGN §6.3). A latent is reachable iff every pair (Pre_i, z_i)
occurs in E at cell i; its probability is the product of the conditionals, renormalised over
the dead ends (DESIGN §6.4). The package, in the order a reader meets it:

* :mod:`~fscert.enumeration.tables` — the conditionals of E per cell and the frontier layout
  (:func:`build_tables`);
* :mod:`~fscert.enumeration.kernels` — the compiled pre-pass and step of one cell;
* :mod:`~fscert.enumeration.count` — the exact count and dead-end mass by the frontier
  forward pass, under a memory limit (:func:`count_reachable`, :func:`count_prefixes`);
* :mod:`~fscert.enumeration.walk` — the compiled depth-first walk (shared with
  :mod:`fscert.search_paths`);
* :mod:`~fscert.enumeration.listing` — every reachable latent with its probability
  (:func:`enumerate_reachable`);
* :mod:`~fscert.enumeration.graph` — the compatible-patch graph as networkx / GraphML;
* :mod:`~fscert.enumeration.empirical_sampler` — the sampler of P_E and the paper's Fig. 15
  and Fig. 19 experiments;
* :mod:`~fscert.enumeration.full_support` — Fig. 18: every latent of a small grid with its
  exact direct-sampling probability.
"""
from __future__ import annotations

from .count import CountResult, candidate_edges, count_prefixes, count_reachable, forward, layer_contexts, limbs_to_int
from .empirical_sampler import coverage_curve, empirical_sampler, trials_curve
from .full_support import MAX_FULL_SUPPORT_BITS, full_support, full_support_index_to_latents
from .graph import patch_graph, write_graphml
from .kernels import EDGE_BYTES, _contexts
from .listing import Listing, TooManyImages, enumerate_reachable, list_from_tables
from .tables import LIMB_BITS, MAX_CHANNELS, CellTable, Tables, build_tables, check_empirical

__all__ = [
    "CellTable", "CountResult", "EDGE_BYTES", "LIMB_BITS", "Listing", "MAX_CHANNELS", "MAX_FULL_SUPPORT_BITS",
    "Tables", "TooManyImages", "_contexts", "build_tables", "candidate_edges", "check_empirical", "count_prefixes",
    "count_reachable", "coverage_curve", "empirical_sampler", "enumerate_reachable", "forward", "full_support",
    "full_support_index_to_latents", "layer_contexts", "limbs_to_int", "list_from_tables", "patch_graph",
    "trials_curve", "write_graphml",
]
