"""SIGTERM and SIGHUP end a run like Ctrl-C: flushed, marked KILLED with the reason.

``kill``, ``timeout``, Slurm preemption and ``docker stop`` send SIGTERM; a closed terminal
sends SIGHUP. Python's default is to die on the spot, which leaves the MLflow run RUNNING
forever and drops buffered metrics. Inside :func:`terminate_as_interrupt` they raise
:class:`Terminated`, a ``KeyboardInterrupt``, so every path that closes a run on Ctrl-C
closes it on these too; the CLI then exits 128 + the signal number (143 for SIGTERM).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

CAUGHT = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
               if s is not None)


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal (not by Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signame = signal.Signals(signum).name
        super().__init__(self.signame)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


#: Stop signals received inside the current :func:`terminate_as_interrupt` block. Python only
#: prints (and drops) an exception raised while a ``__del__`` or weakref callback runs, so a
#: handler's ``Terminated`` can be lost; the training loop re-raises it from here at the next
#: step (:func:`raise_if_requested`), so a signal is never silently ignored.
_requested: list[int] = []


def raise_if_requested() -> None:
    """Raise :class:`Terminated` if a stop signal arrived and its exception was swallowed
    (one list check: called at every training step)."""
    if _requested:
        raise Terminated(_requested[-1])


def interrupt_reason(exc: BaseException, step: int) -> str:
    if isinstance(exc, Terminated):
        return f"terminated ({exc.signame}) after step {step}"
    return f"interrupted (Ctrl-C) after step {step}"


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM/SIGHUP raise :class:`Terminated` (main thread only: Python
    delivers signals there, and a worker thread cannot install handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        _requested.append(signum)
        raise Terminated(signum)

    def unraisable(info: sys.UnraisableHookArgs) -> None:
        if isinstance(info.exc_value, Terminated):
            return  # swallowed by a __del__/callback: re-raised by raise_if_requested
        hook(info)

    _requested.clear()
    previous = {s: signal.signal(s, handler) for s in CAUGHT}
    hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        sys.unraisablehook = hook
        _requested.clear()
