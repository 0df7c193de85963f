"""Worker process pools that stop at once, and quietly, on Ctrl-C or an error.

Ctrl-C in a terminal sends SIGINT to every process of the foreground group, so each worker of a
plain ``ProcessPoolExecutor`` dies with its own KeyboardInterrupt traceback, and leaving the
``with`` block then waits for the tasks still running (a long video's decode). Here the workers
ignore SIGINT, and the parent, which receives it as usual, ends them: the stage prints one line
(:func:`tsp_pretrain.cli.run_stage`) and what finished before is kept by the caller's own
bookkeeping (atomic writes: a killed worker leaves no half-written output, only temporary files
that the next run removes).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.context import BaseContext


def _ignore_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def process_pool(
    workers: int, mp_context: BaseContext | None = None
) -> Iterator[ProcessPoolExecutor]:
    """A ``ProcessPoolExecutor`` whose workers ignore SIGINT and are ended when the block fails."""
    pool = ProcessPoolExecutor(workers, mp_context=mp_context, initializer=_ignore_interrupt)
    try:
        yield pool
    except BaseException:
        _terminate(pool)
        raise
    pool.shutdown(wait=True)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the running workers (Python 3.11 has no public API
    for the latter; 3.14's ``terminate_workers`` does the same)."""
    processes = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()
