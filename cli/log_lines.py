"""The library's log records as the CLI's stderr lines.

fscert logs through :mod:`logging`, one logger per module under ``fscert`` (stage lines and
estimates at INFO, details at DEBUG, notices at WARNING), and adds no handler of its own. A
command run through :class:`~fscert_cli.common.FscertGroup` gets :func:`log_lines`: one handler
on the ``fscert`` logger that writes each record as a plain line (``%(message)s``) to stderr,
INFO and above; the group's ``--debug`` lowers it to DEBUG (:func:`set_log_level`), a command's
``--quiet`` raises it to WARNING (``fscert_cli.common._silenced``). Results never go through it:
they are stdout (and ``--json -`` keeps stdout for the JSON alone).
"""
from __future__ import annotations

import contextlib
import logging
from typing import Iterator

import click

#: the logger every fscert module logs under (``logging.getLogger(__name__)``)
LOGGER = "fscert"


class StderrLines(logging.Handler):
    """Each record as one plain line (``%(message)s``) on stderr. ``click.echo`` looks
    ``sys.stderr`` up when it writes, not when the handler is made, so a stream swapped in
    later (click's CliRunner, pytest's capture) receives the lines."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:  # noqa: BLE001 - logging's contract: a failing handler reports, never raises
            self.handleError(record)


@contextlib.contextmanager
def log_lines(level: int = logging.INFO) -> Iterator[StderrLines]:
    """While a command runs: the ``fscert`` logger's records at ``level`` and above as plain lines
    on stderr (INFO: stage lines and estimates; --debug lowers it, --quiet raises it), and only
    there (no propagation to handlers an embedding program may have). Restored afterwards."""
    log = logging.getLogger(LOGGER)
    handler, before = StderrLines(), (log.level, log.propagate)
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.setLevel(before[0])
        log.propagate = before[1]


def set_log_level(level: int) -> None:
    """The level of the ``fscert`` logger for the rest of the run (``--debug``: DEBUG)."""
    logging.getLogger(LOGGER).setLevel(level)
