"""The fine-tuning study: proxies from scratch and from pretrained encoders, with few and many labels.

On the validation protocol's pool and held-out pairs (`experiment.py`), each
arm of `config.arms` trains one proxy per (fraction of the identities, seed)
— the protocol's clean-scaling variants, the same steps and batch for every
arm — and scores its held-out verification accuracy (10-fold, LFW protocol).
Each run lives in WORKDIR/ARM/clean_F/seed_S/ (checkpoints, metrics,
result.json), so an interrupted study resumes where it stopped.

Outputs in WORKDIR: finetune_study.csv (one row per run, with the r̃ of its
training faces), finetune_study.json (rows and summary), finetune_study.md
(accuracy mean ± std over seeds per arm and fraction, each pretrained arm's
gain over the scratch ViT) and, when the runs logged their probe spectrum,
finetune_study_training.svg (r̃ over training).
"""
import os
import time
from typing import Dict, List, Tuple

import ml_collections
import numpy as np

from facequal_jax import files, sharding
from facequal_jax.research import plots
from facequal_jax.research import experiment, experiment_outputs, verification
from facequal_jax.research.configs import proxy_arcface
from facequal_jax.research.runs import each_run
from facequal_jax.research.training import proxy

SCRATCH_ARM = "vit_scratch"


