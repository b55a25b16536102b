"""The local decoder's receptive field is exactly R×R latent cells (DESIGN §3), and the
model file round-trips safely."""
import pickle

import numpy as np
import pytest
import torch

from fscert.autoencoder import AEConfig, LocalAutoencoder, decode_batched, load_model, save_model
from fscert.errors import FscertError

CASES = [(8, 3, False), (8, 1, False), (8, 5, False), (16, 3, False), (32, 3, False), (8, 3, True), (16, 5, True)]


def changed_cells(model, z, y, x, ch):
    z2 = z.clone()
    z2[:, ch, y, x] *= -1
    with torch.no_grad():
        d = (model.decode_raw(z2) - model.decode_raw(z)).abs()[0].amax(0)      # H×W, before clamping
    p = model.config.patch_size
    return d.reshape(d.shape[0] // p, p, d.shape[1] // p, p).amax((1, 3)) > 0   # changed per latent cell


@pytest.mark.parametrize("latent,r,transition", CASES)
def test_flipping_one_cell_changes_only_its_footprint(latent, r, transition):
    torch.manual_seed(0)
    cfg = AEConfig(latent_size=latent, latent_channels=3, receptive_field=r, hidden=16, transition=transition)
    model = LocalAutoencoder(cfg).eval()
    z = torch.where(torch.rand(1, 3, latent, latent) > 0.5, 1.0, -1.0)
    rng = np.random.default_rng(0)
    for y, x in [(0, 0), (latent - 1, latent - 1), (latent // 2, latent // 3)] + [tuple(rng.integers(0, latent, 2)) for _ in range(3)]:
        changed = changed_cells(model, z, y, x, ch=int(rng.integers(0, 3))).numpy()
        yy, xx = np.nonzero(changed)
        k = r // 2
        # nothing outside the R×R footprint changes...
        assert (np.abs(yy - y) <= k).all() and (np.abs(xx - x) <= k).all()
        # ...and the footprint is really used (random weights make every cell sensitive)
        expect = (min(y + k, latent - 1) - max(y - k, 0) + 1) * (min(x + k, latent - 1) - max(x - k, 0) + 1)
        assert changed.sum() == expect


def test_encode_is_pm_one_and_decode_in_unit_range():
    model = LocalAutoencoder(AEConfig(hidden=8)).eval()
    z = model.encode(torch.rand(4, 1, 32, 32))
    assert z.dtype == torch.int8 and set(z.unique().tolist()) <= {-1, 1}
    x = model.decode(z)
    assert x.shape == (4, 1, 32, 32) and 0 <= x.min() and x.max() <= 1


def test_save_load_round_trip(tmp_path):
    model = LocalAutoencoder(AEConfig(hidden=8, image_channels=3)).eval()
    save_model(model, tmp_path / "m.pt", extra={"note": "x"})
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.config == model.config
    z = np.where(np.random.default_rng(0).random((2, 7, 8, 8)) > 0.5, 1, -1).astype(np.int8)
    assert (decode_batched(model, z) == decode_batched(loaded, z)).all()


class Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch /tmp/fscert_pwned_marker",))


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path):
    import os

    marker = "/tmp/fscert_pwned_marker"
    if os.path.exists(marker):
        os.remove(marker)
    p = tmp_path / "evil.pt"
    torch.save({"format": "fscert-autoencoder", "payload": Evil()}, p)
    with pytest.raises(FscertError, match="pickled code"):
        load_model(p)
    assert not os.path.exists(marker)
    p2 = tmp_path / "evil.pkl"
    p2.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(FscertError):
        load_model(p2)
    assert not os.path.exists(marker)


def test_not_a_model_files(tmp_path):
    (tmp_path / "t.pt").write_text("hello")
    with pytest.raises(FscertError):
        load_model(tmp_path / "t.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(FscertError, match="not an fscert autoencoder"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(FscertError, match="not found"):
        load_model(tmp_path / "missing.pt")


def test_bad_configs_refused():
    for kw in ({"receptive_field": 2}, {"latent_size": 4}, {"latent_size": 32, "transition": True}):
        with pytest.raises(FscertError):
            AEConfig(**kw).validate()


def test_future_version_and_damaged_weights_refused(tmp_path):
    from fscert.autoencoder import MODEL_FORMAT, MODEL_VERSION, save_model

    m = LocalAutoencoder(AEConfig(latent_channels=1, latent_size=8, hidden=8))
    save_model(m, tmp_path / "m.pt")
    blob = torch.load(tmp_path / "m.pt", weights_only=True)
    torch.save({**blob, "version": MODEL_VERSION + 1}, tmp_path / "future.pt")
    with pytest.raises(FscertError, match=f"version {MODEL_VERSION + 1}"):
        load_model(tmp_path / "future.pt")
    sd = dict(blob["state_dict"])
    sd.pop(next(iter(sd)))
    torch.save({**blob, "state_dict": sd}, tmp_path / "short.pt")
    with pytest.raises(FscertError, match="weights do not match"):
        load_model(tmp_path / "short.pt")
    assert blob["format"] == MODEL_FORMAT
