"""Pretraining the PaCo-style MIM face encoder: state, data-parallel step, data, export.

Data parallel: the batch is sharded over the 1-D mesh, the state is
replicated, and `jax.jit` with those shardings lets XLA insert the gradient
all-reduce. Batches and masks are pure functions of (seed, step), so a resumed
run sees exactly the batches an uninterrupted one would.
"""
import functools
from typing import Any, Dict, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh

from facequal_jax import files, sharding
from facequal_jax.data import align
from facequal_jax.research.faces import decode_labelled_folder
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.encoders.registry import load_encoder
from facequal_jax.research import masking, paco
from facequal_jax.research.training import loop, optimizer, views


@flax.struct.dataclass
class TrainState:
  """step int32 [], params, opt_state, usage float32 [K] (EMA codes per batch), key uint32 [2]."""
  step: jax.Array
  params: Any
  opt_state: Any
  usage: jax.Array
  key: jax.Array


def create_state(config: ml_collections.ConfigDict) -> Tuple[paco.PacoMIM, TrainState]:
  model = paco.PacoMIM(config.model)
  key = jax.random.PRNGKey(config.seed)
  init_key, state_key = jax.random.split(key)
  size, grid = config.model.image_size, config.model.image_size // config.model.patch
  images = jnp.zeros((1, size, size, config.model.channels), jnp.uint8)
  # Jitted: one compilation instead of one per operation of an eager init.
  teacher = jnp.zeros((1, config.model.teacher_dim), jnp.float32)
  params = jax.jit(model.init)(init_key, images, jnp.zeros((1, grid * grid), bool), jnp.bool_(False),
                               images, teacher)["params"]
  # Zero usage: the first step revives every code onto a patch of the batch (a
  # data-dependent start), and codes that stay unused keep being re-seeded.
  usage = jnp.zeros((config.model.codebook_size,), jnp.float32)
  opt_state = jax.jit(optimizer.adamw_warmup_cosine(config).init)(params)
  return model, TrainState(jnp.int32(0), params, opt_state, usage, state_key)


