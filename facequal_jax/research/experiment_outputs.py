"""The validation experiment's outputs: per-variant summary, rank correlations with bootstrap intervals, IQ's α
curve, and the proxy's spectrum over training.

A run is one (variant, seed) row of `experiment.run_variant`. Correlations are taken over variants, each the
mean of its seeds, and their 95 % intervals come from a two-stage bootstrap (variants, then seeds within each
drawn variant; `statistics.bootstrap_interval`). The α curve — Spearman of α·Consis + (1 − α)·r̃ against
accuracy over α ∈ [0, 1] — is computed after the fact, for both encoders, and is never used to pick α.

Files in the workdir: protocol.csv (one row per run), protocol.json (runs, summary, correlations, α curves,
config), protocol.md (the tables), protocol.svg (each metric against accuracy, variant means),
protocol_alpha.svg (the α curves) and protocol_training.svg (the proxy's r̃ over training, when the runs
logged their probe spectrum: `proxy.probe_images`).
"""
import json
import os
from typing import Dict, List

import ml_collections
import numpy as np

from facequal_jax import files
from facequal_jax.research import statistics
from facequal_jax.research import plots
from facequal_jax.research.training import loop

# field → label; the proxy's metrics, then the fixed encoder's
METRICS = {"iq": "IQ (proxy)", "consistency": "Consis (proxy)", "effective_rank_normalized": "r̃ (proxy)",
           "rankme": "RankMe (proxy)", "stable_rank": "stable rank (proxy)", "alpha_req": "α-ReQ (proxy)",
           "fixed_iq": "IQ (fixed)", "fixed_consistency": "Consis (fixed)",
           "fixed_effective_rank_normalized": "r̃ (fixed)", "fixed_rankme": "RankMe (fixed)",
           "fixed_stable_rank": "stable rank (fixed)", "fixed_alpha_req": "α-ReQ (fixed)"}
COLUMNS = ("variant", "seed", "images", "identities", "label_noise") + tuple(METRICS) + (
    "accuracy", "accuracy_std", "roc_auc", "tar_at_far_1e2", "tar_at_far_1e3", "seconds")
ALPHAS = np.round(np.linspace(0.0, 1.0, 21), 2)
PROBE_FIELD = "probe_effective_rank_normalized"


def _std(values) -> float:
  return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarise(rows: List[dict]) -> List[dict]:
  """Per variant (in run order): its size, accuracy mean and std over seeds (n − 1), each metric's mean, the
  proxy r̃'s spread over seeds (max − min) and the mean seconds of a run."""
  variants = list(dict.fromkeys(row["variant"] for row in rows))
  out = []
  for name in variants:
    runs = [row for row in rows if row["variant"] == name]
    entry = {key: runs[0][key] for key in ("variant", "images", "identities", "label_noise")}
    entry.update(seeds=len(runs), accuracy_mean=float(np.mean([r["accuracy"] for r in runs])),
                 accuracy_std=_std([r["accuracy"] for r in runs]))
    entry.update({name: float(np.mean([r[name] for r in runs])) for name in METRICS})
    ranks = [r["effective_rank_normalized"] for r in runs]
    entry.update(r_spread=float(np.ptp(ranks)), seconds=float(np.mean([r["seconds"] for r in runs])))
    out.append(entry)
  return out


def correlations(rows: List[dict], resamples: int, seed: int) -> Dict[str, dict]:
  """Per metric of METRICS: Spearman over variant means with its 95 % two-stage bootstrap interval, and
  Kendall and Pearson over the same means."""
  groups = [row["variant"] for row in rows]
  accuracy = [row["accuracy"] for row in rows]
  mean_accuracy = statistics.group_means(accuracy, groups)
  out = {}
  for name in METRICS:
    values = [row[name] for row in rows]
    entry = statistics.bootstrap_interval(values, accuracy, groups, resamples=resamples, seed=seed)
    means = statistics.group_means(values, groups)
    entry.update(kendall=statistics.kendall(means, mean_accuracy), pearson=statistics.pearson(means, mean_accuracy))
    out[name] = entry
  return out


def alpha_curves(rows: List[dict]) -> Dict[str, List[float]]:
  """Spearman of IQ_α against accuracy at each α of ALPHAS (variant means), for the proxy and the fixed encoder."""
  groups = [row["variant"] for row in rows]
  accuracy = statistics.group_means([row["accuracy"] for row in rows], groups)
  mean = lambda name: statistics.group_means([row[name] for row in rows], groups)
  return {prefix.rstrip("_") or "proxy": [float(v) for v in statistics.alpha_curve(
      mean(prefix + "consistency"), mean(prefix + "effective_rank_normalized"), accuracy, ALPHAS)]
          for prefix in ("", "fixed_")}


def probe_series(run_dir: str) -> dict:
  """{"steps", "r"}: a proxy's r̃ on its probe faces at each logged step of the run in `run_dir` (empty lists
  when it logged no probe)."""
  logged = [record for record in loop.read_metrics(run_dir) if PROBE_FIELD in record]
  return {"steps": [r["step"] for r in logged], "r": [r[PROBE_FIELD] for r in logged]}


