"""One source of defaults: every CLI default equals the library default it stands for.

Walks every click command (`fscert_cli.main.cli`), maps each parameter to the config field or
library parameter it stands for (:data:`SOURCES`; names differ where the CLI's do), and checks
equality. Every parameter with a default is either mapped or listed as CLI-only with a reason
(:data:`CLI_ONLY`). `fscert certify`'s config composes the others with its preset and nothing more.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import click
import pytest

from fscert.audit import DEFAULT_GAMMAS, AuditConfig, audit
from fscert.audit_files import AuditFiles
from fscert.autoencoder import AEConfig
from fscert.certify import (DRAW_FINETUNE_EPOCHS, ENUMERATION_PRESET, MODEL_PRESET, N_TRAIN, OPTION_FIELDS,
                            TRAINING_PRESET, CertifyConfig)
from fscert.data import load_images
from fscert.empirical import DrawConfig
from fscert.encode import encode_data
from fscert.enumerate import EnumerateConfig
from fscert.fit import Fit
from fscert.nfig import NFIGConfig, sample_nfig
from fscert.sample import SampleConfig
from fscert.training import TrainConfig
from fscert_cli.main import cli

_UNSET = click.Option(["--x"]).default        # click's "no default given" (a sentinel, not None)


def field(cls: type, name: str) -> tuple[str, Callable[[], Any]]:
    """The default of dataclass field ``cls.name``."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    assert f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING, (cls, name)
    return f"{cls.__name__}.{name}", (lambda: f.default if f.default is not dataclasses.MISSING else f.default_factory())


def job(name: str) -> tuple[str, Callable[[], Any]]:
    """The value of ``name`` in a default `fscert certify` job (the components with the preset)."""
    return f"CertifyConfig().{name}", lambda: getattr(CertifyConfig(), name)


def param(func: Callable, name: str) -> tuple[str, Callable[[], Any]]:
    """The default of parameter ``name`` of the library function ``func``."""
    return f"{func.__qualname__}({name}=…)", lambda: inspect.signature(func).parameters[name].default


SPLIT = param(load_images, "split")

#: (command, parameter name) → the library default it stands for
SOURCES: dict[tuple[str, str], tuple[str, Callable[[], Any]]] = {
    # train: the autoencoder's shape and the two-phase training
    **{("train", n): field(AEConfig, n) for n in ("latent_channels", "receptive_field", "hidden", "transition")},
    ("train", "pad"): field(Fit, "pad"),
    **{("train", n): field(TrainConfig, n) for n in ("tau", "kappa", "noise", "beta0", "epochs", "finetune_epochs",
                                                     "batch_size", "lr", "seed")},
    ("train", "split"): SPLIT,
    ("encode", "split"): SPLIT,
    ("encode", "batch_size"): param(encode_data, "batch"),
    **{("draw", n): field(DrawConfig, n) for n in ("trials", "tau", "kappa", "seed")},
    # finetune: a phase-2 run of the decoder on E
    ("finetune", "epochs"): field(TrainConfig, "finetune_epochs"),
    **{("finetune", n): field(TrainConfig, n) for n in ("batch_size", "lr", "seed")},
    ("finetune", "split"): SPLIT,
    **{("enumerate", n): field(EnumerateConfig, n) for n in ("rho", "count_only", "max_images", "recon_search",
                                                             "near_copies_only", "full_support", "tau", "kappa",
                                                             "gammas", "batch")},
    ("enumerate", "train_spec"): field(EnumerateConfig, "train"),
    ("enumerate", "limit"): field(EnumerateConfig, "train_limit"),
    ("enumerate", "split"): field(EnumerateConfig, "train_split"),
    **{("sample", n): field(SampleConfig, n) for n in ("strategy", "rho", "tau", "kappa", "n_samples", "seed",
                                                       "network_epochs", "translation_invariant", "full_context")},
    ("audit", "gammas"): param(audit, "gammas"),
    **{("audit", n): field(AuditConfig, n) for n in ("ct_cells", "ct_holdout")},
    **{("audit", n): field(AuditFiles, n) for n in ("split", "generated_split", "test_split", "limit",
                                                    "generated_limit", "test_limit")},
    ("audit", "test_spec"): field(AuditFiles, "test"),
    # certify: the job's options, flat (fscert.certify.OPTION_FIELDS) and its own
    **{("certify", n): job(n) for n in (*OPTION_FIELDS, "data", "split", "draw_finetune_epochs", "test",
                                        "test_split", "test_limit")},
    ("certify", "limit"): job("n_train"),
    ("certify", "pad"): field(Fit, "pad"),
    ("report", "split"): SPLIT,
    ("nfig train", "order"): field(NFIGConfig, "order"),
    ("nfig train", "seed"): field(NFIGConfig, "seed"),
    ("nfig train", "split"): SPLIT,
    ("nfig sample", "n"): field(SampleConfig, "n_samples"),
    **{("nfig sample", n): param(sample_nfig, n) for n in ("cfg", "top_k", "top_p", "seed", "batch_size")},
}

#: (command, parameter name) → why its default belongs to the CLI alone
CLI_ONLY: dict[tuple[str, str], str] = {
    ("nfig train", "data"): "DATA may be left out: the bundled mnist is trained on; no library config holds a "
                            "data set for NFIG (train_nfig takes images)",
}