def _train_step(state: TrainState, images: jax.Array, teacher: Optional[jax.Array] = None, *, model: paco.PacoMIM,
                config: ml_collections.ConfigDict):
  """One optimisation step on uint8 images [B, H, W, C] (and, with the teacher target, the teacher's float32
  [B, teacher_dim] embeddings of them); returns (state, metrics)."""
  key, mask_key, revive_key, view_key = jax.random.split(state.key, 4)
  grid = config.model.image_size // config.model.patch
  masks = masking.sample_masks(mask_key, images.shape[0], grid, config.mask_ratio, config.masking,
                               config.model.geometry)
  teacher_forcing = state.step < config.incubation_steps
  masked_view = other_view = images
  if config.model.invariance_weight > 0:
    first_key, second_key = jax.random.split(view_key)
    masked_view = views.random_views(first_key, images, **config.views)
    other_view = views.random_views(second_key, images, **config.views)

  def loss_fn(params):
    terms = model.apply({"params": params}, masked_view, masks, teacher_forcing, other_view, teacher)
    return paco.total_loss(terms, config.model), terms

  (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = optimizer.adamw_warmup_cosine(config).update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics: Dict[str, jax.Array] = {"loss": loss, "grad_norm": optax.tree.norm(grads)}
  metrics.update({k: v for k, v in terms.items() if k != "code_histogram"})
  usage = state.usage
  if config.model.use_codebook:
    histogram = terms["code_histogram"]
    usage = config.usage_decay * usage + (1 - config.usage_decay) * histogram
    tokens = model.apply({"params": params}, paco.patchify(images, config.model.patch),
                         method=lambda m, p: m.embed_patch(p)).reshape(-1, config.model.dim)
    params = flax.core.copy(params, {"codebook": paco.revive_dead_codes(
        params["codebook"], usage, tokens, revive_key, config.dead_code_threshold)})
    metrics["code_perplexity"] = paco.perplexity(histogram)
    metrics["dead_codes"] = jnp.sum(usage < config.dead_code_threshold)
  return TrainState(state.step + 1, params, opt_state, usage, key), metrics


def make_train_step(model: paco.PacoMIM, config: ml_collections.ConfigDict, mesh: Mesh):
  """The jitted step: state replicated, batch (and teacher embeddings) sharded over the mesh rows."""
  replicated = sharding.replicated(mesh)
  batch = sharding.row_sharding(mesh)
  step = functools.partial(_train_step, model=model, config=config)
  inputs = (replicated, batch, batch) if config.model.teacher_weight > 0 else (replicated, batch)
  return jax.jit(step, in_shardings=inputs, out_shardings=(replicated, replicated), donate_argnums=(0,))


def load_faces(config: ml_collections.ConfigDict) -> Tuple[np.ndarray, list, Optional[np.ndarray]]:
  """The faces of every identity folder of `config.data.images` (a folder or a tuple of folders) with at
  least `config.data.min_identity_images` images, labels unused.

  Returns:
    (uint8 [N, S, S, C] faces, decoded with `config.data.align`; the skipped files [(where, reason)];
    with the teacher target on, the pretrained face network's float32 [N, 128] embeddings of the same
    faces — from its own 150 × 150 chips, aligned the same way — centred on their mean and L2-normalised,
    else None).
  """
  channels = "rgb" if config.model.channels == 3 else "grey"
  face = FacePreprocess(config.model.image_size, config.data.crop, channels, config.data.align)
  folders = (config.data.images,) if isinstance(config.data.images, str) else tuple(config.data.images)
  use_teacher = config.model.teacher_weight > 0
  network = load_encoder(None) if use_teacher else None
  kept, teacher, skipped = [], [], []
  for folder in folders:
    images, labels, folder_skipped = decode_labelled_folder(folder, face, config.data.workers, config.data.cache)
    keep = np.bincount(labels, minlength=1)[labels] >= config.data.min_identity_images
    kept.append(images[keep])
    skipped.extend(folder_skipped)
    if use_teacher:  # the same files decode at any size, so the rows line up
      chip = FacePreprocess(align.CHIP_SIZE, config.data.crop, "rgb", config.data.align)
      chips, _, _ = decode_labelled_folder(folder, chip, config.data.workers, config.data.cache)
      chips = chips[keep]  # once, not per chunk
      teacher.append(np.concatenate([network(chips[i:i + 256]) for i in range(0, len(chips), 256)]))
  if not use_teacher:
    return np.concatenate(kept), skipped, None
  # Centred: the network's embeddings of different people still share a cosine of about 0.84 (README), so
  # uncentred targets are matched well (cos 0.92) by a student that tells no one apart.
  teacher = np.concatenate(teacher)
  teacher -= teacher.mean(axis=0)
  return np.concatenate(kept), skipped, teacher / np.linalg.norm(teacher, axis=1, keepdims=True)


def pretrain(config: ml_collections.ConfigDict, images: np.ndarray, workdir: str, mesh: Mesh,
             teacher: Optional[np.ndarray] = None) -> TrainState:
  """Pretrains (or resumes) on uint8 faces [N, S, S, C] in `workdir` (see `loop.train`); returns the state.

  `teacher`: float32 [N, teacher_dim] the teacher's embeddings of the faces (`teacher_embeddings`), needed when
  `config.model.teacher_weight` > 0.
  """
  if (config.model.teacher_weight > 0) != (teacher is not None):
    raise ValueError("teacher embeddings are needed exactly when config.model.teacher_weight > 0")
  model, state = create_state(config)
  state = jax.device_put(state, sharding.replicated(mesh))  # as the step returns it: one compilation, not two
  step_fn = make_train_step(model, config, mesh)

  def batch_at(step):
    positions = loop.batch_positions(len(images), step, config.batch_size, config.seed)
    return (images[positions],) if teacher is None else (images[positions], teacher[positions])

  return loop.train(state, step_fn, batch_at, config, workdir, "MIM pretraining")


ENCODER_FILE = "encoder.msgpack"
# Parameters that embedding touches (the codebook or mask token is created with the model), and the teacher
# target's head, which can start a fine-tuned proxy's embedding head (`finetune.load_pretrained`).
EMBEDDING_PARAMS = ("embed_patch", "encoder", "codebook", "mask_token", "teacher_head")


def export_encoder(state: TrainState, config: ml_collections.ConfigDict, path: str) -> None:
  """Writes what embedding needs — the model config and the EMBEDDING_PARAMS — as one
  msgpack file (atomically)."""
  params = jax.device_get({name: state.params[name] for name in EMBEDDING_PARAMS if name in state.params})
  payload = {"model_config": config.model.to_json(), "crop": config.data.crop, "step": int(state.step),
             "params": params}
  files.write_bytes(path, flax.serialization.msgpack_serialize(payload))
