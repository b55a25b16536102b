"""Errors shown to users as one line, and interrupts.

Every user-facing failure raises :class:`FscertError`; the CLI prints its message
on one line and exits non-zero. :func:`install_signal_handlers` makes a kill (SIGTERM)
or a closed terminal (SIGHUP) interrupt like Ctrl-C, so that the clean-up of
:mod:`fscert.fileio` (no half-written output) runs then too.
"""
from __future__ import annotations

import signal
import threading


class FscertError(Exception):
    """A problem with the user's input or environment, reported as one line."""


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM, SIGHUP) raised as an interrupt; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum: int, frame) -> None:
    raise Terminated(signum)


def install_signal_handlers() -> None:
    """Turn SIGTERM and SIGHUP into :class:`Terminated` (a ``KeyboardInterrupt``), as Ctrl-C is.

    By default Python dies on them at once, leaving temporary outputs behind; raised as an
    interrupt, the clean-up of :func:`fscert.fileio.atomic_path` and :func:`fscert.fileio.atomic_dir` runs and the CLI
    reports one line. Called by the CLI's entry point, in the main thread. A signal that the
    parent process set to be ignored (``nohup``) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)            # no SIGHUP on Windows
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _terminate)
