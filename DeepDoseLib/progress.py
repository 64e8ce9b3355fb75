"""Progress and cancellation: the one callback type every long computation takes.

A progress callback is ``progress(fraction, message)`` with ``fraction`` in [0, 1]; a cancel callback
is ``cancel() -> bool`` polled between chunks of work (True stops the work with :class:`Cancelled`).
Front ends adapt them: tqdm on the command line, ``<filter-progress>`` lines in the Slicer CLI, a
progress bar in the Slicer panel.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

from .errors import Cancelled

__all__ = ["CancelCallback", "Cancelled", "ProgressCallback", "TqdmProgress", "check_cancel", "report_progress", "sub_progress"]

logger = logging.getLogger("DeepDoseLib")

#: progress(fraction in [0, 1], message) — called by long computations.
ProgressCallback = Callable[[float, str], None]
#: cancel() -> True when the user asked to stop.
CancelCallback = Callable[[], bool]


def report_progress(progress: Optional[ProgressCallback], fraction: float, message: str) -> None:
    """Log ``message`` and pass it on to ``progress`` (when given) with ``fraction`` clipped to [0, 1]."""
    logger.info(message)
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))), message)


def sub_progress(progress: Optional[ProgressCallback], start: float, stop: float,
                 prefix: str = "") -> Optional[ProgressCallback]:
    """A callback that maps a sub-task's [0, 1] onto ``[start, stop]`` of ``progress`` (None stays None).

    ``prefix`` is put before each message (e.g. ``"VSV kernel: "``).
    """
    if progress is None:
        return None

    def scaled(fraction: float, message: str) -> None:
        report_progress(progress, start + (stop - start) * fraction, prefix + message)

    return scaled


def check_cancel(cancel: Optional[CancelCallback], what: str) -> None:
    """Raise :class:`Cancelled` (``"<what> cancelled"``) when ``cancel()`` says so."""
    if cancel is not None and cancel():
        raise Cancelled(f"{what} cancelled.")


class TqdmProgress:
    """A tqdm bar (on stderr) as a progress callback: the command line's view of long jobs."""

    def __init__(self, enabled: bool = True) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=100, disable=not enabled, unit="%", bar_format="{l_bar}{bar}| {elapsed}<{remaining}")

    def __call__(self, fraction: float, message: str) -> None:
        self.bar.set_description_str(message[:60])
        self.bar.update(max(0, round(100 * fraction) - self.bar.n))

    def close(self) -> None:
        self.bar.close()