def leaf_commands() -> list[tuple[str, click.Command]]:
    return cli.leaf_commands()


def cli_params() -> dict[tuple[str, str], click.Parameter]:
    return {(path, p.name): p for path, cmd in leaf_commands() for p in cmd.params}


def has_default(p: click.Parameter) -> bool:
    return p.default is not None and p.default is not _UNSET


def same(cli_value: Any, lib_value: Any) -> bool:
    if isinstance(cli_value, (tuple, list)) and isinstance(lib_value, (tuple, list)):
        return len(cli_value) == len(lib_value) and all(same(a, b) for a, b in zip(cli_value, lib_value))
    return type(cli_value) is type(lib_value) and cli_value == lib_value


@pytest.mark.parametrize("key", sorted(SOURCES), ids=[f"{c}:{n}" for c, n in sorted(SOURCES)])
def test_cli_default_equals_the_library_default(key):
    params = cli_params()
    assert key in params, f"{key} is mapped but is no parameter of the CLI"
    what, lib = SOURCES[key]
    assert same(params[key].default, lib()), f"fscert {key[0]} {key[1]}: CLI {params[key].default!r}, {what} {lib()!r}"


def test_every_default_is_mapped_or_cli_only():
    missing = sorted(k for k, p in cli_params().items() if has_default(p) and k not in SOURCES and k not in CLI_ONLY)
    assert not missing, f"CLI defaults with no library source: {missing}"
    assert not set(SOURCES) & set(CLI_ONLY)
    assert set(CLI_ONLY) <= set(cli_params()), "a CLI-only entry names no parameter"


def test_gammas_have_one_source():
    """γ = 25 and 30 dB (Eq. 9–10): one constant that every config and command reads."""
    assert DEFAULT_GAMMAS == (25.0, 30.0)
    assert EnumerateConfig().gammas is DEFAULT_GAMMAS and CertifyConfig().gammas is DEFAULT_GAMMAS
    assert inspect.signature(audit).parameters["gammas"].default is DEFAULT_GAMMAS
    assert all(p.default == DEFAULT_GAMMAS for (c, n), p in cli_params().items() if n == "gammas")


def test_sampler_noise_is_the_draws():
    assert (SampleConfig.tau, SampleConfig.kappa) == (DrawConfig.tau, DrawConfig.kappa)


def _changed(got: Any, default: Any) -> dict:
    return {f.name: getattr(got, f.name) for f in dataclasses.fields(got)
            if getattr(got, f.name) != getattr(default, f.name)}


def test_certify_composes_the_components_with_its_preset_only():
    """A default `fscert certify` job differs from the components' own defaults by its preset alone."""
    j = CertifyConfig()
    assert _changed(j.model, AEConfig()) == {k: v for k, v in MODEL_PRESET.items() if getattr(AEConfig(), k) != v}
    assert _changed(j.training, TrainConfig()) == {k: v for k, v in TRAINING_PRESET.items()
                                                   if getattr(TrainConfig(), k) != v}
    assert _changed(j.draws, DrawConfig()) == {}
    assert _changed(j.enumeration, EnumerateConfig()) == {k: v for k, v in ENUMERATION_PRESET.items()
                                                          if getattr(EnumerateConfig(), k) != v}
    assert (j.n_train, j.draw_finetune_epochs) == (N_TRAIN, DRAW_FINETUNE_EPOCHS)
    # the demo's settings (README: `make demo`, with --pad): 64 images, one latent channel on 4×4-pixel
    # cells (1×8×8 at 32×32), hidden 256, 600 + 100 epochs, 10 trials at τ = 1.1, κ = 0.5, 150 fine-tune
    # epochs, ρ = 4, γ = 25 and 30 dB, seed 0
    assert j.latent_hw is None and j.fit == Fit()
    assert AEConfig.for_images((1, 32, 32), j.latent_hw, j.model).latent_hw == (8, 8)
    assert (j.n_train, j.latent_channels, 8, j.hidden, j.epochs, j.finetune_epochs, j.trials, j.tau,
            j.kappa, j.draw_finetune_epochs, j.rho, j.gammas, j.seed) == \
        (64, 1, 8, 256, 600, 100, 10, 1.1, 0.5, 150, 4, (25.0, 30.0), 0)


def test_certify_flat_options_set_the_component_fields():
    j = CertifyConfig(hidden=16, seed=3, train_tau=0.5, tau=1.2, gammas=[20, 30.0], rho=2)
    assert j.model.hidden == 16 and j.training.seed == j.draws.seed == 3
    assert (j.training.tau, j.draws.tau) == (0.5, 1.2) and j.enumeration.gammas == (20, 30.0)
    j.trials = 3
    assert j.draws.trials == 3 and j.trials == 3 and j.enumeration.rho == 2
    m, t, d, e = j.components((3, 32, 32), max_memory=2**30)
    assert m.image_channels == 3 and j.model.image_channels == 1             # the job itself is unchanged
    assert CertifyConfig(latent_hw=(7, 14)).components((1, 28, 28))[0].latent_hw == (7, 14)
    assert (e.train, e.train_limit, e.train_split, e.max_memory) == ("mnist", 64, "train", 2**30)
    assert j.enumeration.train is None and d == j.draws and t == j.training
    with pytest.raises(TypeError, match="unexpected options: nope"):
        CertifyConfig(nope=1)
