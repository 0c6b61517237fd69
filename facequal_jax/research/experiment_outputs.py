"""The validation experiment's outputs: per-variant summary, the ground truth's own ceiling, rank correlations
with bootstrap intervals, IQ's α curve, and the proxy's spectrum over training.

A run is one (variant, seed) row of `experiment.run_variant`. Correlations are taken over variants, each the
mean of its seeds, and their 95 % intervals come from a two-stage bootstrap (variants, then seeds within each
drawn variant; `statistics.bootstrap_interval`). The ceiling is the Spearman of the first two seeds' accuracies
over variants (`statistics.repeat_agreement`): how well the experiment's own accuracies rank the variants, and
so the most any metric can reach against them. The pre-registered primary metric (`config.primary`) comes first
in every table; the others are secondary. The α curve — Spearman of α·Consis + (1 − α)·r̃ against accuracy over
α ∈ [0, 1] — is computed after the fact, for every protocol, and is never used to pick α.

Files in the workdir: protocol.csv (one row per run), protocol.json (runs, summary, ceiling, correlations, α
curves, config), protocol.md (the tables), protocol.svg (IQ, Consis and r̃ of every protocol against accuracy,
variant means), protocol_alpha.svg (the α curves) and protocol_training.svg (the proxy's r̃ over training,
when the runs logged their probe spectrum: `proxy.probe_images`).
"""
import json
import os
from typing import Dict, List

import ml_collections
import numpy as np

from facequal_jax import files
from facequal_jax.research import plots, protocols, statistics
from facequal_jax.research.training import loop

SCORES = ("accuracy", "accuracy_std", "roc_auc", "tar_at_far_1e2", "tar_at_far_1e3", "seconds")
ALPHAS = np.round(np.linspace(0.0, 1.0, 21), 2)
PROBE_FIELD = "probe_effective_rank_normalized"


def _std(values) -> float:
  return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def metrics(config: ml_collections.ConfigDict) -> Dict[str, str]:
  """Row field → label of every metric measured, the primary one first."""
  names = protocols.metric_names(config)
  return {config.primary: names[config.primary], **names}


def columns(config: ml_collections.ConfigDict) -> tuple:
  """The CSV's columns: the run, every metric, the verification scores."""
  return ("variant", "seed", "images", "identities", "label_noise", "degraded") + tuple(
      protocols.metric_names(config)) + SCORES


def summarise(rows: List[dict], names: Dict[str, str]) -> List[dict]:
  """Per variant (in run order): its size, accuracy mean and std over seeds (n − 1), each metric's mean, the
  proxy r̃'s spread over seeds (max − min) and the mean seconds of a run."""
  variants = list(dict.fromkeys(row["variant"] for row in rows))
  out = []
  for name in variants:
    runs = [row for row in rows if row["variant"] == name]
    entry = {key: runs[0].get(key, 0) for key in ("variant", "images", "identities", "label_noise", "degraded")}
    entry.update(seeds=len(runs), accuracy_mean=float(np.mean([r["accuracy"] for r in runs])),
                 accuracy_std=_std([r["accuracy"] for r in runs]))
    entry.update({name: float(np.mean([r[name] for r in runs])) for name in names})
    ranks = [r["effective_rank_normalized"] for r in runs]
    entry.update(r_spread=float(np.ptp(ranks)), seconds=float(np.mean([r["seconds"] for r in runs])))
    out.append(entry)
  return out


def ceiling(rows: List[dict], seeds, resamples: int, seed: int) -> dict:
  """`statistics.repeat_agreement` of the accuracies of `seeds[0]` and `seeds[1]` over the variants that have
  both ({} with fewer than two seeds)."""
  if len(seeds) < 2:
    return {}
  accuracy = {(row["variant"], row["seed"]): row["accuracy"] for row in rows}
  variants = [v for v in dict.fromkeys(row["variant"] for row in rows)
              if (v, seeds[0]) in accuracy and (v, seeds[1]) in accuracy]
  return statistics.repeat_agreement([accuracy[v, seeds[0]] for v in variants],
                                     [accuracy[v, seeds[1]] for v in variants], resamples=resamples, seed=seed,
                                     repeats=len(seeds))


def correlations(rows: List[dict], names, resamples: int, seed: int) -> Dict[str, dict]:
  """Per metric of `names`: Spearman over variant means with its 95 % two-stage bootstrap interval, and
  Kendall and Pearson over the same means."""
  groups = [row["variant"] for row in rows]
  accuracy = [row["accuracy"] for row in rows]
  mean_accuracy = statistics.group_means(accuracy, groups)
  out = {}
  for name in names:
    values = [row[name] for row in rows]
    entry = statistics.bootstrap_interval(values, accuracy, groups, resamples=resamples, seed=seed)
    means = statistics.group_means(values, groups)
    entry.update(kendall=statistics.kendall(means, mean_accuracy), pearson=statistics.pearson(means, mean_accuracy))
    out[name] = entry
  return out


def alpha_curves(rows: List[dict], config: ml_collections.ConfigDict) -> Dict[str, List[float]]:
  """Spearman of IQ_α against accuracy at each α of ALPHAS (variant means), per protocol (label → curve); the
  cross-fitted one pairs its Consis with the fixed-size subset's r̃, as its IQ does."""
  groups = [row["variant"] for row in rows]
  accuracy = statistics.group_means([row["accuracy"] for row in rows], groups)
  mean = lambda name: statistics.group_means([row[name] for row in rows], groups)
  return {p.label: [float(v) for v in statistics.alpha_curve(
      mean(p.prefix + "consistency"), mean(p.rank_field), accuracy, ALPHAS)] for p in protocols.active(config)}


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


