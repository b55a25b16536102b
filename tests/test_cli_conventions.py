"""Conventions every command follows (issue 12 item 8): `--json -` puts the JSON, and only the
JSON, on stdout and never makes a file named "-"; `--quiet` leaves stderr empty on success; off a
terminal, long work prints stage and heartbeat lines with durations, never bar redraws; one name
per option across commands (old spellings still work, unseen in --help)."""
from __future__ import annotations

import io
import json
import sys
import threading

import click
import pytest
from click.testing import CliRunner

from fscert import progress as P
from fscert_cli.main import cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TRAIN = ["--limit", "8", "--epochs", "2", "--finetune-epochs", "1", "--hidden", "8", "--batch-size", "8"]
CERT = ["--limit", "8", "--epochs", "2", "--finetune-epochs", "1", "--draw-finetune-epochs", "1", "--hidden", "8",
        "--trials", "2"]


def invoke(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def commands():
    """(path, command) of every leaf command, e.g. ("nfig sample", <Command>)."""
    return cli.leaf_commands()


def no_bar_redraws(text: str) -> bool:
    return "\r" not in text and "%|" not in text


# ----------------------------------------------------------------------------- whole commands

@pytest.fixture(scope="module")
def certified(tmp_path_factory):
    """`fscert certify --limit 8 ... --json -` off a terminal, with a tiny progress interval."""
    d = tmp_path_factory.mktemp("cert")
    mp = pytest.MonkeyPatch()
    mp.chdir(d)
    mp.setenv(P.ENV_INTERVAL, "0.01")
    try:
        r = invoke(["certify", "mnist", "--out", "run", *CERT, "--json", "-"])
    finally:
        mp.undo()
    assert r.exit_code == 0, r.output
    return d, r


def test_certify_json_to_stdout_is_only_the_summary(certified):
    d, r = certified
    summary = json.loads(r.stdout)                              # stdout parses as a whole: nothing else there
    assert summary == json.loads((d / "run" / "summary.json").read_text())
    assert not (d / "-").exists()
    assert "reachable images:" in r.stderr                      # the summary lines moved to stderr


def test_certify_accepts_limit_and_records_it(certified):
    _, r = certified
    assert json.loads(r.stdout)["n_train"] == 8
    h = invoke(["certify", "--help"]).output
    assert "--limit" in h and "--n-train" not in h              # the old spelling works but is not shown


def test_certify_off_a_terminal_prints_stages_with_durations_and_no_bars(certified):
    _, r = certified
    err = r.stderr
    assert no_bar_redraws(err), err[:2000]
    for i in range(1, 8):
        assert f"[{i}/7] " in err, err
    assert err.count("done in ") >= 6, err                      # each stage's duration
    assert "  train: epoch " in err and " elapsed" in err       # the training's own lines


def test_certify_limit_errors_name_limit_and_suggest_nothing_else(tmp_path):
    r = invoke(["certify", "mnist", "--out", tmp_path / "o", "--limit", "0"])
    assert r.exit_code == 2 and "'--limit'" in r.stderr and "No such option" not in r.stderr, r.stderr
    r = invoke(["certify", "mnist", "--out", tmp_path / "o", "--n-train", "0"])       # the old spelling
    assert r.exit_code == 2 and "'--limit'" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_train_json_dash_and_quiet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke(["train", "mnist", "--out", "m.pt", *TRAIN, "--json", "-", "--quiet"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["model"] == "m.pt" and res["n_images"] == 8 and "psnr" in res["last_epoch"]
    assert r.stderr == ""                                        # --quiet: the result lines are in the JSON
    assert not (tmp_path / "-").exists() and (tmp_path / "m.pt").exists()


def test_train_off_a_terminal_prints_throttled_lines(tmp_path, monkeypatch):
    monkeypatch.setenv(P.ENV_INTERVAL, "0.001")
    r = invoke(["train", "mnist", "--out", tmp_path / "m.pt", *TRAIN])
    assert r.exit_code == 0, r.output
    assert no_bar_redraws(r.stderr), r.stderr[:2000]
    assert "  train: epoch 3/3, " in r.stderr, r.stderr
    assert r.stdout.startswith("trained on 8 images")            # results stay on stdout


def test_quiet_leaves_stderr_empty_on_success(tmp_path):
    r = invoke(["train", "mnist", "--out", tmp_path / "m.pt", *TRAIN, "-q"])
    assert r.exit_code == 0 and r.stderr == "", r.output
    assert r.stdout.startswith("trained on 8 images")            # results are still printed
    for args in (["encode", tmp_path / "m.pt", "mnist", "--limit", "8", "--out", tmp_path / "l.h5"],
                 ["draw", "--latents", tmp_path / "l.h5", "--trials", "2", "--out", tmp_path / "e.h5"],
                 ["finetune", tmp_path / "m.pt", tmp_path / "e.h5", "--train", "mnist", "--epochs", "1",
                  "--out", tmp_path / "f.pt"]):
        r = invoke([*args, "--quiet"])
        assert r.exit_code == 0 and r.stderr == "" and r.stdout, (args[0], r.output)
    r = invoke(["certify", "mnist", "--out", tmp_path / "run", *CERT, "-q"])
    assert r.exit_code == 0 and r.stderr == "", r.output
    assert "reachable images:" in r.stdout


def test_quiet_still_prints_errors(tmp_path):
    r = invoke(["encode", tmp_path / "missing.pt", "mnist", "--out", tmp_path / "l.h5", "--quiet"])
    assert r.exit_code == 1 and r.stderr.startswith("error:") and len(r.stderr.splitlines()) == 1, r.output


def test_out_dash_is_refused_and_makes_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["train", "mnist", *TRAIN, "--out", "-"], ["certify", "mnist", *CERT, "--out", "-"],
                 ["experiment", "training", "--quick", "--out", "-"]):
        r = invoke(args)
        assert r.exit_code == 2 and "standard output" in r.stderr, (args[0], r.output)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- option names

def test_every_command_has_quiet_and_out_is_o():
    for path, cmd in commands():
        names = {o: p for p in cmd.params for o in getattr(p, "opts", [])}
        assert "--quiet" in names and "-q" in names, path
        if "--out" in names:
            assert "-o" in names["--out"].opts, path


@pytest.mark.parametrize("option", ["--seed", "--limit", "--split", "--gamma", "--batch-size", "--force", "--lr"])
def test_one_meaning_per_option(option):
    """The same option has the same type and checks everywhere it appears (`audit` has its own
    review, tests/test_audit.py)."""
    seen = {}
    for path, cmd in commands():
        if path == "audit":
            continue
        for p in cmd.params:
            if option in getattr(p, "opts", []):
                t = p.type
                seen[path] = (type(t).__name__, getattr(t, "choices", None), getattr(t, "min", None),
                              p.callback.__name__ if p.callback else None, p.multiple)
    assert len(seen) >= 1 and len(set(seen.values())) == 1, seen


def test_seed_is_never_negative(tmp_path):
    for args in (["train", "mnist", "--out", tmp_path / "m.pt"], ["certify", "--out", tmp_path / "o"],
                 ["nfig", "train", "--out", tmp_path / "n.pt"], ["experiment", "training", "--out", tmp_path / "e"]):
        r = invoke([*args, "--seed", "-1"])
        assert r.exit_code == 2 and "--seed" in r.stderr, r.output


@pytest.mark.parametrize("command,old,new", [
    ("certify", "--n-train", "--limit"), ("enumerate", "--batch", "--batch-size"),
    ("finetune", "--data", "--train"), ("report", "--html", "--out"),
])
def test_old_spellings_are_hidden_aliases(command, old, new):
    cmd = cli.load_all()[command]
    p = next(p for p in cmd.params if old in getattr(p, "opts", []))
    assert new in p.opts                                          # the same option
    h = invoke([command, "--help"]).output
    assert new in h and old + " " not in h and old + "," not in h


# ----------------------------------------------------------------------------- fscert.progress

def test_lines_mode_throttles_and_estimates(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    p = P.Progress(total=4, desc="training", unit="epoch", show=P.LINES, interval=0)
    p.update()
    p.set_postfix(psnr="17.20")
    p.update()
    p.close()
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("  training: epoch 1/4, ") and "elapsed, about " in lines[0] and " left" in lines[0]
    assert lines[1].endswith(", psnr 17.20")
    buf.truncate(0)
    p = P.Progress(range(100), desc="x", show=P.LINES, interval=3600)      # throttled: no line within the hour
    assert sum(1 for _ in p) == 100 and buf.getvalue() == ""
    assert list(P.Progress(range(3), show=False)) == [0, 1, 2] and buf.getvalue() == ""


def test_lines_is_falsy_for_tqdm_only_code():
    assert not P.LINES and P.mode(P.LINES) == "lines" and not P.bars(P.LINES)
    assert P.mode(False) == P.mode(None) == "off"
    assert P.mode(True) == ("bar" if P.is_terminal() else "lines")


def test_heartbeat_speaks_after_silence_and_names_the_stage(monkeypatch):
    """The heartbeat's decision on a fake clock (no sleeping, no wall-clock dependence)."""
    monkeypatch.setattr(P, "_last_output", 100.0)
    monkeypatch.setattr(P, "_activity", [None, 0.0])
    assert P.heartbeat_line("certify", 90.0, 30.0, 120.0) is None          # 20 s of silence: quiet
    assert P.heartbeat_line("certify", 90.0, 30.0, 130.0) == "  certify: still working, 40 s elapsed"
    monkeypatch.setattr(P, "_activity", ["[5/7] enumerate", 110.0])
    assert P.heartbeat_line("certify", 90.0, 30.0, 130.0) == "  [5/7] enumerate: still working, 20 s elapsed"


def test_heartbeat_thread_lives_only_inside_the_block():
    def running() -> bool:
        return any(t.name == "fscert-heartbeat" and t.is_alive() for t in threading.enumerate())

    lines = []
    with P.heartbeat("certify", show=P.LINES, interval=3600, write=lines.append):
        assert running()
    assert not running() and lines == []                         # stopped (joined) with the block
    with P.heartbeat("x", show=False, interval=3600, write=lines.append):
        assert not running()                                     # --quiet: no thread at all
    assert lines == []


def test_format_seconds():
    assert [P.format_seconds(s) for s in (0.25, 12, 126, 5400)] == ["0.2 s", "12 s", "2.1 min", "1.5 h"]


def test_top_level_help_lists_every_command_with_its_own_short_help():
    """`fscert --help` lists commands without importing them (SHORT_HELP); each line is the
    command's own short help, and no command is missing."""
    from fscert_cli.main import SHORT_HELP

    cmds = cli.load_all()
    assert set(SHORT_HELP) == set(cmds)
    for name, cmd in cmds.items():
        assert cmd.get_short_help_str(limit=10**6) == SHORT_HELP[name], name


def test_top_level_help_imports_no_command_module():
    """`fscert --help` imports neither torch nor any command module (its start-up time is measured
    in tests/benchmarks/test_bench_startup.py)."""
    import subprocess
    import sys

    code = ("import sys; from fscert_cli.main import cli; from click.testing import CliRunner; "
            "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('fscert_cli.') and m not in "
            "('fscert_cli.main', 'fscert_cli.common', 'fscert_cli.log_lines')))")          # plumbing, no command
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