def arm_proxy_config(config: ml_collections.ConfigDict, arm: ml_collections.ConfigDict,
                     seed: int) -> ml_collections.ConfigDict:
  """The proxy config of one run: `proxy_arcface:<arm.proxy>` at the study's image size, steps and batch."""
  proxy_config = proxy_arcface.get_config(arm.proxy)
  proxy_config.model.image_size = config.image_size
  proxy_config.init = os.path.join(config.pretrained_dir, arm.pretrained, "encoder.msgpack") if arm.pretrained else ""
  proxy_config.layer_decay = arm.layer_decay
  proxy_config.model.head_norm = arm.head_norm
  if arm.proxy == "vit":
    proxy_config.model.update(drop_path=arm.drop_path, pool=arm.pool)
    proxy_config.init_head = arm.init_head
  proxy_config.seed = seed
  proxy_config.steps = config.steps
  proxy_config.batch_size = config.batch_size
  proxy_config.log_every = config.log_every
  proxy_config.probe_images = config.probe_images
  proxy_config.checkpoint_every = max(1, config.steps // 3)
  proxy_config.num_devices = config.num_devices
  _override(proxy_config, arm.overrides.to_dict())
  return proxy_config


def _override(target: ml_collections.ConfigDict, overrides: dict) -> None:
  """Sets each (nested) field of `overrides` on `target`; a field `target` lacks is a ValueError."""
  for key, value in overrides.items():
    if key not in target:
      raise ValueError(f"an arm overrides {key!r}, which the proxy config does not have")
    if isinstance(value, dict):
      _override(target[key], value)
    else:
      target[key] = value


def _variants(train_labels: np.ndarray, config: ml_collections.ConfigDict) -> Dict[int, experiment.Variant]:
  """fraction → the protocol's clean_<fraction> variant of the training pool."""
  fractions = sorted({f for arm in config.arms.values() for f in arm.fractions})
  protocol = ml_collections.ConfigDict({"seed": config.seed, "variants": {
      "clean_percents": fractions, "noise_percents": (), "mixed_quality": False}})
  return dict(zip(fractions, experiment.build_variants(train_labels, None, protocol)))


def runs(config: ml_collections.ConfigDict) -> List[Tuple[str, int, int]]:
  """(arm, fraction, seed) of every run of the arms in `config.only` (all arms when empty), in the order they
  run."""
  only = [name for name in config.only.split(",") if name]
  unknown = sorted(set(only) - set(config.arms))
  if unknown:
    raise ValueError(f"--config.only names no arm of the study: {', '.join(unknown)} (arms: "
                     f"{', '.join(config.arms)})")
  return [(name, fraction, seed) for name, arm in config.arms.items() if not only or name in only
          for fraction in arm.fractions for seed in config.seeds]


def run(config: ml_collections.ConfigDict, workdir: str) -> List[dict]:
  """Every run (each resumed, or read back when its result exists), then the outputs; returns the rows."""
  mesh = sharding.make_mesh(config.num_devices)
  pool = experiment.load_pool(config.data, config.image_size, 3)
  train_images, held_out = pool.images[pool.train], pool.images[~pool.train]
  pairs = verification.held_out_pairs(pool.labels[~pool.train], config.max_genuine_pairs, seed=config.seed)
  variants = _variants(pool.labels[pool.train], config)

  def compute(plan: Tuple[str, int, int], run_dir: str) -> dict:
    name, fraction, seed = plan
    variant, arm = variants[fraction], config.arms[name]
    start = time.perf_counter()
    embed = proxy.train(arm_proxy_config(config, arm, seed), train_images[variant.positions], variant.labels,
                        run_dir, mesh)
    scores = verification.evaluate(embed(held_out), pairs, folds=config.folds, seed=config.seed)
    spectrum = proxy.probe_spectrum(embed(train_images[variant.positions]))
    return {"arm": name, "pretrained": arm.pretrained, "fraction": fraction, "seed": seed,
           "images": int(len(variant.positions)), "identities": int(len(np.unique(variant.labels))),
           "accuracy": scores.accuracy, "fold_std": scores.accuracy_std, "roc_auc": scores.roc_auc,
           "tar_at_far_1e2": scores.tar_at_far_1e2, "seconds": round(time.perf_counter() - start, 1),
           "effective_rank_normalized": spectrum["probe_effective_rank_normalized"],
           "top_share": spectrum["probe_top_share"], "mean_length": spectrum["probe_mean_length"]}

  rows = each_run(runs(config), "fine-tuning study",
                  run_dir=lambda plan: os.path.join(workdir, plan[0], f"clean_{plan[1]}", f"seed_{plan[2]}"),
                  compute=compute, describe=lambda plan: f"{plan[0]} clean_{plan[1]} seed {plan[2]}",
                  outcome=lambda row: f"accuracy {row['accuracy']:.4f}")
  write_outputs(rows, workdir)
  return rows


def training_plot(rows: List[dict], workdir: str) -> str:
  """SVG: each run's proxy r̃ on its probe faces over training, one panel per fraction ("" when no run logged
  its probe)."""
  panels = []
  for fraction in sorted({row["fraction"] for row in rows}):
    series = []
    for row in rows:
      if row["fraction"] == fraction:
        run_dir = os.path.join(workdir, row["arm"], f"clean_{fraction}", f"seed_{row['seed']}")
        logged = experiment_outputs.probe_series(run_dir)
        if logged["steps"]:
          series.append({"label": row["arm"], "x": logged["steps"], "y": logged["r"]})
    if series:
      panels.append({"title": f"clean_{fraction}: proxy r̃ on its probe faces", "xlabel": "step", "ylabel": "r̃",
                     "series": series})
  return plots.line_panels(panels, 1, width=640) if panels else ""


def summarise(rows: List[dict]) -> List[dict]:
  """Per (arm, fraction): accuracy and ROC-AUC mean and std over seeds (std with n − 1; 0 for one seed), and
  the mean accuracy gain over the scratch ViT at that fraction (None where it has no run)."""
  groups: Dict[Tuple[str, int], List[dict]] = {}
  for row in rows:
    groups.setdefault((row["arm"], row["fraction"]), []).append(row)
  std = lambda values: float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
  out = []
  for (arm, fraction), group in groups.items():
    accuracy = [row["accuracy"] for row in group]
    scratch = groups.get((SCRATCH_ARM, fraction))
    out.append({"arm": arm, "fraction": fraction, "seeds": len(group), "accuracy_mean": float(np.mean(accuracy)),
                "accuracy_std": std(accuracy), "roc_auc_mean": float(np.mean([row["roc_auc"] for row in group])),
                "gain_over_scratch": (float(np.mean(accuracy) - np.mean([row["accuracy"] for row in scratch]))
                                      if scratch and arm != SCRATCH_ARM else None)})
  return out


COLUMNS = ("arm", "pretrained", "fraction", "seed", "images", "identities", "accuracy", "fold_std", "roc_auc",
           "tar_at_far_1e2", "seconds", "effective_rank_normalized", "top_share", "mean_length")


def write_outputs(rows: List[dict], workdir: str) -> None:
  """finetune_study.csv, .json, .md (and finetune_study_training.svg) in `workdir` (module docstring)."""
  summary = summarise(rows)
  files.write_csv(os.path.join(workdir, "finetune_study.csv"), COLUMNS,
                  [[row.get(c, "") for c in COLUMNS] for row in rows])  # "": a run from before a column existed
  training = training_plot(rows, workdir)
  if training:
    files.write_bytes(os.path.join(workdir, "finetune_study_training.svg"), training.encode())
  files.write_json(os.path.join(workdir, "finetune_study.json"), {"rows": rows, "summary": summary})
  fractions = sorted({s["fraction"] for s in summary})
  cell = {(s["arm"], s["fraction"]): s for s in summary}
  arms = list(dict.fromkeys(s["arm"] for s in summary))
  lines = ["| arm | " + " | ".join(f"{f} % of identities" for f in fractions) + " |",
           "|" + " --- |" * (len(fractions) + 1)]
  for arm in arms:
    texts = []
    for fraction in fractions:
      s = cell.get((arm, fraction))
      gain = "" if not s or s["gain_over_scratch"] is None else f" ({s['gain_over_scratch']:+.3f})"
      spread = f" ± {s['accuracy_std']:.3f}" if s and s["seeds"] > 1 else " (one seed)"
      texts.append("" if not s else f"{s['accuracy_mean']:.3f}{spread}{gain}")
    lines.append(f"| {arm} | " + " | ".join(texts) + " |")
  lines += ["", f"Held-out accuracy, mean ± std over seeds (n − 1); in brackets the gain of the mean over "
            f"`{SCRATCH_ARM}`'s at that fraction.", ""]
  ranked = [row for row in rows if "effective_rank_normalized" in row]
  if ranked:
    lines += ["| arm | fraction | seed | r̃ of its training faces | largest eigenvalue's share | mean-embedding length |",
              "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['arm']} | {r['fraction']} | {r['seed']} | {r['effective_rank_normalized']:.3f} | "
              f"{r['top_share']:.3f} | {r['mean_length']:.3f} |" for r in ranked]
    lines += ["", "![r̃ over training](finetune_study_training.svg)" if training else "", ""]
  files.write_bytes(os.path.join(workdir, "finetune_study.md"), "\n".join(lines).encode())
