"""A cleaned copy of a source in the source's own form; the source itself is never written to.

- image folder or `.lst` → `OUT/NAME.lst` (MXNet im2rec lines `index<TAB>label<TAB>absolute path` of the kept
  images) and `OUT/NAME_identities.txt` (the name of label i on line i; labels follow the sorted names);
- insightface `.rec` (+ `.idx`) → `OUT/NAME.rec` + `OUT/NAME.idx`: a header record, the kept image records
  grouped by identity (in source order within one), one record per identity with its key range. Records whose
  identity did not change are copied byte for byte; changed ones get the new label in their header. Labels keep
  their values (a dropped identity leaves a gap);
- `.npz` of embeddings → `OUT/NAME.npz` with the kept rows, their labels and `names`.

The pack is written to `NAME.rec.partial` with a progress file every `chunk_records` records, so a killed
apply resumes where it stopped; every output is renamed into place only when complete.
"""
import hashlib
import json
import os
from typing import Callable, List, Optional

import numpy as np

from facequal_jax import files
from facequal_jax.cleaning.plan import Plan
from facequal_jax.data import recordio
from facequal_jax.data.sources import (UNLISTABLE, EmbeddingsSource, ImageFolderSource, RecordIOSource,
                                       list_names_path)
from facequal_jax.errors import DataError, UsageError
from facequal_jax.progress import Progress


def sample_names(source) -> List[str]:
  return [source.sample_id(i) for i in range(len(source))]


def identity_names(source) -> List[str]:
  """[N] the identity name of every sample."""
  return [source.identity_names[label] for label in source.labels]


def output_path(source, source_path: str, out_dir: str) -> str:
  """Where the cleaned copy goes; refuses an `out_dir` that would put it over or inside the source."""
  real_out, real_source = os.path.realpath(out_dir), os.path.realpath(source_path)
  if isinstance(source, ImageFolderSource):
    if real_out == real_source or real_out.startswith(real_source + os.sep):
      raise UsageError(f"--out={out_dir} is inside the image folder {source_path}: choose a folder outside it")
    return os.path.join(out_dir, os.path.basename(real_source.rstrip(os.sep)) + ".lst")
  if real_out == os.path.dirname(real_source):
    raise UsageError(f"--out={out_dir} holds the source {source_path}: choose another folder")
  return os.path.join(out_dir, os.path.basename(source_path))


def write(source, plan: Plan, path: str, after_chunk: Optional[Callable[[int], None]] = None,
          chunk_records: int = 10000) -> List[str]:
  """Writes the cleaned copy of `source` under `plan` to `path` (from `output_path`); returns the files written."""
  if isinstance(source, RecordIOSource):
    return write_pack(source, plan, path, after_chunk, chunk_records)
  if isinstance(source, EmbeddingsSource):
    names = sorted(set(source.identity_names) | set(np.asarray(plan.identity, object)[plan.keep]))
    code = {name: label for label, name in enumerate(names)}
    files.write_npz(path, embeddings=source.embeddings[plan.keep],
                    labels=np.asarray([code[plan.identity[i]] for i in np.flatnonzero(plan.keep)], np.int64),
                    names=np.asarray(names, str))
    return [path]
  return write_list(source, plan, path)


def write_list(source, plan: Plan, path: str) -> List[str]:
  """The kept images of an image folder or list as an im2rec `.lst` and its identity names."""
  kept = np.flatnonzero(plan.keep)
  names = sorted({plan.identity[i] for i in kept})
  unlistable = [name for name in names if any(character in name for character in UNLISTABLE)]
  if unlistable:  # an identity a decision names: the source's own names were checked when it was listed
    raise UsageError(f"the identity name {unlistable[0]!r} holds a tab or a line break, which an im2rec list "
                     "cannot carry: name it otherwise in the decisions file")
  code = {name: label for label, name in enumerate(names)}
  lines = "".join(f"{n}\t{code[plan.identity[i]]}\t{os.path.abspath(source.paths[i])}\n" for n, i in enumerate(kept))
  files.write_bytes(list_names_path(path), "".join(f"{name}\n" for name in names).encode())
  files.write_bytes(path, lines.encode())
  return [path, list_names_path(path)]


