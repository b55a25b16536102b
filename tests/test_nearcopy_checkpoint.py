"""An interrupted near-copy verdict continues from its checkpoint with the uninterrupted result."""
from __future__ import annotations

import numpy as np
import pytest

from fscert.blocks import decode_exact, generated_values
from fscert.nearcopy import NearCopyConfig, near_copy_search
from fscert.nearcopy_checkpoint import SearchCheckpoint
from tests.test_cluster_certify import assert_same_result
from tests.test_nearcopy import _case, _model


@pytest.fixture(scope="module")
def case():
    model = _model(2, 8, 3, False, seed=7)
    base, z, cnt, c = _case(2, 8, 2, seed=11, flips=0.02)
    train = generated_values(decode_exact(model, np.concatenate([base, -base[:1]])))   # one with no near-copy
    return z, cnt, model, train, c.dead_end_mass


@pytest.mark.parametrize("cfg", [dict(), dict(max_listed=2), dict(max_states=5)], ids=["listed", "intervals", "capped"])
def test_resumed_search_equals_the_uninterrupted_one(tmp_path, case, cfg):
    z, cnt, model, train, dead = case
    ncfg = NearCopyConfig(gammas=(22.0, 30.0), **cfg)
    want = near_copy_search(z, cnt, 2, model, train, ncfg, dead)
    ck = SearchCheckpoint(tmp_path / "search", "key-1")
    saved = []

    def save_then_stop(r):                          # Ctrl-C after two training images are saved
        SearchCheckpoint.save(ck, r)
        saved.append(r.index)
        if len(saved) == 2:
            raise KeyboardInterrupt
    ck.save = save_then_stop
    with pytest.raises(KeyboardInterrupt):
        near_copy_search(z, cnt, 2, model, train, ncfg, dead, checkpoint=ck)
    assert sorted(p.name for p in (tmp_path / "search").glob("t_*.npz")) == ["t_0.npz", "t_1.npz"]
    again = SearchCheckpoint(tmp_path / "search", "key-1")
    assert sorted(again.load()) == [0, 1]
    got = near_copy_search(z, cnt, 2, model, train, ncfg, dead, checkpoint=again)
    assert_same_result(got, want)
    assert sorted(again.load()) == list(range(len(train)))


def test_other_inputs_and_damaged_files_are_never_used(tmp_path, case):
    z, cnt, model, train, dead = case
    ncfg = NearCopyConfig(gammas=(22.0, 30.0))
    ck = SearchCheckpoint(tmp_path / "search", "key-1")
    want = near_copy_search(z, cnt, 2, model, train, ncfg, dead, checkpoint=ck)
    (tmp_path / "search" / "t_1.npz").write_bytes(b"PK\x03\x04 cut short")
    assert sorted(SearchCheckpoint(tmp_path / "search", "key-1").load()) == [0, 2, 3]    # t_1 searched again
    assert SearchCheckpoint(tmp_path / "search", "key-2").load() == {}                   # other inputs: emptied
    assert not list((tmp_path / "search").glob("t_*.npz"))
    got = near_copy_search(z, cnt, 2, model, train, ncfg, dead, checkpoint=SearchCheckpoint(tmp_path / "search", "k"))
    assert_same_result(got, want)


@pytest.mark.parametrize("stop", [2, 9], ids=["training-images", "reconstructions"])
def test_enumerate_resumes_the_searches(tmp_path, stop):
    """`fscert enumerate --near-copies-only` stopped by Ctrl-C after ``stop`` searches were saved
    (2: in the search of the 8 training images; 9: in the one over their reconstructions), then
    rerun with --resume: only the others are searched, the certificate's content equals an
    uninterrupted run's, and the checkpoint folders are gone."""
    from unittest import mock

    from click.testing import CliRunner

    from fscert.certificate import read_certificate
    from fscert.nearcopy import NearCopySearch
    from fscert_cli.main import cli
    from tests.test_cluster_certify import _certify

    run = _certify(tmp_path / "run", "--rho", "4")
    common = ["enumerate", "--latents", run / "empirical.h5", "--model", run / "model_ft.pt", "--train", "mnist",
              "--limit", "8", "--rho", 1, "--near-copies-only", "--train-latents", run / "latents.h5", "--quiet"]

    def enumerate_(out, *extra):
        return CliRunner().invoke(cli, [str(a) for a in common + ["--out", out, *extra]])

    def searches(*extra):
        with mock.patch.object(NearCopySearch, "run_one", autospec=True, side_effect=NearCopySearch.run_one) as spy:
            r = enumerate_(*extra)
        assert r.exit_code == 0, r.output
        return len(spy.call_args_list)

    full = searches(tmp_path / "one.h5")
    calls = []
    real_save = SearchCheckpoint.save

    def save_then_stop(self, r):
        real_save(self, r)
        calls.append(r.index)
        if len(calls) == stop:
            raise KeyboardInterrupt
    with mock.patch.object(SearchCheckpoint, "save", save_then_stop):
        r = enumerate_(tmp_path / "two.h5")
    assert r.exit_code != 0 and not (tmp_path / "two.h5").exists()
    kept = [tmp_path / "two.h5.partial.h5.search", tmp_path / "two.h5.partial.h5.search-recon"]
    assert [len(list(k.glob("t_*.npz"))) for k in kept] == ([2, 0] if stop == 2 else [8, 1])
    assert searches(tmp_path / "two.h5", "--resume") == full - stop    # the saved ones are not searched again
    a, b = read_certificate(tmp_path / "one.h5"), read_certificate(tmp_path / "two.h5")
    assert a.attrs["content_sha256"] == b.attrs["content_sha256"]
    assert not any(k.exists() for k in kept)


@pytest.mark.parametrize("cfg", [dict(), dict(max_listed=13)], ids=["listed", "some-unlisted"])
def test_merge_in_chunks_equals_one_pass(case, cfg, monkeypatch):
    """The merge decodes and compares the listed near-copies MERGE_ROWS at a time (bounded memory
    at millions of them): images, nearest training images, PSNR and flags are those of one pass,
    the union's counts too, its masses to float rounding."""
    import fscert.nearcopy as nc

    z, cnt, model, train, dead = case
    ncfg = NearCopyConfig(gammas=(22.0, 30.0), **cfg)
    want = near_copy_search(z, cnt, 2, model, train, ncfg, dead)
    assert len(want.latents) > 6 and (not cfg or any(not r.listed for r in want.per_train))
    monkeypatch.setattr(nc, "MERGE_ROWS", 3)
    got = near_copy_search(z, cnt, 2, model, train, ncfg, dead)
    for name in ("latents", "prob", "nearest_train", "psnr", "flags", "images", "pair_row", "pair_psnr"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    for key, u in want.union.items():
        for f, v in u.items():
            assert got.union[key][f] == (pytest.approx(v, rel=1e-12) if isinstance(v, float) else v), (key, f)
