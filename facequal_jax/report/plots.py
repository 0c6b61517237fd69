"""Small self-contained SVG plots (no plotting library needed; open in any browser)."""
import html

import numpy as np

POINT_COLOUR = "#1f77b4"


def histogram(values: np.ndarray, bins: np.ndarray, title: str, xlabel: str, ylabel: str = "count",
              width: int = 480, height: int = 260) -> str:
  """Bar chart of `values` counted in `bins` (edges [B + 1]) as one SVG document, both axes labelled."""
  counts, _ = np.histogram(values, bins)
  x0, x1, y0, y1 = 55, width - 15, height - 40, 25
  top = max(int(counts.max()), 1)
  bar = (x1 - x0) / len(counts)
  parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="10"><rect width="100%" height="100%" fill="white"/>',
           f'<text x="{(x0 + x1) / 2}" y="15" text-anchor="middle" font-size="12">{html.escape(title)}</text>',
           f'<text x="{(x0 + x1) / 2}" y="{height - 8}" text-anchor="middle">{html.escape(xlabel)}</text>',
           f'<text class="ylabel" transform="translate(14,{(y0 + y1) / 2}) rotate(-90)" text-anchor="middle">'
           f'{html.escape(ylabel)}</text>',
           f'<text x="{x0 - 4}" y="{y1 + 3}" text-anchor="end">{top}</text>',
           f'<text x="{x0 - 4}" y="{y0 + 3}" text-anchor="end">0</text>']
  for i, count in enumerate(counts):
    h = (y0 - y1) * count / top
    parts.append(f'<rect class="bar" x="{x0 + i * bar + 1:.1f}" y="{y0 - h:.1f}" width="{bar - 2:.1f}" '
                 f'height="{h:.1f}" fill="{POINT_COLOUR}"><title>{bins[i]:.3g}–{bins[i + 1]:.3g}: {count}</title>'
                 f'</rect>')
  for edge in (bins[0], (bins[0] + bins[-1]) / 2, bins[-1]):
    x = x0 + (edge - bins[0]) / (bins[-1] - bins[0]) * (x1 - x0)
    parts.append(f'<text x="{x:.1f}" y="{y0 + 12}" text-anchor="middle">{edge:.3g}</text>')
  parts.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#888"/></svg>')
  return "\n".join(parts)


def spectrum(eigenvalues: np.ndarray, effective_rank: float, title: str, width: int = 480, height: int = 260) -> str:
  """Eigenvalues (descending) on a log scale against their index, the effective rank marked, as SVG."""
  values = np.asarray(eigenvalues, np.float64)
  values = values[values > 0]
  logs = np.log10(values)
  x0, x1, y0, y1 = 55, width - 15, height - 40, 25
  low, high = np.floor(logs.min()), np.ceil(logs.max())
  high = high if high > low else low + 1
  sx = lambda i: x0 + i / max(len(values) - 1, 1) * (x1 - x0)
  sy = lambda v: y0 - (v - low) / (high - low) * (y0 - y1)
  points = " ".join(f"{sx(i):.1f},{sy(v):.1f}" for i, v in enumerate(logs))
  parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           f'font-size="10"><rect width="100%" height="100%" fill="white"/>',
           f'<text x="{(x0 + x1) / 2}" y="15" text-anchor="middle" font-size="12">{html.escape(title)}</text>',
           f'<text x="{(x0 + x1) / 2}" y="{height - 8}" text-anchor="middle">eigenvalue index</text>',
           f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#888"/>']
  for exponent in range(int(low), int(high) + 1):
    parts.append(f'<text x="{x0 - 4}" y="{sy(exponent) + 3:.1f}" text-anchor="end">1e{exponent}</text>')
  parts.append(f'<polyline class="spectrum" points="{points}" fill="none" stroke="{POINT_COLOUR}" stroke-width="1.5"/>')
  marker = sx(min(effective_rank, len(values)) - 1)
  parts.append(f'<line class="effective-rank" x1="{marker:.1f}" y1="{y1}" x2="{marker:.1f}" y2="{y0}" '
               f'stroke="#d62728" stroke-dasharray="4 3"/>')
  right_half = marker > (x0 + x1) / 2  # the label sits on the side of the marker with room for it
  parts.append(f'<text x="{marker + (-4 if right_half else 4):.1f}" y="{y1 + 12}" fill="#d62728" '
               f'text-anchor="{"end" if right_half else "start"}">effective rank {effective_rank:.1f}</text>')
  for i in (0, len(values) - 1):
    parts.append(f'<text x="{sx(i):.1f}" y="{y0 + 12}" text-anchor="middle">{i + 1}</text>')
  parts.append("</svg>")
  return "\n".join(parts)
