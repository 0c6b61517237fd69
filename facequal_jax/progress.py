"""Periodic progress lines with rate and ETA for long loops."""
import time

from absl import logging


class Progress:
  """Logs `what: done/total unit (pct), rate/s, ETA` at most every `every_s` seconds.

  Example:
    progress = Progress("k-NN queries", total=n, unit="rows")
    for ...: progress.advance(rows_done_now)
  """

  def __init__(self, what: str, total: int, unit: str = "rows", every_s: float = 10.0):
    self.what, self.total, self.unit, self.every_s = what, total, unit, every_s
    self.done = 0
    self._start = self._last = time.perf_counter()

  def advance(self, count: int) -> None:
    self.done += count
    now = time.perf_counter()
    if now - self._last >= self.every_s or self.done >= self.total:
      self._last = now
      elapsed = max(now - self._start, 1e-9)
      rate = self.done / elapsed
      eta = (self.total - self.done) / rate if rate > 0 else float("inf")
      logging.info("%s: %s/%s %s (%.1f%%), %.0f %s/s, elapsed %.1f s, ETA %.1f s", self.what,
                   f"{self.done:,}", f"{self.total:,}", self.unit, 100.0 * self.done / max(self.total, 1),
                   rate, self.unit, elapsed, eta)