def training_spectra(rows: List[dict], workdir: str) -> List[dict]:
  """{"variant", "seed", "steps", "r"} of each run that logged its probe spectrum (`probe_series`)."""
  out = []
  for row in rows:
    series = probe_series(os.path.join(workdir, "variants", row["variant"], f"seed_{row['seed']}"))
    if series["steps"]:
      out.append({"variant": row["variant"], "seed": row["seed"], **series})
  return out


def _cell(value) -> str:
  return f"{value:.4f}" if isinstance(value, float) else str(value)


def _markdown(summary: List[dict], table: Dict[str, dict], curves: Dict[str, List[float]], alpha: float,
              has_training: bool) -> str:
  lines = ["| variant | images | identities | label noise | seeds | accuracy (mean ± std) | r̃ proxy (spread) | "
           "Consis proxy | IQ proxy | IQ fixed | Consis fixed | r̃ fixed | s / run |",
           "|" + " --- |" * 13]
  for s in summary:
    lines.append(f"| {s['variant']} | {s['images']} | {s['identities']} | {s['label_noise']:.2f} | {s['seeds']} | "
                 f"{s['accuracy_mean']:.4f} ± {s['accuracy_std']:.4f} | {s['effective_rank_normalized']:.3f} "
                 f"({s['r_spread']:.3f}) | {s['consistency']:.3f} | {s['iq']:.3f} | {s['fixed_iq']:.3f} | "
                 f"{s['fixed_consistency']:.3f} | {s['fixed_effective_rank_normalized']:.3f} | {s['seconds']:.0f} |")
  lines += ["", "| metric vs accuracy (variant means) | Spearman | 95 % bootstrap interval | Kendall | Pearson |",
            "| --- | --- | --- | --- | --- |"]
  lines += [f"| {label} | {table[name]['estimate']:+.3f} | [{table[name]['low']:+.2f}, {table[name]['high']:+.2f}] | "
            f"{table[name]['kendall']:+.3f} | {table[name]['pearson']:+.3f} |" for name, label in METRICS.items()]
  lines += ["", f"IQ's Spearman against accuracy as a function of α (after the fact; the default α = {alpha} is "
            "fixed, not chosen here):", "", "| α | " + " | ".join(f"{a:g}" for a in ALPHAS[::2]) + " |",
            "|" + " --- |" * (len(ALPHAS[::2]) + 1)]
  lines += [f"| {encoder} | " + " | ".join(f"{v:+.2f}" for v in curve[::2]) + " |" for encoder, curve in curves.items()]
  lines += ["", "![metric vs held-out accuracy](protocol.svg)", "", "![IQ's correlation over α](protocol_alpha.svg)"]
  if has_training:
    lines += ["", "![the proxy's r̃ during training](protocol_training.svg)"]
  return "\n".join(lines + [""])


def write(rows: List[dict], workdir: str, config: ml_collections.ConfigDict) -> None:
  """The files of the module docstring, in `workdir`."""
  summary = summarise(rows)
  table = correlations(rows, config.bootstrap_resamples, config.seed)
  curves = alpha_curves(rows)
  spectra = training_spectra(rows, workdir)
  files.write_csv(os.path.join(workdir, "protocol.csv"), COLUMNS, [[row[c] for c in COLUMNS] for row in rows])
  finite = lambda value: value if not isinstance(value, float) or np.isfinite(value) else None  # JSON has no NaN
  files.write_json(os.path.join(workdir, "protocol.json"), {
      "rows": rows, "summary": summary, "alphas": ALPHAS.tolist(),
      "correlations": {name: {key: finite(value) for key, value in entry.items()} for name, entry in table.items()},
      "alpha_curves": {name: [finite(v) for v in curve] for name, curve in curves.items()},
      "config": json.loads(config.to_json())})
  panels = [{"title": f"{label}: Spearman {table[name]['estimate']:+.2f}", "x": [s[name] for s in summary],
             "y": [s["accuracy_mean"] for s in summary], "xlabel": label, "ylabel": "held-out accuracy",
             "labels": [s["variant"] for s in summary]} for name, label in METRICS.items()]
  files.write_bytes(os.path.join(workdir, "protocol.svg"), plots.scatter_panels(panels, columns=3).encode())
  alpha_panel = {"title": "IQ = α·Consis + (1 − α)·r̃ vs accuracy (after the fact)", "xlabel": "α",
                 "ylabel": "Spearman", "series": [{"label": name, "x": ALPHAS, "y": curve}
                                                  for name, curve in curves.items()]}
  files.write_bytes(os.path.join(workdir, "protocol_alpha.svg"), plots.line_panels([alpha_panel], 1).encode())
  if spectra:
    training_panel = {"title": "proxy r̃ on its probe faces during training (one line per seed)",
                      "xlabel": "step", "ylabel": "r̃",
                      "series": [{"label": s["variant"], "x": s["steps"], "y": s["r"]} for s in spectra]}
    files.write_bytes(os.path.join(workdir, "protocol_training.svg"),
                      plots.line_panels([training_panel], 1, width=640).encode())
  files.write_bytes(os.path.join(workdir, "protocol.md"),
                    _markdown(summary, table, curves, config.iq.alpha, bool(spectra)).encode())
