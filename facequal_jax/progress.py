"""Progress of long loops: periodic log lines with count, rate and ETA.

Every long loop (extraction, k-NN, the eigenface fit, pretraining, proxy
training, the validation experiment) reports through `Progress`, so the lines
look the same everywhere:

  k-NN queries: 40,960/100,000 rows (41.0%), 9,310 rows/s (recent 9,480), elapsed 4.4 s, ETA 6.2 s
"""
import time

from absl import logging


def _rate(value: float) -> str:
  return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


class Progress:
  """Logs `what: done/total unit (pct), rate (recent rate), elapsed, ETA[, note]`.

  A line is logged by `advance` when `every_s` seconds have passed since the
  last one (every call when `every_s` is 0) and when the work is done.

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
    self.recent_rate = 0.0

  def advance(self, count: int, note: str = "") -> None:
    """Adds `count` finished units; logs a line when due (`note` is appended to it)."""
    self.done += count
    now = time.perf_counter()
    if now - self._last < self.every_s and self.done < self.total:
      return
    self.recent_rate = (self.done - self._last_done) / max(now - self._last, 1e-9)
    self._last, self._last_done = now, self.done
    elapsed = max(now - self._start, 1e-9)
    rate = (self.done - self._start_done) / elapsed
    eta = (self.total - self.done) / self.recent_rate if self.recent_rate > 0 else float("inf")
    logging.info("%s: %s/%s %s (%.1f%%), %s %s/s (recent %s), elapsed %.1f s, ETA %.1f s%s", self.what,
                 f"{self.done:,}", f"{self.total:,}", self.unit, 100.0 * self.done / max(self.total, 1),
                 _rate(rate), self.unit, _rate(self.recent_rate), elapsed, eta, f"; {note}" if note else "")
