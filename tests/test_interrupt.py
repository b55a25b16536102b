"""Real signals: Ctrl-C (SIGINT), a kill (SIGTERM) or SIGKILL during `train`, `sample`,
`enumerate` and `certify` leaves no corrupt output.

Each command is the real CLI in a child process. The test waits until the child is demonstrably
mid-work (a progress bar that has advanced, a stage line on stderr), never for a fixed time, then
signals it. Properties:

* SIGINT: exit 130, one `error:` line, no traceback, no output, no temporary file or folder;
* SIGTERM: the same (the entry point calls :func:`fscert.errors.install_signal_handlers`), exit 143;
* SIGKILL (cannot be caught): no output, or with --force the old output intact; temporary
  leftovers are allowed (recorded in the report's properties) and a rerun is not confused by them;
* `enumerate --resume` after a kill gives a byte-identical certificate.

The settings make every command run for minutes if left alone; the child is killed well before.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fscert.fit import Fit
from fscert.errors import Terminated, install_signal_handlers

from fscert.fileio import atomic_dir, atomic_path, remove_temporaries, replace_tree

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pseudo-terminals"),
              pytest.mark.usefixtures("one_torch_thread")]

TIMEOUT = 180          # seconds: only against hangs; nothing below depends on how fast a machine is

# The child: the CLI's real entry point (what the `fscert` script runs). Signal dispositions are
# reset first: a child of a non-interactive shell inherits SIGINT ignored, and Python then never
# raises KeyboardInterrupt.
BOOT = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
for s in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_DFL)
sys.argv[0] = "fscert"
from fscert_cli.main import main
main()
"""


