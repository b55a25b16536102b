"""Progress of long work, the same way everywhere (issue 12 item 8).

On a terminal a tqdm bar; anywhere else (a log file, a pipe, CI) no bar redraws but a line
every ``interval`` seconds (30 by default), e.g.

    training: epoch 120/700, 2.1 min elapsed, about 9.5 min left

and, around work that reports nothing itself, a heartbeat line after ``interval`` seconds of
silence (``heartbeat``). ``progress`` arguments across fscert take:

* ``True``: automatic, a bar when stderr is a terminal, lines otherwise (the Python default);
* :data:`LINES`: lines only. It is *falsy*, so code outside fscert that calls
  ``tqdm(..., disable=not progress)`` draws nothing with it: the CLI passes it when stderr is
  not a terminal, and every fscert module shows its progress through :class:`Progress`;
* ``False`` / ``None``: nothing (``--quiet``).

Usage, in place of ``tqdm``::

    for i in Progress(range(n), desc="listing", unit="cell", show=progress):
        ...
    with Progress(total=epochs, desc="training", unit="epoch", show=progress) as bar:
        bar.update(); bar.set_postfix(psnr="17.2")

The interval is ``interval=`` per object, else :func:`set_interval`, else the environment
variable ``FSCERT_PROGRESS_SECONDS``, else 30 s (tests use a tiny one). Bars and progress lines
are written to stderr here, not logged: stage lines and estimates are :mod:`logging` records.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

DEFAULT_INTERVAL = 30.0
ENV_INTERVAL = "FSCERT_PROGRESS_SECONDS"


class _LinesOnly:
    """The ``progress`` value "lines, never a bar" (falsy: see the module docstring)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "LINES"


LINES = _LinesOnly()

_interval_override: float | None = None
_lock = threading.Lock()
_last_output = time.perf_counter()       # when a progress line was last written (heartbeats wait for silence)
_activity: list = [None, time.perf_counter()]   # [label, since] of what the heartbeat reports
_heartbeat_active = False


def set_interval(seconds: float | None) -> None:
    """Seconds between progress lines for every later :class:`Progress` (None: back to the default)."""
    global _interval_override
    _interval_override = None if seconds is None else float(seconds)


