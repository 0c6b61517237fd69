"""Fine-tuning a pretrained PaCo-FR encoder as the proxy's backbone: loading it, and layer-wise learning rates.

Loading (`load_pretrained`): every parameter of the checkpoint's encoder — the
patch embedding `embed_patch` and the transformer `encoder` (positions,
blocks, final norm) — is copied by name into the `FaceViT` backbone's
parameters of the same name; the embedding head stays as initialised. A
parameter the backbone lacks, one the checkpoint lacks, or one whose shape
differs is an error that names it. The checkpoint's pretraining-only
parameters (the codebook or mask token) are not used. With `init_head`, the
head starts from the checkpoint's teacher head too (an encoder pretrained with
the teacher target, a backbone with `pool="mean"`: the head then maps the mean
token to the teacher's embedding space, as in pretraining).

Layer-wise learning-rate decay (`layer_scales`, as in BEiT / MAE fine-tuning):
the update of a parameter at depth l is scaled by decay^(L + 1 − l), where the
patch embedding and positions are depth 0, block i is depth i + 1, and the
final norm, the head and everything outside the backbone (the ArcFace
centres) depth L + 1 (scale 1).
"""
import re
from typing import Any, Dict

import flax
import jax
import numpy as np
import optax

from facequal_jax.encoders.registry import checkpoint_path
from facequal_jax.errors import DataError, MissingFile

ENCODER_PARAMS = ("embed_patch", "encoder")
HEAD, TEACHER_HEAD = "head", "teacher_head"  # the proxy's embedding head; the teacher target's head


def _flat(tree) -> Dict[str, Any]:
  return {"/".join(path): leaf for path, leaf in flax.traverse_util.flatten_dict(tree).items()}


def read_checkpoint(path: str) -> dict:
  """The payload of an `encoder.msgpack` (`training/mim.export_encoder`; or a bundled encoder's name, see
  `encoders/mim.py`): model_config, crop, step, params."""
  path = checkpoint_path(path)
  try:
    with open(path, "rb") as f:
      payload = flax.serialization.msgpack_restore(f.read())
  except FileNotFoundError as error:
    raise MissingFile(f"pretrained encoder {path!r} does not exist") from error
  except (OSError, ValueError) as error:
    raise DataError(f"{path!r} is not a readable encoder.msgpack: {error}") from error
  if not isinstance(payload, dict) or not isinstance(payload.get("params"), dict):
    raise DataError(f"{path!r} is not an encoder.msgpack from train/pretrain.py (no 'params')")
  return payload


def load_pretrained(backbone_params, path: str, init_head: bool = False):
  """`backbone_params` (a `FaceViT`'s) with every encoder parameter — and with `init_head`, the head —
  replaced by the checkpoint's at `path`.

  Raises:
    DataError: a parameter missing on either side or of another shape (named, with both shapes).
  """
  params = read_checkpoint(path)["params"]
  names = ENCODER_PARAMS + ((HEAD,) if init_head else ())
  pretrained = {name: params[name] for name in ENCODER_PARAMS if name in params}
  if init_head and TEACHER_HEAD in params:
    pretrained[HEAD] = params[TEACHER_HEAD]
  source = _flat(pretrained)
  target = _flat({name: backbone_params[name] for name in names if name in backbone_params})
  problems = [f"{name} is not in the checkpoint" for name in target if name not in source]
  problems += [f"{name} is in the checkpoint but not in the model" for name in source if name not in target]
  problems += [f"{name} has shape {np.shape(source[name])} in the checkpoint, {np.shape(target[name])} in the model"
               for name in target if name in source and np.shape(source[name]) != np.shape(target[name])]
  if problems:
    raise DataError(f"pretrained encoder {path!r} does not fit the proxy's backbone: " + "; ".join(problems[:5])
                    + (f"; and {len(problems) - 5} more" if len(problems) > 5 else ""))
  loaded = flax.traverse_util.flatten_dict(flax.core.unfreeze(backbone_params))
  for path_tuple in loaded:
    name = "/".join(path_tuple)
    if name in source:
      loaded[path_tuple] = jax.numpy.asarray(source[name], dtype=np.asarray(target[name]).dtype)
  return flax.traverse_util.unflatten_dict(loaded)


def layer_scales(params, depth: int, decay: float):
  """A tree like `params` ({"backbone": …, "centres": …}) of float learning-rate scales (module docstring)."""
  def scale(path, _):
    names = [getattr(key, "key", "") for key in path]
    if names[0] != "backbone" or names[1] not in ENCODER_PARAMS:
      return 1.0
    block = re.fullmatch(r"Block_(\d+)", names[2]) if len(names) > 2 else None
    layer = 0 if names[1] == "embed_patch" or names[2] == "positions" else (
        int(block.group(1)) + 1 if block else depth + 1)
    return float(decay ** (depth + 1 - layer))
  return jax.tree_util.tree_map_with_path(scale, params)


def scale_updates(scales) -> optax.GradientTransformation:
  """Multiplies each update leaf by its scale in `scales` (a tree like the parameters)."""
  def update(updates, state, params=None):
    del params
    return jax.tree.map(lambda u, s: u * s, updates, scales), state
  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)