def _relabelled(data: bytes, label: int, where: str) -> bytes:
  header, payload = recordio.unpack(data, where)
  if header.flag > 0:
    vector = np.array(header.label, np.float32)
    vector[0] = label
    return recordio.pack(recordio.ImageHeader(header.flag, vector, header.id, header.id2), payload)
  return recordio.pack(recordio.ImageHeader(0, float(label), header.id, header.id2), payload)


def _pack_labels(source: RecordIOSource, plan: Plan, kept: np.ndarray) -> np.ndarray:
  labels = []
  for i in kept:
    try:
      labels.append(int(plan.identity[i]))
    except ValueError:
      raise DataError(f"a .rec pack's identities are integer labels: {source.describe(i)} cannot join "
                      f"{plan.identity[i]!r}") from None
  return np.asarray(labels, np.int64)


def write_pack(source: RecordIOSource, plan: Plan, rec_path: str, after_chunk=None, chunk_records: int = 10000
               ) -> List[str]:
  """The kept records as a new insightface pack at `rec_path` (+ `.idx`), resumable (see the module doc)."""
  idx_path = os.path.splitext(rec_path)[0] + ".idx"
  kept = np.flatnonzero(plan.keep)
  labels = _pack_labels(source, plan, kept)
  order = np.argsort(labels, kind="stable")  # grouped by identity, source order within one
  kept, labels = kept[order], labels[order]
  fingerprint = hashlib.sha256(kept.tobytes() + labels.tobytes() + plan.changed.tobytes()
                               + os.path.realpath(source.reader.path).encode()).hexdigest()
  partial, idx_partial, state_path = rec_path + ".partial", idx_path + ".partial", rec_path + ".progress.json"
  state = {}
  if os.path.exists(state_path) and os.path.exists(partial):
    with open(state_path) as f:
      state = json.load(f)
    if state.get("fingerprint") != fingerprint:
      state = {}
  if state:  # drop whatever was written after the last progress file
    os.truncate(partial, state["rec_bytes"])
    os.truncate(idx_partial, state["idx_bytes"])
  done = state.get("records", 0)
  identities, starts = np.unique(labels, return_index=True)
  ends = np.r_[starts[1:], len(labels)]
  first_identity_key = len(kept) + 1
  progress = Progress("writing the cleaned pack", total=len(kept), unit="records", done=done)
  with recordio.RecordIOWriter(partial, idx_partial, append=bool(state)) as writer:
    if not state:
      writer.write(0, recordio.pack(recordio.ImageHeader(2, [first_identity_key, first_identity_key + len(identities)]),
                                    b""))
    for position in range(done, len(kept)):
      row = kept[position]
      data = source.record(row)
      if plan.changed[row]:
        data = _relabelled(data, labels[position], source.describe(row))
      writer.write(position + 1, data)
      progress.advance(1)
      if (position + 1) % chunk_records == 0 and position + 1 < len(kept):
        rec_bytes, idx_bytes = writer.flush()
        files.write_json(state_path, {"fingerprint": fingerprint, "records": position + 1, "rec_bytes": rec_bytes,
                                      "idx_bytes": idx_bytes})
        if after_chunk:
          after_chunk((position + 1) // chunk_records)
    for key, (start, end) in enumerate(zip(starts, ends), first_identity_key):
      writer.write(key, recordio.pack(recordio.ImageHeader(2, [start + 1, end + 1]), b""))
    writer.flush()
  os.replace(idx_partial, idx_path)
  os.replace(partial, rec_path)
  if os.path.exists(state_path):
    os.remove(state_path)
  return [rec_path, idx_path]
