"""Atomic file output: no command ever leaves a half-written file or folder.

Outputs are written to a temporary file (or folder) in the target folder and renamed into
place only on success; an interrupted or failed command removes its temporary. Killed
outright (SIGKILL), it leaves only names that :func:`remove_temporaries` recognises.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import FscertError


def check_output_path(path: str | os.PathLike, force: bool = False) -> Path:
    """Refuse to overwrite an existing output unless ``force``; the parent folder must exist."""
    p = Path(path)
    if p.exists() and not force:
        raise FscertError(f"output {p} already exists (use --force to overwrite)")
    if not p.parent.exists():
        raise FscertError(f"output folder {p.parent} does not exist")
    return p


def _mode(mode: int) -> int:
    """``mode`` less the umask: what ``open`` or ``mkdir`` would give (``mkstemp``/``mkdtemp`` give 0600/0700)."""
    try:
        with open("/proc/self/status") as f:           # Linux: read the umask without changing it
            for line in f:
                if line.startswith("Umask:"):
                    return mode & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mode & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success."""
    final = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, _mode(0o666))
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``path`` (an existing one only if
    ``force``) by :func:`replace_tree`, so ``path`` is never a half-removed or half-written folder."""
    final = Path(path)
    if final.exists() and not force:
        raise FscertError(f"output folder {final} already exists (use --force to overwrite)")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        os.chmod(tmp, _mode(0o777))
        yield tmp
        replace_tree(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_tree(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Rename folder (or file) ``src`` onto ``dst``, which may exist, in the same folder.

    The old ``dst`` is renamed aside first and removed only once ``src`` is in place; if this
    is interrupted between the two renames, the old ``dst`` is put back. So ``dst`` is at every
    moment the old output or the new one, never a half-removed one (after a SIGKILL in between,
    the old one is in ``.DST.XXXXXXXX.old/``)."""
    src, dst = Path(src), Path(dst)
    if not os.path.lexists(dst):
        os.replace(src, dst)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".old", dir=dst.parent))
    try:
        os.replace(dst, trash / "old")
        os.replace(src, dst)
    except BaseException:
        if os.path.lexists(trash / "old") and not os.path.lexists(dst):
            os.replace(trash / "old", dst)
        shutil.rmtree(trash, ignore_errors=True)
        raise
    shutil.rmtree(trash, ignore_errors=True)


_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}(\.tmp|\.old)?")


def remove_temporaries(folder: str | os.PathLike) -> list[str]:
    """Remove what :func:`atomic_path`, :func:`atomic_dir` and :func:`replace_tree` leave when
    killed outright (SIGKILL, power loss): ``.NAME.XXXXXXXX.tmp`` files, ``.NAME.XXXXXXXX``
    and ``.NAME.XXXXXXXX.old`` folders. Returns their names. Only for a folder that one run
    owns (such as ``OUT.partial``): elsewhere they may be another command's writes in progress."""
    removed = []
    for p in sorted(Path(folder).iterdir()):
        if _TEMPORARY.fullmatch(p.name):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed
