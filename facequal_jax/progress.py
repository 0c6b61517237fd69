"""Progress of long work: stage lines and periodic progress lines with count, rate and ETA.

Every long loop (extraction, k-NN, the eigenface fit, report thumbnails,
pretraining, proxy training, the validation experiment) reports through
`Progress`, and the IQ job announces and times its stages with `Stages`, so the
lines look the same everywhere:

  embedding faces …
  embedding: 1,200/4,000 images (30.0%), 41.0 images/s (recent 42.3), elapsed 29.3 s, ETA 66.2 s

They go to the standard `logging` logger `facequal_jax.progress` at INFO: the
command shows them on stderr (everything else logged at INFO goes to its log
file); a library caller sees them once it enables INFO logging.
"""
import contextlib
import logging
import time
from typing import Dict, Optional

LOGGER = logging.getLogger("facequal_jax.progress")
FIRST_LINE_S = 2.0  # a loop still running after this long says so, then every `every_s`


def _rate(value: float) -> str:
  return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


class Progress:
  """Logs `what: done/total unit (pct), rate (recent rate), elapsed, ETA[, note]`.

  `advance` logs a line once `FIRST_LINE_S` (or `every_s`, if shorter) has
  passed, then every `every_s` seconds (every call when `every_s` is 0), and
  when the work is done (unless it was done before a first line was due).

  Example:
    progress = Progress("k-NN queries", total=n, unit="rows")
    for ...: progress.advance(rows_done_now)
  """

  def __init__(self, what: str, total: int, unit: str = "rows", every_s: float = 10.0, done: int = 0):
    """`done` counts work finished before this run (a resumed job): it is shown but not in the rates."""
    self.what, self.total, self.unit, self.every_s = what, total, unit, every_s
    self.done = done
    self._start_done = self._last_done = done
    self._start = self._last = time.perf_counter()
    self._due = self._start + min(every_s, FIRST_LINE_S)
    self._logged = False
    self.recent_rate = 0.0

  def advance(self, count: int, note: str = "") -> None:
    """Adds `count` finished units; logs a line when due (`note` is appended to it)."""
    self.done += count
    now = time.perf_counter()
    if now < self._due and (self.done < self.total or not self._logged):
      return  # not due yet; a loop done before its first line is due stays quiet
    self._logged = True
    self.recent_rate = (self.done - self._last_done) / max(now - self._last, 1e-9)
    self._last, self._last_done, self._due = now, self.done, now + self.every_s
    elapsed = max(now - self._start, 1e-9)
    rate = (self.done - self._start_done) / elapsed
    eta = (self.total - self.done) / self.recent_rate if self.recent_rate > 0 else float("inf")
    LOGGER.info("%s: %s/%s %s (%.1f%%), %s %s/s (recent %s), elapsed %.1f s, ETA %.1f s%s", self.what,
                f"{self.done:,}", f"{self.total:,}", self.unit, 100.0 * self.done / max(self.total, 1),
                _rate(rate), self.unit, _rate(self.recent_rate), elapsed, eta, f"; {note}" if note else "")


class Stages:
  """Announces the stages of a job on the progress log and keeps the wall time of each.

  Example:
    stages = Stages()
    with stages("knn", "searching the 10 nearest neighbours"): ...
    stages.seconds  # {"knn": 3.2}

  Attributes:
    seconds: stage name → wall seconds (summed when a stage runs again).
    current: the name of the stage running now, or None.
    announce: whether a stage logs its line (set False to time quietly).
  """

  def __init__(self, announce: bool = True):
    self.seconds: Dict[str, float] = {}
    self.current: Optional[str] = None
    self.announce = announce

  @contextlib.contextmanager
  def __call__(self, name: str, what: str):
    if self.announce:
      LOGGER.info("%s …", what)
    self.current, start = name, time.perf_counter()
    try:
      yield
    finally:
      self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
      self.current = None