def _ceiling_line(agreement: dict, seeds) -> str:
  if not agreement:
    return "One seed per variant: the ground truth's own agreement is not measured."
  return (f"**The ground truth's ceiling.** Seed {seeds[0]}'s accuracies against seed {seeds[1]}'s over the "
          f"variants: Spearman {agreement['estimate']:+.3f} [{agreement['low']:+.2f}, {agreement['high']:+.2f}] "
          f"(95 % bootstrap over variants). A metric compared with the mean of {len(seeds)} seeds can reach about "
          f"√(Spearman–Brown reliability) = {agreement['ceiling']:.3f} [{agreement['ceiling_low']:.2f}, "
          f"{agreement['ceiling_high']:.2f}].")


def _markdown(summary: List[dict], table: Dict[str, dict], agreement: dict, curves: Dict[str, List[float]],
              config: ml_collections.ConfigDict, names: Dict[str, str], has_training: bool) -> str:
  lines = ["| variant | images | identities | label noise | low-res faces | seeds | accuracy (mean ± std) | "
           "r̃ proxy (seed spread) | s / run |", "|" + " --- |" * 9]
  lines += [f"| {s['variant']} | {s['images']} | {s['identities']} | {s['label_noise']:.2f} | {s['degraded']} | "
            f"{s['seeds']} | {s['accuracy_mean']:.4f} ± {s['accuracy_std']:.4f} | "
            f"{s['effective_rank_normalized']:.3f} ({s['r_spread']:.3f}) | {s['seconds']:.0f} |" for s in summary]
  active = protocols.active(config)
  lines += ["", "IQ / Consis / r̃ of each variant (mean over seeds) under each protocol:", "",
            "| variant | " + " | ".join(p.label for p in active) + " |", "|" + " --- |" * (len(active) + 1)]
  for s in summary:
    cells = [" / ".join(f"{s[p.prefix + f]:.3f}" if p.prefix + f in s else "–"
                        for f in ("iq", "consistency", "effective_rank_normalized")) for p in active]
    lines.append(f"| {s['variant']} | " + " | ".join(cells) + " |")
  lines += ["", _ceiling_line(agreement, config.seeds), "",
            "| metric vs accuracy (variant means) | role | Spearman | 95 % bootstrap interval | Kendall | Pearson |",
            "| --- | --- | --- | --- | --- | --- |"]
  lines += [f"| {label} | {'**primary**' if name == config.primary else 'secondary'} | "
            f"{table[name]['estimate']:+.3f} | [{table[name]['low']:+.2f}, {table[name]['high']:+.2f}] | "
            f"{table[name]['kendall']:+.3f} | {table[name]['pearson']:+.3f} |" for name, label in names.items()]
  lines += ["", f"IQ's Spearman against accuracy as a function of α (after the fact; the default α = "
            f"{config.iq.alpha} is fixed, not chosen here):", "",
            "| α | " + " | ".join(f"{a:g}" for a in ALPHAS[::2]) + " |", "|" + " --- |" * (len(ALPHAS[::2]) + 1)]
  lines += [f"| {label} | " + " | ".join(f"{v:+.2f}" for v in curve[::2]) + " |" for label, curve in curves.items()]
  lines += ["", "![metric vs held-out accuracy](protocol.svg)", "", "![IQ's correlation over α](protocol_alpha.svg)"]
  if has_training:
    lines += ["", "![the proxy's r̃ during training](protocol_training.svg)"]
  return "\n".join(lines + [""])


def write(rows: List[dict], workdir: str, config: ml_collections.ConfigDict) -> None:
  """The files of the module docstring, in `workdir`."""
  names = metrics(config)
  summary = summarise(rows, names)
  table = correlations(rows, names, config.bootstrap_resamples, config.seed)
  agreement = ceiling(rows, config.seeds, config.bootstrap_resamples, config.seed)
  curves = alpha_curves(rows, config)
  spectra = training_spectra(rows, workdir)
  header = columns(config)
  files.write_csv(os.path.join(workdir, "protocol.csv"), header, [[row.get(c, 0) for c in header] for row in rows])
  finite = lambda value: value if not isinstance(value, float) or np.isfinite(value) else None  # JSON has no NaN
  files.write_json(os.path.join(workdir, "protocol.json"), {
      "rows": rows, "summary": summary, "alphas": ALPHAS.tolist(), "primary": config.primary,
      "ceiling": {key: finite(value) for key, value in agreement.items()},
      "correlations": {name: {key: finite(value) for key, value in entry.items()} for name, entry in table.items()},
      "alpha_curves": {name: [finite(v) for v in curve] for name, curve in curves.items()},
      "config": json.loads(config.to_json())})
  plotted = {name: label for name, label in names.items()
             if name.endswith(("iq", "consistency", "effective_rank_normalized"))}
  panels = [{"title": f"{label}: Spearman {table[name]['estimate']:+.2f}", "x": [s[name] for s in summary],
             "y": [s["accuracy_mean"] for s in summary], "xlabel": label, "ylabel": "held-out accuracy",
             "labels": [s["variant"] for s in summary]} for name, label in plotted.items()]
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
                    _markdown(summary, table, agreement, curves, config, names, bool(spectra)).encode())