def progress_interval() -> float:
    """Seconds between progress lines: :func:`set_interval`, else $FSCERT_PROGRESS_SECONDS, else 30."""
    if _interval_override is not None:
        return _interval_override
    try:
        v = float(os.environ.get(ENV_INTERVAL, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return v if v > 0 else DEFAULT_INTERVAL


def is_terminal(stream=None) -> bool:
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def mode(show) -> str:
    """"bar", "lines" or "off" for a ``progress`` value."""
    if show is LINES or show == "lines":
        return "lines"
    if show == "bar":
        return "bar"
    if not show:
        return "off"
    return "bar" if is_terminal() else "lines"


def bars(show) -> bool:
    """What to pass to code that only knows tqdm: True only where a bar belongs (a terminal)."""
    return mode(show) == "bar"


def format_seconds(s: float) -> str:
    """12 s, 2.1 min, 1.4 h."""
    if s < 60:
        return f"{s:.0f} s" if s >= 9.5 else f"{s:.1f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _stderr_line(line: str) -> None:
    stream = sys.stderr
    stream.write(line + "\n")
    stream.flush()


def emit(line: str, write: Callable[[str], None] | None = None) -> None:
    """Write one progress line (stderr unless ``write``) and note it, so heartbeats stay silent."""
    global _last_output
    (write or _stderr_line)(line)
    with _lock:
        _last_output = time.perf_counter()


def set_activity(label: str | None) -> None:
    """What a running :func:`heartbeat` names in its lines (e.g. a pipeline stage, whose own
    line was just printed: the heartbeat's silence counts from now)."""
    global _last_output
    with _lock:
        _activity[0], _activity[1] = label, time.perf_counter()
        _last_output = _activity[1]


class Progress:
    """A tqdm bar on a terminal, time-throttled lines elsewhere, nothing when ``show`` is falsy.

    ``Progress(iterable)`` iterates like tqdm; ``update``, ``set_postfix``, ``set_description``,
    ``close`` and ``with`` work as in tqdm. ``write`` receives the lines (default: stderr).
    """

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "it",
                 show=True, initial: int = 0, leave: bool = True, interval: float | None = None,
                 write: Callable[[str], None] | None = None):
        self.iterable, self.desc, self.unit = iterable, desc, unit
        if total is None and iterable is not None:
            try:
                total = len(iterable)          # type: ignore[arg-type]
            except TypeError:
                total = None
        self.total, self.n, self.initial = total, int(initial), int(initial)
        self.mode = mode(show)
        self.interval = interval if interval is not None else progress_interval()
        self._write, self._postfix = write, ""
        self._t0 = self._last = time.perf_counter()
        self._bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=leave)

    # -- tqdm-like interface
    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("Progress() was given no iterable")
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "lines" and time.perf_counter() - self._last >= self.interval:
            self._line()

    def set_postfix(self, refresh: bool = True, **kw) -> None:
        if self._bar is not None:
            self._bar.set_postfix(refresh=refresh, **kw)
        self._postfix = ", ".join(f"{k} {v}" for k, v in kw.items())

    def set_description(self, desc: str) -> None:
        self.desc = desc
        if self._bar is not None:
            self._bar.set_description(desc)

    def write(self, line: str) -> None:
        """A message that does not break a bar."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        elif self.mode == "lines":
            emit(line, self._write)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # -- lines
    def line(self) -> str:
        """``  training: epoch 120/700, 2.1 min elapsed, about 9.5 min left``."""
        now = time.perf_counter()
        elapsed = now - self._t0
        count = f"{self.unit} {self.n}/{self.total}" if self.total is not None else f"{self.n} {self.unit}"
        parts = [count, f"{format_seconds(elapsed)} elapsed"]
        done = self.n - self.initial
        if self.total is not None and done > 0 and self.n < self.total:
            parts.append(f"about {format_seconds(elapsed / done * (self.total - self.n))} left")
        if self._postfix:
            parts.append(self._postfix)
        return f"  {self.desc}: {', '.join(parts)}" if self.desc else "  " + ", ".join(parts)

    def _line(self) -> None:
        emit(self.line(), self._write)
        self._last = time.perf_counter()


def heartbeat_line(label: str, t0: float, every: float, now: float) -> str | None:
    """The heartbeat's line at time ``now`` (perf_counter seconds), or None while the last progress
    line is less than ``every`` seconds old. It names the latest :func:`set_activity` (timed from
    when it was set) or else ``label`` (timed from ``t0``)."""
    with _lock:
        quiet_for = now - _last_output
        what, since = _activity
    if quiet_for < every:
        return None
    return f"  {what or label}: still working, {format_seconds(now - (since if what else t0))} elapsed"


@contextmanager
def heartbeat(label: str, show=True, interval: float | None = None,
              write: Callable[[str], None] | None = None) -> Iterator[None]:
    """While the block runs, when no progress line was written for ``interval`` seconds, write
    ``  LABEL: still working, 2.5 min elapsed`` (lines mode only: never next to a bar).

    For work that reports nothing itself. The label is the latest :func:`set_activity`
    (a pipeline stage) when one was set inside the block. Nested heartbeats run one thread.
    """
    global _heartbeat_active, _last_output
    if mode(show) != "lines" or _heartbeat_active:
        yield
        return
    every = interval if interval is not None else progress_interval()
    stop = threading.Event()
    set_activity(None)
    t0 = time.perf_counter()

    def run() -> None:
        while not stop.wait(min(1.0, max(0.05, every / 4))):
            line = heartbeat_line(label, t0, every, time.perf_counter())
            if line is not None:
                try:
                    emit(line, write)
                except Exception:  # noqa: BLE001 - a closed stream must not kill the work
                    return

    with _lock:
        _last_output = time.perf_counter()
    thread = threading.Thread(target=run, name="fscert-heartbeat", daemon=True)
    _heartbeat_active = True
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        _heartbeat_active = False
        set_activity(None)