class Child:
    """`fscert ARGS` in a child process; stdout and stderr are read as they come.

    With ``tty``, stderr is a pseudo-terminal, so that the commands that show progress bars only
    on a terminal show them. Its other end stays open here until the child has ended and all it
    wrote is read (Linux may drop unread pseudo-terminal output once every writer is closed)."""

    def __init__(self, args, cwd: Path, tty: bool = False):
        env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="100", OMP_NUM_THREADS="1")   # tiny models: 1 thread
        self._master = self._slave = None
        if tty:
            import fcntl
            import pty
            import struct
            import termios

            self._master, self._slave = pty.openpty()
            fcntl.ioctl(self._slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        cmd = [sys.executable, "-c", BOOT, *map(str, args)]
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._slave if tty else subprocess.PIPE)
        self._out, self._err = bytearray(), bytearray()
        self._ended = threading.Event()
        err_fd = self._master if tty else self.proc.stderr.fileno()
        self._threads = [threading.Thread(target=self._pump, args=(fd, buf), daemon=True)
                         for fd, buf in ((self.proc.stdout.fileno(), self._out), (err_fd, self._err))]
        for t in self._threads:
            t.start()

    def _pump(self, fd: int, buf: bytearray) -> None:
        import select

        while True:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                if self._ended.is_set():      # the child has ended and nothing is left to read
                    return
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk

    @property
    def stderr(self) -> str:
        return bytes(self._err).decode(errors="replace")

    @property
    def stdout(self) -> str:
        return bytes(self._out).decode(errors="replace")

    def wait_for(self, ready, what: str) -> None:
        """Poll until ``ready()``; fail clearly if the child ends first or nothing happens in TIMEOUT s."""
        deadline = time.monotonic() + TIMEOUT
        while not ready():
            if self.proc.poll() is not None:
                self.finish()
                pytest.fail(f"the command ended (exit {self.proc.returncode}) before {what}; the settings are "
                            f"meant to keep it busy far longer.\nstderr: {self.stderr[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"no sign of {what} after {TIMEOUT} s.\nstderr: {self.stderr[-2000:]}")
            time.sleep(0.02)

    def signal(self, sig: int) -> int:
        self.proc.send_signal(sig)
        return self.finish()

    def finish(self) -> int:
        try:
            rc = self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            self._close()
            pytest.fail(f"the command did not end within {TIMEOUT} s of the signal.\nstderr: {self.stderr[-2000:]}")
        self._close()
        return rc

    def _close(self) -> None:
        self._ended.set()
        for t in self._threads:
            t.join(TIMEOUT)
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def progress(text: str, desc: str) -> int:
    """The furthest count ``n`` of tqdm bar ``desc`` ("desc:  3%|▍  | n/N [...]"), 0 if none."""
    counts = [int(n) for n in re.findall(re.escape(desc) + r":\s*\d+%\|[^|]*\|\s*(\d+)/\d+", text)]
    return max(counts, default=0)


def leftovers(folder: Path, name: str) -> list[str]:
    """Temporary files and folders of output ``name`` (``.NAME.XXXX.tmp``, ``.NAME.XXXX``, ...)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


def assert_clean_interrupt(rc: int, stderr: str) -> None:
    """Ctrl-C: exit 130 and exactly one line `error: ...` on a line of its own, no traceback."""
    lines = re.split(r"[\r\n]+", stderr)
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert rc == 130, f"exit {rc}\n{stderr[-2000:]}"
    assert len(errors) == 1 and "interrupted" in errors[0], stderr[-2000:]
    assert "error:" not in "".join(ln for ln in lines if not ln.startswith("error:")), stderr[-2000:]
    assert "Traceback" not in stderr


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (or the file itself) with its bytes."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def record(request, name: str, value) -> None:
    """Keep a fact in the test report (junit XML properties), e.g. what a SIGKILL left behind."""
    request.node.user_properties.append((name, repr(value)))


def invoke(*args):
    from fscert_cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


# ----------------------------------------------------------------------------- inputs

N_TRAIN = 12


def enum_args(d: Path) -> list:
    """`fscert enumerate` of E with the wide model; --batch 1: a checkpoint every 4 rows."""
    return ["enumerate", "--latents", d / "e.h5", "--rho", 2, "--model", d / "m.pt", "--train", "mnist",
            "--limit", N_TRAIN, "--batch", 1]


PIPE = ["--n-train", 8, "--epochs", 2, "--finetune-epochs", 1, "--hidden", 16, "--trials", 2, "--rho", 4]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """An untrained 1×8×8 model, wide enough that decoding takes a few milliseconds an image,
    12 latents, a drawn E of 535 reachable latents and the certificate of an uninterrupted
    `enumerate` of it (ref.h5)."""
    import torch

    from fscert.autoencoder import AEConfig, LocalAutoencoder, save_model
    from fscert.latents import write_latents

    d = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    save_model(LocalAutoencoder(AEConfig(latent_channels=1, hidden=2048)), d / "m.pt")   # decoding: ~5 ms an image
    rng = np.random.default_rng(0)
    base = rng.choice(np.array([-1, 1], np.int8), size=(3, 1, 8, 8))
    write_latents(d / "l.h5", base[rng.integers(0, 3, N_TRAIN)], {"data": "mnist", "limit": N_TRAIN})
    r = invoke("draw", "--latents", d / "l.h5", "--trials", 16, "--tau", 1.08, "--seed", 0, "--out", d / "e.h5")
    assert r.exit_code == 0, r.output
    r = invoke(*enum_args(d), "--out", d / "ref.h5")
    assert r.exit_code == 0, r.output
    return d


@pytest.fixture
def work(inputs, tmp_path):
    """A fresh folder holding copies of the inputs."""
    for name in ("m.pt", "l.h5", "e.h5"):
        shutil.copy(inputs / name, tmp_path / name)
    return tmp_path


def same_certificate(a: Path, b: Path) -> None:
    from fscert.certificate import read_certificate

    ca, cb = read_certificate(a), read_certificate(b)
    assert ca.attrs["content_sha256"] == cb.attrs["content_sha256"]
    for name, arr in ca.datasets().items():
        assert arr.tobytes() == cb.datasets()[name].tobytes(), name


# ----------------------------------------------------------------------------- train


def test_train_ctrl_c_leaves_nothing(work):
    before = sorted(os.listdir(work))
    with Child(["train", "mnist", "--out", "m2.pt", "--limit", 24, "--epochs", 100000, "--hidden", 16,
                "--batch-size", 8], work, tty=True) as c:
        c.wait_for(lambda: progress(c.stderr, "train") >= 2, "two training epochs")
        rc = c.signal(signal.SIGINT)
    assert_clean_interrupt(rc, c.stderr)
    assert sorted(os.listdir(work)) == before       # no model, no curves, no temporary file


def test_train_sigkill_with_force_keeps_the_old_model(work, request):
    from fscert.autoencoder import load_model, model_sha256

    old = snapshot(work / "m.pt")
    old_hash = model_sha256(load_model(work / "m.pt"))
    with Child(["train", "mnist", "--out", "m.pt", "--force", "--limit", 24, "--epochs", 100000, "--hidden", 16,
                "--batch-size", 8], work, tty=True) as c:
        c.wait_for(lambda: progress(c.stderr, "train") >= 2, "two training epochs")
        rc = c.signal(signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert snapshot(work / "m.pt") == old and model_sha256(load_model(work / "m.pt")) == old_hash
    left = leftovers(work, "m.pt")
    record(request, "leftovers_after_sigkill", left)
    r = invoke("train", "mnist", "--out", work / "m.pt", "--force", "--limit", 8, "--epochs", 1,
               "--finetune-epochs", 1, "--hidden", 16, "--batch-size", 8)
    assert r.exit_code == 0, r.output
    assert load_model(work / "m.pt").config.hidden == 16 and (work / "m.history.json").exists()
    assert leftovers(work, "m.pt") == left                    # the rerun neither used nor tripped on them


# ----------------------------------------------------------------------------- sample


def test_sample_ctrl_c_leaves_neither_latents_nor_png(work):
    before = sorted(os.listdir(work))
    with Child(["sample", "--latents", "l.h5", "--model", "m.pt", "--strategy", "network", "--network-epochs",
                1000000, "-n", 8, "--out", "s.h5"], work, tty=True) as c:
        c.wait_for(lambda: progress(c.stderr, "train sampler") >= 2, "two sampler-network epochs")
        rc = c.signal(signal.SIGINT)
    assert_clean_interrupt(rc, c.stderr)
    assert sorted(os.listdir(work)) == before


# ----------------------------------------------------------------------------- enumerate


def rows_done(checkpoint: Path) -> int:
    """Rows decoded according to the checkpoint an `enumerate` left (-1: unreadable, as when it
    was killed in the middle of writing it)."""
    import h5py

    try:
        with h5py.File(checkpoint, "r") as f:
            return int(f.attrs["n_done"])
    except Exception:                                           # noqa: BLE001 - any torn state
        return -1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_enumerate_interrupted_while_decoding_resumes_to_an_identical_certificate(inputs, work, sig, request,
                                                                                 monkeypatch):
    """Signal the command once two chunks of images are decoded and checkpointed (of 134, seconds
    of work): Ctrl-C ends it cleanly and keeps the checkpoint; after SIGKILL, `enumerate --resume`
    decodes only the rest and gives the certificate of the uninterrupted run, byte for byte."""
    import fscert.blocks
    from fscert.certificate import read_certificate

    total = len(read_certificate(inputs / "ref.h5").latents)
    assert total >= 400, "too few chunks for the signal to land while decoding"
    partial = work / "c.h5.partial.h5"
    with Child([*enum_args(work), "--out", work / "c.h5"], work, tty=True) as c:
        c.wait_for(lambda: progress(c.stderr, "decode") >= 2, "two chunks decoded and checkpointed")
        rc = c.signal(sig)
    assert not (work / "c.h5").exists()
    assert partial.exists()                                     # the checkpoint that --resume continues from
    done = rows_done(partial)
    if sig == signal.SIGINT:
        assert_clean_interrupt(rc, c.stderr)
        assert leftovers(work, "c.h5") == []
        assert 8 <= done < total
        return                                                  # resuming after Ctrl-C: tests/test_certify.py
    assert rc == -signal.SIGKILL
    assert done < total
    record(request, "leftovers_after_sigkill", leftovers(work, "c.h5"))
    record(request, "checkpoint_rows_after_sigkill", done)       # -1: killed while writing it
    real, rows = fscert.blocks.decode_canonical, []
    monkeypatch.setattr(fscert.blocks, "decode_canonical", lambda m, z, **k: rows.append(len(z)) or real(m, z, **k))
    r = invoke(*enum_args(work), "--out", work / "c.h5", "--resume")
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output and "starting from the beginning" not in r.output
    assert sum(rows) == total - max(done, 0)                    # only what was missing was decoded
    same_certificate(work / "c.h5", inputs / "ref.h5")
    assert not partial.exists()


@pytest.mark.parametrize("cut", ["empty", "truncated", "n_done-missing", "garbage"])
def test_resume_from_a_checkpoint_cut_short_starts_again(work, cut, monkeypatch):
    """A checkpoint cut short (a kill in the middle of writing it, a full disk) is never trusted
    and never crashes `--resume`: decoding starts again and the certificate is still identical."""
    import h5py
    import torch

    import fscert.blocks
    from fscert.autoencoder import AEConfig, LocalAutoencoder
    from fscert.enumerate import EnumerateConfig, Inputs, certify
    from fscert.data import load_images
    from fscert.latents import read_latents

    torch.manual_seed(0)
    model = LocalAutoencoder(AEConfig(latent_channels=1, hidden=8))              # small and few latents: fast
    E = read_latents(work / "e.h5")
    inputs = Inputs(type(E)(E.latents[:12], E.counts[:12], E.source_index[:12], E.attrs), model,
                    load_images("mnist", limit=N_TRAIN, fit=Fit(pad=True)))
    cfg = EnumerateConfig(rho=2, train="mnist", train_limit=N_TRAIN, batch=1)
    ref = certify(inputs, cfg)
    real, rows = fscert.blocks.decode_canonical, []

    def decode(m, z, **k):
        rows.append(len(z))
        if len(rows) == 2:
            raise KeyboardInterrupt                                              # Ctrl-C in the second chunk
        return real(m, z, **k)

    ck = work / "c.h5.partial.h5"
    monkeypatch.setattr(fscert.blocks, "decode_canonical", decode)
    with pytest.raises(KeyboardInterrupt):
        certify(inputs, cfg, checkpoint=ck)
    data = ck.read_bytes()
    if cut == "empty":
        ck.write_bytes(b"")
    elif cut == "truncated":
        ck.write_bytes(data[: len(data) // 2])
    elif cut == "garbage":
        ck.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    else:
        with h5py.File(ck, "a") as f:
            del f.attrs["n_done"]
    rows.clear()
    monkeypatch.setattr(fscert.blocks, "decode_canonical", lambda m, z, **k: rows.append(len(z)) or real(m, z, **k))
    got = certify(inputs, cfg, checkpoint=ck)
    assert sum(rows) == len(ref.latents)                                         # started again
    for name, arr in ref.datasets().items():
        assert arr.tobytes() == got.datasets()[name].tobytes(), name


# ----------------------------------------------------------------------------- certify (the pipeline)

LONG_STAGE_4 = ["--draw-finetune-epochs", 1000000]                 # stage 4 runs until the signal


def hidden(folder: Path) -> list[str]:
    """Entries whose names start with '.': the temporaries of atomic writes (none are expected)."""
    return sorted(p.name for p in folder.rglob(".*"))


def check_interrupted_run(work: Path, before: list[str], stderr: str) -> None:
    """No OUT; OUT.partial holds the finished stages 1–3 and no temporary; the user is told how to resume."""
    assert sorted(os.listdir(work)) == sorted([*before, "run.partial"])
    names = set(os.listdir(work / "run.partial"))
    assert {"model.pt", "latents.h5", "empirical.h5"} <= names and "model_ft.pt" not in names
    assert hidden(work / "run.partial") == []
    assert "--resume" in stderr


def test_certify_ctrl_c_keeps_only_the_finished_stages(work):
    before = sorted(os.listdir(work))
    with Child(["certify", "mnist", "--out", "run", *PIPE, *LONG_STAGE_4], work) as c:
        c.wait_for(lambda: "[4/7]" in c.stderr, "stage 4 (stages 1–3 written in run.partial)")
        rc = c.signal(signal.SIGINT)
    assert_clean_interrupt(rc, c.stderr)
    check_interrupted_run(work, before, c.stderr)


def test_certify_sigterm_is_handled_like_ctrl_c(work):
    """The entry point turns SIGTERM into an interrupt: exit 143, one line, the same clean-up."""
    before = sorted(os.listdir(work))
    with Child(["certify", "mnist", "--out", "run", *PIPE, *LONG_STAGE_4], work) as c:
        c.wait_for(lambda: "[4/7]" in c.stderr, "stage 4 (stages 1–3 written in run.partial)")
        rc = c.signal(signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM, f"exit {rc}: killed by the signal instead of cleaning up?"
    errors = [ln for ln in re.split(r"[\r\n]+", c.stderr) if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in c.stderr, c.stderr[-2000:]
    check_interrupted_run(work, before, c.stderr)


def test_certify_sigkill_with_force_keeps_the_old_folder_and_a_rerun_works(inputs, work, request):
    from fscert.autoencoder import load_model
    from fscert.certificate import read_certificate

    old = work / "run"
    old.mkdir()
    shutil.copy(inputs / "ref.h5", old / "cert.h5")
    shutil.copy(inputs / "m.pt", old / "model.pt")
    (old / "summary.json").write_text("{}")
    before = snapshot(old)
    with Child(["certify", "mnist", "--out", "run", "--force", *PIPE, *LONG_STAGE_4], work) as c:
        c.wait_for(lambda: "[4/7]" in c.stderr, "stage 4 (stages 1–3 written in run.partial)")
        rc = c.signal(signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert snapshot(old) == before                            # the old output, untouched and readable
    read_certificate(old / "cert.h5")
    load_model(old / "model.pt")
    left = [*leftovers(work, "run"), *(["run.partial"] if (work / "run.partial").exists() else [])]
    record(request, "leftovers_after_sigkill", left)
    r = invoke("certify", "mnist", "--out", work / "run", "--force", *PIPE, "--draw-finetune-epochs", 1)
    assert r.exit_code == 0, r.output
    new = read_certificate(work / "run" / "cert.h5")
    assert new.attrs["content_sha256"] != read_certificate(inputs / "ref.h5").attrs["content_sha256"]
    assert (work / "run" / "report" / "index.html").exists()
    assert sorted(os.listdir(work)) == ["e.h5", "l.h5", "m.pt", "run"]     # the stale run.partial is gone
    assert hidden(work / "run") == []


def test_certify_resume_after_a_kill_mid_write_leaves_no_temporaries(tmp_path, monkeypatch):
    """A SIGKILL in the middle of an atomic write leaves `.NAME.XXXXXXXX.tmp` (or a `.NAME.XXXXXXXX`
    folder) in OUT.partial; --resume must not carry it into OUT."""
    import fscert.training
    from fscert.certify import CertifyConfig, run_certify

    job = CertifyConfig(n_train=8, epochs=2, finetune_epochs=1, draw_finetune_epochs=1, hidden=16, trials=2)

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    real = fscert.training.finetune_decoder
    monkeypatch.setattr(fscert.training, "finetune_decoder", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_certify(job, tmp_path / "run", progress=False)
    monkeypatch.setattr(fscert.training, "finetune_decoder", real)
    partial = tmp_path / "run.partial"
    (partial / ".model_ft.pt.k1ll3d00.tmp").write_bytes(b"half a model")       # what a kill mid-write leaves
    (partial / ".report.k1ll3d00").mkdir()
    (partial / ".report.k1ll3d00" / "index.html").write_text("half a report")
    run_certify(job, tmp_path / "run", progress=False, resume=True)
    assert hidden(tmp_path / "run") == []


def test_certify_force_interrupted_while_replacing_never_leaves_a_half_removed_folder(tmp_path, monkeypatch):
    import fscert.certify
    from fscert.certify import CertifyConfig, run_certify

    out = _old_run(tmp_path)
    old = snapshot(out)
    real = shutil.rmtree

    def dying_rmtree(path, *a, **k):
        if Path(path) != out:
            return real(path, *a, **k)
        next(p for p in out.rglob("*") if p.is_file()).unlink()                # remove one file, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(fscert.certify.shutil, "rmtree", dying_rmtree)
    job = CertifyConfig(n_train=8, epochs=2, finetune_epochs=1, draw_finetune_epochs=1, hidden=16, trials=2)
    with contextlib.suppress(KeyboardInterrupt):      # replace_tree never removes OUT itself: no interrupt
        run_certify(job, out, force=True, progress=False)
    now = snapshot(out)
    assert now == old or {"cert.h5", "summary.json", "report/index.html"} <= set(now), sorted(now)


# ----------------------------------------------------------------------------- in-process units


@pytest.fixture
def saved_handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_install_signal_handlers_turns_a_kill_into_an_interrupt(saved_handlers, sig):
    signal.signal(sig, signal.SIG_DFL)
    install_signal_handlers()
    with pytest.raises(KeyboardInterrupt) as e:
        os.kill(os.getpid(), sig)
        for _ in range(1000):                                 # the handler runs between bytecodes
            time.sleep(0.001)
    assert isinstance(e.value, Terminated) and e.value.signum == sig


def test_install_signal_handlers_keeps_an_ignored_signal_ignored(saved_handlers):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)               # as under nohup
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    install_signal_handlers()
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)


def _old_run(tmp_path: Path) -> Path:
    old = tmp_path / "run"
    (old / "report").mkdir(parents=True)
    (old / "cert.h5").write_bytes(b"old certificate")
    (old / "report" / "index.html").write_text("old report")
    return old


def test_atomic_dir_interrupted_between_its_renames_puts_the_old_output_back(tmp_path, monkeypatch):
    import fscert.fileio

    old = _old_run(tmp_path)
    before = snapshot(old)
    real = os.replace

    def replace(src, dst):
        if Path(dst) == old and Path(src).name.startswith(".run."):   # the new folder moving in
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(fscert.fileio.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(old, force=True) as tmp:
            (tmp / "cert.h5").write_bytes(b"new certificate")
    assert snapshot(old) == before
    assert leftovers(tmp_path, "run") == []


def test_replace_tree_never_leaves_a_half_removed_old_output(tmp_path, monkeypatch):
    """Interrupted while the old output is being removed: the new one is already complete in place."""
    import fscert.fileio

    old = _old_run(tmp_path)
    new = tmp_path / ".run.n3wn3wn3"
    new.mkdir()
    (new / "cert.h5").write_bytes(b"new certificate")
    real = shutil.rmtree

    def dying_rmtree(path, ignore_errors=False):
        next(p for p in Path(path).rglob("*") if p.is_file()).unlink()    # remove one file, then Ctrl-C
        monkeypatch.setattr(fscert.fileio.shutil, "rmtree", real)
        raise KeyboardInterrupt

    monkeypatch.setattr(fscert.fileio.shutil, "rmtree", dying_rmtree)
    with pytest.raises(KeyboardInterrupt):
        replace_tree(new, old)
    assert snapshot(old) == {"cert.h5": b"new certificate"}


def test_remove_temporaries_removes_only_what_atomic_writes_leave(tmp_path):
    for name in (".model.pt.ab_d1234.tmp", "model.pt", ".job.json", "keep.tmp"):
        (tmp_path / name).write_text("x")
    for name in (".report.k2j3h4g5", ".run.abcdefgh.old", "report"):
        (tmp_path / name).mkdir()
    assert remove_temporaries(tmp_path) == [".model.pt.ab_d1234.tmp", ".report.k2j3h4g5", ".run.abcdefgh.old"]
    assert sorted(os.listdir(tmp_path)) == [".job.json", "keep.tmp", "model.pt", "report"]


def test_outputs_get_the_usual_permissions(tmp_path):
    """Outputs get the mode the umask gives (mkstemp and mkdtemp alone would make them private)."""
    mask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.h5") as tmp:
            tmp.write_bytes(b"x")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "f").write_bytes(b"y")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.h5").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
