"""The research's SVG plots: grids of scatter and line panels (the product's page draws with `report.plots`)."""
import html
from typing import Sequence

import numpy as np

from facequal_jax.report.plots import POINT_COLOUR


def _scale(values: np.ndarray, low: float, high: float):
  lo, hi = float(np.min(values)), float(np.max(values))
  pad = 0.05 * (hi - lo or 1.0)
  lo, hi = lo - pad, hi + pad
  return lambda v: low + (np.asarray(v) - lo) / (hi - lo) * (high - low), (lo, hi)


def _grid(panels: Sequence[dict], columns: int, width: int, height: int):
  """(the opening of an SVG document holding the panels of width × height, `columns` per row, and each
  panel with its corner (left, top))."""
  rows = -(-len(panels) // columns)
  opening = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{columns * width}" height="{rows * height}" '
             f'font-family="sans-serif" font-size="10">', '<rect width="100%" height="100%" fill="white"/>']
  return opening, [(panel, (number % columns) * width, (number // columns) * height)
                   for number, panel in enumerate(panels)]


def _axes(parts: list, panel: dict, corner, box, x: np.ndarray, y: np.ndarray):
  """Appends a panel's title, frame, three ticks per axis and axis labels; returns the x and y scales.

  `corner` is the panel's (left, top), `box` the plot area (x0, x1, y0, y1) with y0 at the bottom."""
  (left, top), (x0, x1, y0, y1) = corner, box
  sx, (xlo, xhi) = _scale(x, x0, x1)
  sy, (ylo, yhi) = _scale(y, y0, y1)
  parts.append(f'<text x="{(x0 + x1) / 2}" y="{top + 15}" text-anchor="middle" font-size="12">'
               f'{html.escape(panel["title"])}</text>')
  parts.append(f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#888"/>')
  for fraction in (0.0, 0.5, 1.0):
    xv, yv = xlo + fraction * (xhi - xlo), ylo + fraction * (yhi - ylo)
    parts.append(f'<text x="{sx(xv):.1f}" y="{y0 + 12}" text-anchor="middle">{xv:.3g}</text>')
    parts.append(f'<text x="{x0 - 4}" y="{sy(yv):.1f}" text-anchor="end" dy="3">{yv:.3g}</text>')
  parts.append(f'<text x="{(x0 + x1) / 2}" y="{y0 + 26}" text-anchor="middle">{html.escape(panel["xlabel"])}</text>')
  parts.append(f'<text transform="translate({left + 12},{(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">'
               f'{html.escape(panel["ylabel"])}</text>')
  return sx, sy


def scatter_panels(panels: Sequence[dict], columns: int = 2, width: int = 330, height: int = 260) -> str:
  """A grid of labelled scatter panels as one SVG document.

  Args:
    panels: dicts with "title", "x", "y" (1-D sequences of equal length),
      "xlabel", "ylabel" and optional "labels" (a short text per point).
    columns: panels per row.

  Returns:
    The SVG text.
  """
  parts, placed = _grid(panels, columns, width, height)
  for panel, left, top in placed:
    x0, x1, y0, y1 = left + 50, left + width - 15, top + height - 40, top + 25
    x, y = np.asarray(panel["x"], np.float64), np.asarray(panel["y"], np.float64)
    sx, sy = _axes(parts, panel, (left, top), (x0, x1, y0, y1), x, y)
    labels = panel.get("labels") or [""] * len(x)
    for xi, yi, label in zip(x, y, labels):
      parts.append(f'<circle cx="{sx(xi):.1f}" cy="{sy(yi):.1f}" r="3.5" fill="{POINT_COLOUR}"/>')
      if label:
        parts.append(f'<text x="{sx(xi) + 5:.1f}" y="{sy(yi) - 4:.1f}" font-size="8" fill="#444">'
                     f'{html.escape(label)}</text>')
  parts.append("</svg>")
  return "\n".join(parts)


SERIES_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                  "#bcbd22", "#17becf")


def line_panels(panels: Sequence[dict], columns: int = 2, width: int = 420, height: int = 280) -> str:
  """A grid of line-chart panels as one SVG document.

  Args:
    panels: dicts with "title", "xlabel", "ylabel" and "series": a list of {"label", "x", "y"} (1-D
      sequences of equal length); series with the same label share a colour and one legend entry.
    columns: panels per row.

  Returns:
    The SVG text.
  """
  parts, placed = _grid(panels, columns, width, height)
  for panel, left, top in placed:
    legend = 30 + 6 * max(len(s["label"]) for s in panel["series"])  # about 6 px per character
    x0, x1, y0, y1 = left + 50, left + width - legend, top + height - 40, top + 25
    xs = np.concatenate([np.asarray(s["x"], np.float64) for s in panel["series"]])
    ys = np.concatenate([np.asarray(s["y"], np.float64) for s in panel["series"]])
    sx, sy = _axes(parts, panel, (left, top), (x0, x1, y0, y1), xs,
                   ys[np.isfinite(ys)] if np.isfinite(ys).any() else np.zeros(1))
    colours = {}
    for series in panel["series"]:
      colour = colours.setdefault(series["label"], SERIES_COLOURS[len(colours) % len(SERIES_COLOURS)])
      points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(series["x"], series["y"]) if np.isfinite(y))
      parts.append(f'<polyline class="series" points="{points}" fill="none" stroke="{colour}" stroke-width="1.5">'
                   f'<title>{html.escape(series["label"])}</title></polyline>')
    for i, (label, colour) in enumerate(colours.items()):
      parts.append(f'<line x1="{x1 + 8}" y1="{y1 + 6 + 13 * i}" x2="{x1 + 22}" y2="{y1 + 6 + 13 * i}" '
                   f'stroke="{colour}" stroke-width="2"/>')
      parts.append(f'<text x="{x1 + 26}" y="{y1 + 9 + 13 * i}">{html.escape(label)}</text>')
  parts.append("</svg>")
  return "\n".join(parts)
