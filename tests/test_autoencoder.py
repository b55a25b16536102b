"""The local decoder's receptive field is exactly R×R latent cells (DESIGN §3), and the
model file round-trips safely."""
import pickle

import numpy as np
import pytest
import torch

from fscert.autoencoder import AEConfig, LocalAutoencoder, decode_batched, load_model, save_model
from fscert.errors import FscertError

#: (image H×W, latent h×w, R, transition): the paper's 32×32 grids, then any size with integer
#: pixel blocks: 28×28 (MedMNIST) with 7×7 and 14×14 cells, 64×64, 25×25 with 5×5-px cells,
#: rectangular images and grids, and blocks that are not square (4×2 px)
CASES = [((32, 32), (8, 8), 3, False), ((32, 32), (8, 8), 1, False), ((32, 32), (8, 8), 5, False),
         ((32, 32), (16, 16), 3, False), ((32, 32), (32, 32), 3, False), ((32, 32), (8, 8), 3, True),
         ((32, 32), (16, 16), 5, True),
         ((28, 28), (7, 7), 3, False), ((28, 28), (14, 14), 3, True), ((64, 64), (8, 8), 3, False),
         ((64, 64), (16, 16), 3, True), ((25, 25), (5, 5), 3, False), ((32, 64), (8, 16), 3, False),
         ((28, 32), (7, 16), 3, True), ((24, 40), (6, 10), 5, False), ((20, 12), (5, 6), 3, False)]


def _config(image, latent, **kw) -> AEConfig:
    return AEConfig(image_size=image[0], image_width=image[1], latent_size=latent[0], latent_width=latent[1], **kw)


def changed_cells(model, z, y, x, ch):
    z2 = z.clone()
    z2[:, ch, y, x] *= -1
    with torch.no_grad():
        d = (model.decode_raw(z2) - model.decode_raw(z)).abs()[0].amax(0)      # H×W, before clamping
    ph, pw = model.config.patch_hw
    return d.reshape(d.shape[0] // ph, ph, d.shape[1] // pw, pw).amax((1, 3)) > 0   # changed per latent cell


@pytest.mark.parametrize("image,latent,r,transition", CASES)
def test_flipping_one_cell_changes_only_its_footprint(image, latent, r, transition):
    torch.manual_seed(0)
    cfg = _config(image, latent, latent_channels=3, receptive_field=r, hidden=16, transition=transition)
    model = LocalAutoencoder(cfg).eval()
    h, w = latent
    z = torch.where(torch.rand(1, 3, h, w) > 0.5, 1.0, -1.0)
    assert model.encode(torch.rand(2, 1, *image)).shape == (2, 3, h, w)
    assert model.decode(z).shape == (1, 1, *image)
    rng = np.random.default_rng(0)
    cells = [(0, 0), (h - 1, w - 1), (h // 2, w // 3), (0, w - 1), (h - 1, 0)]
    for y, x in cells + [(int(rng.integers(0, h)), int(rng.integers(0, w))) for _ in range(3)]:
        changed = changed_cells(model, z, y, x, ch=int(rng.integers(0, 3))).numpy()
        yy, xx = np.nonzero(changed)
        k = r // 2
        # nothing outside the R×R footprint changes...
        assert (np.abs(yy - y) <= k).all() and (np.abs(xx - x) <= k).all()
        # ...and the footprint is really used (random weights make every cell sensitive)
        expect = (min(y + k, h - 1) - max(y - k, 0) + 1) * (min(x + k, w - 1) - max(x - k, 0) + 1)
        assert changed.sum() == expect


@pytest.mark.parametrize("latent,layers", [(8, [(4, 2, 1), (4, 2, 1)]), (16, [(4, 2, 1), (3, 1, 1)]),
                                           (32, [(3, 1, 1), (3, 1, 1)])])
def test_square_32_encoder_is_tab_1_to_4(latent, layers):
    """At 32×32 the generalised encoder is exactly Tab. 1–4's (kernel, stride, padding) per layer."""
    enc = LocalAutoencoder(AEConfig(latent_size=latent)).encoder.net
    convs = [m for m in enc if isinstance(m, torch.nn.Conv2d)][:2]
    assert [(c.kernel_size, c.stride, c.padding) for c in convs] == [((k, k), (s, s), (p, p)) for k, s, p in layers]


def test_depth_to_space_is_pixel_shuffle_order():
    """The rectangular depth-to-space puts channel c·ph·pw + i·pw + j at pixel (i, j) of the block."""
    from fscert.autoencoder import depth_to_space

    y = torch.arange(2 * 3 * 6 * 2 * 5, dtype=torch.float32).view(2, 3 * 6, 2, 5)    # C = 3, ph = 2, pw = 3
    out = depth_to_space(y, 2, 3)
    for c, i, j, yy, xx in [(0, 0, 0, 0, 0), (2, 1, 2, 1, 4), (1, 0, 1, 1, 3)]:
        assert out[1, c, yy * 2 + i, xx * 3 + j] == y[1, c * 6 + i * 3 + j, yy, xx]
    sq = torch.rand(1, 8, 3, 3)
    assert torch.equal(depth_to_space(sq, 2, 2), torch.nn.functional.pixel_shuffle(sq, 2))


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
    for kw in ({"receptive_field": 2}, {"latent_size": 5}, {"latent_size": 32, "transition": True},
               {"image_size": 28, "latent_size": 8}, {"image_width": 30, "latent_width": 8}, {"image_size": 0},
               {"image_size": 25, "latent_size": 5, "transition": True}, {"latent_width": -2}):
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
