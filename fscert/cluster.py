"""How fscert gets a Dask cluster for the sharded nearest-neighbour search of the audit (FS-LAR §5.1).

:func:`client_for` is the one entry point, a context manager:

* ``scheduler="tcp://host:8786"``: connect to a running Dask cluster. An unreachable scheduler
  is one :class:`~fscert.errors.FscertError` line after at most ``timeout`` seconds, before any
  work; so is a cluster without workers, or one whose scheduler or workers run other versions
  of the packages that decide a result (:data:`CHECKED_PACKAGES`; :func:`version_mismatch`):
  the exact float64 re-ranking is the same everywhere only if torch and numpy are.
* ``workers=N``: start a :class:`distributed.LocalCluster` of N worker processes with one
  thread each, and close it on exit, also on Ctrl-C.
* neither: yield ``None``, the single-process path; dask is then never imported.

Tasks set torch to one thread themselves (:mod:`fscert.metrics.sharded`): one thread per
worker process, so N workers use N cores without oversubscription.
"""
from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Iterator

from .errors import FscertError

if TYPE_CHECKING:
    from distributed import Client

#: seconds to wait for a scheduler to answer (and for its first worker) before refusing
CONNECT_TIMEOUT = 10.0
#: packages whose versions must agree between this process and every worker (the scheduler:
#: only those it runs, :data:`SCHEDULER_PACKAGES`)
CHECKED_PACKAGES = ("python", "dask", "distributed", "cloudpickle", "msgpack", "tornado", "toolz",
                    "numpy", "torch", "h5py", "fscert")
SCHEDULER_PACKAGES = ("python", "dask", "distributed", "cloudpickle", "tornado", "toolz")
#: mismatches named in the message before "and N more"
SHOWN_MISMATCHES = 3


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def version_mismatch(versions: dict[str, Any]) -> str | None:
    """The one-line complaint about ``client.get_versions()``'s result, or None when all agree.

    Every package of :data:`CHECKED_PACKAGES` is compared between the client and each worker,
    those of :data:`SCHEDULER_PACKAGES` also with the scheduler; a package missing on one side
    counts as a mismatch ("missing").
    """
    mine = (versions.get("client") or {}).get("packages", {})
    others: list[tuple[str, dict, tuple[str, ...]]] = [
        ("the scheduler", (versions.get("scheduler") or {}).get("packages", {}), SCHEDULER_PACKAGES)]
    for addr, info in sorted((versions.get("workers") or {}).items()):
        others.append((f"worker {addr}", (info or {}).get("packages", {}) if isinstance(info, dict) else {},
                       CHECKED_PACKAGES))
    found = []
    for where, theirs, packages in others:
        for pkg in packages:
            a, b = mine.get(pkg), theirs.get(pkg)
            if a != b:
                found.append(f"{pkg} {a or 'missing'} here, {b or 'missing'} on {where}")
    if not found:
        return None
    more = f"; and {len(found) - SHOWN_MISMATCHES} more" if len(found) > SHOWN_MISMATCHES else ""
    return ("the Dask cluster runs other versions than this process: " + "; ".join(found[:SHOWN_MISMATCHES])
            + more + " (install the same versions everywhere)")


def _check(client: "Client", where: str) -> None:
    """Refuse a cluster whose versions differ from ours (one line)."""
    try:
        versions = client.get_versions(packages=["torch", "h5py", "fscert"])
    except Exception as e:  # a scheduler that dies between connect and now
        raise FscertError(f"cannot ask {where} for its versions: {_first_line(e)}") from None
    msg = version_mismatch(versions)
    if msg is not None:
        raise FscertError(msg)


@contextlib.contextmanager
def client_for(scheduler: str | None, workers: int | None,
               timeout: float = CONNECT_TIMEOUT) -> Iterator["Client | None"]:
    """A ``dask.distributed.Client`` for ``scheduler`` (an address) or ``workers`` local processes, or None.

    Closes what it started on exit (the local cluster included), whatever the exit: an error,
    Ctrl-C or a normal return. Refusals are one :class:`FscertError` line: both arguments, a
    worker count below 1, an unreachable scheduler (after ``timeout`` seconds), a cluster
    without workers (after ``timeout`` more), differing versions (:func:`version_mismatch`).
    """
    if scheduler is None and workers is None:
        yield None
        return
    if scheduler is not None and workers is not None:
        raise FscertError("give a Dask scheduler address or a number of local workers, not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise FscertError(f"the number of Dask workers must be a positive integer, got {workers!r}")
    # dask and distributed take about a second to import and are optional: only here, on demand
    from distributed import Client, LocalCluster

    cluster = None
    client = None
    try:
        if scheduler is not None:
            where = f"the Dask scheduler at {scheduler}"
            try:
                client = Client(scheduler, timeout=timeout, set_as_default=False)
            except Exception as e:  # OSError / TimeoutError (unreachable), ValueError (bad address)
                raise FscertError(f"cannot reach {where} within {timeout:g} s: {_first_line(e)}") from None
            try:
                client.wait_for_workers(1, timeout=timeout)
            except Exception:
                raise FscertError(f"{where} has no workers (waited {timeout:g} s)") from None
        else:
            where = f"the local Dask cluster of {workers} workers"
            try:
                # no dashboard; the scheduler's HTTP server (health routes) on a free loopback
                # port, not 8787 (taken by a second run, with a warning); no worker logs: a task's
                # error reaches the caller as its exception, a log would repeat it as a traceback
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.CRITICAL,
                                       scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
                client = Client(cluster, set_as_default=False)
            except Exception as e:
                raise FscertError(f"cannot start {where}: {_first_line(e)}") from None
        _check(client, where)
        yield client
    finally:
        # on Ctrl-C too: the callers cancel their futures, closing ends the rest
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def in_order(client: "Client", items: list, submit, per_thread: int) -> Iterator[tuple[Any, Any]]:
    """(item, result) for each of ``items`` in order, ``submit(item)`` giving its future; at most
    ``per_thread`` futures per worker thread are submitted ahead of the one being collected (the
    memory that finished, uncollected results hold). Each future is released once collected;
    on any exit, Ctrl-C included, the rest are cancelled."""
    ahead = per_thread * max(1, sum((client.nthreads() or {}).values()))
    futures: list = []
    pending: list = []
    nxt = 0
    try:
        while nxt < len(items) or pending:
            while nxt < len(items) and len(pending) < ahead:
                futures.append(submit(items[nxt]))
                pending.append((items[nxt], futures[-1]))
                nxt += 1
            item, f = pending.pop(0)
            result = f.result()
            f.release()
            yield item, result
    finally:
        with contextlib.suppress(Exception):      # a lost scheduler must not hide the result or the error
            client.cancel(futures)
