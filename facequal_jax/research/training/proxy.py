"""Training the ArcFace proxy: state, data-parallel step, embedding (the loop is `loop.train`).

The backbone is `config.model.name`: "resnet" (`FaceResNet`) or "vit"
(`FaceViT`, the PaCo-FR encoder), from scratch or — `config.init`, an
`encoder.msgpack` — initialised from a pretraining checkpoint, with layer-wise
learning-rate decay `config.layer_decay` (see `finetune.py`). Its embedding
head ends in `config.model.head_norm`; a BatchNorm head's running moments
travel in the state beside the parameters.

The backbone is replicated and the batch split over the 1-D mesh (data
parallel); the ArcFace class centres — and their optimiser moments — are split
over the same mesh along the classes (see `arcface.py`). Batches and
augmentation are pure functions of (seed, step), so a resumed run continues
exactly where the interrupted one stopped. With `config.probe_images`, every
logged step also records the spectrum of that many fixed training faces
(`probe_spectrum`): how r̃ moves while the proxy trains.
"""
import functools
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh

from facequal_jax import sharding
from facequal_jax.metrics import spectrum
from facequal_jax.research import backbone
from facequal_jax.research.training import arcface, finetune, loop, optimizer


@flax.struct.dataclass
class ProxyState:
  """step int32 [], params {"backbone", "centres" [C_pad, D]}, opt_state, batch_stats (the BatchNorm head's
  running moments; {} for a LayerNorm head)."""
  step: jax.Array
  params: Any
  opt_state: Any
  batch_stats: Any


def make_model(config: ml_collections.ConfigDict):
  """The backbone of `config.model` (see the module docstring)."""
  m = config.model
  norm = m.get("head_norm", "layernorm")
  if norm not in backbone.HEAD_NORMS:
    raise ValueError(f"model.head_norm must be one of {backbone.HEAD_NORMS}, got {norm!r}")
  if m.name == "vit":
    if m.pool not in backbone.POOLS:
      raise ValueError(f"model.pool must be one of {backbone.POOLS}, got {m.pool!r}")
    return backbone.FaceViT(m.patch, m.dim, m.depth, m.heads, m.mlp_ratio, m.embedding_dim, m.pool, m.drop_path,
                            norm)
  if m.name == "resnet":
    return backbone.FaceResNet(tuple(m.widths), m.blocks_per_stage, m.embedding_dim, m.stem_stride, norm)
  raise ValueError(f"model.name must be 'resnet' or 'vit', got {m.name!r}")


def make_optimizer(config: ml_collections.ConfigDict, params) -> optax.GradientTransformation:
  """AdamW with warmup and cosine decay; for the ViT, with layer-wise learning-rate decay."""
  adamw = optimizer.adamw_warmup_cosine(config)
  if config.model.name != "vit" or config.layer_decay == 1.0:
    return adamw
  return optax.chain(adamw, finetune.scale_updates(finetune.layer_scales(params, config.model.depth,
                                                                          config.layer_decay)))


def padded_classes(num_classes: int, mesh: Mesh) -> int:
  devices = sharding.mesh_size(mesh)
  return -(-num_classes // devices) * devices


def state_shardings(state: ProxyState, mesh: Mesh):
  """The class centres and their optimiser moments (every leaf under a "centres" key) split over the mesh
  along the classes; the rest replicated."""
  split, replicated = sharding.row_sharding(mesh), sharding.replicated(mesh)
  is_centres = lambda path: any(getattr(key, "key", None) == "centres" for key in path)
  return jax.tree_util.tree_map_with_path(lambda path, _: split if is_centres(path) else replicated, state)


def create_state(config: ml_collections.ConfigDict, num_classes: int, mesh: Mesh):
  """(model, placed initial state, its shardings)."""
  model = make_model(config)
  backbone_key, centre_key = jax.random.split(jax.random.PRNGKey(config.seed))
  size = config.model.image_size
  example = jnp.zeros((1, size, size, config.model.channels), jnp.uint8)
  # Padding classes (up to a multiple of the devices) follow the real ones; JAX's counter-based
  # (partitionable) threefry gives the real rows the same start on any number of devices.
  variables = jax.jit(model.init)(backbone_key, example)  # one compilation, not one per op
  backbone_params = variables["params"]
  if config.get("init"):
    backbone_params = finetune.load_pretrained(backbone_params, config.init, config.init_head)
  params = {"backbone": backbone_params,
            "centres": 0.01 * jax.random.normal(centre_key, (padded_classes(num_classes, mesh),
                                                              config.model.embedding_dim))}
  state = ProxyState(jnp.int32(0), params, jax.jit(make_optimizer(config, params).init)(params),
                     variables.get("batch_stats", {}))
  shardings = state_shardings(state, mesh)
  return model, jax.device_put(state, shardings), shardings


def _augment(images: jax.Array, key: jax.Array) -> jax.Array:
  """Random horizontal flips of uint8 [B, H, W, C]."""
  flip = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
  return jnp.where(flip, images[:, :, ::-1], images)


def _train_step(state, images, labels, *, model, config, mesh, num_classes):
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), state.step)
  images = _augment(images, key)
  dropout_key = jax.random.fold_in(key, 1)  # a new stream; the flips keep theirs

  def loss_fn(params):
    embeddings, updated = model.apply(_variables(params["backbone"], state.batch_stats), images, train=True,
                                      rngs={"dropout": dropout_key}, mutable=["batch_stats"])
    loss = arcface.sharded_loss(embeddings, labels, params["centres"], mesh=mesh, scale=config.arcface.scale,
                                margin=config.arcface.margin, num_classes=num_classes)
    return loss, updated.get("batch_stats", {})

  (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = make_optimizer(config, state.params).update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  return ProxyState(state.step + 1, params, opt_state, batch_stats), {"loss": loss}


def _variables(backbone_params, batch_stats) -> dict:
  """The backbone's flax variables: its parameters and, for a BatchNorm head, its running moments."""
  return {"params": backbone_params, "batch_stats": batch_stats} if batch_stats else {"params": backbone_params}


def make_train_step(model, config: ml_collections.ConfigDict, mesh: Mesh, num_classes: int, shardings):
  """Jitted step (state, uint8 images [B, H, W, C], int32 labels [B]) → (state, {"loss"})."""
  batch, replicated = sharding.row_sharding(mesh), sharding.replicated(mesh)
  step = functools.partial(_train_step, model=model, config=config, mesh=mesh, num_classes=num_classes)
  return jax.jit(step, in_shardings=(shardings, batch, batch), out_shardings=(shardings, replicated),
                 donate_argnums=(0,))


def train(config: ml_collections.ConfigDict, images: np.ndarray, labels: np.ndarray, workdir: str,
          mesh: Mesh) -> Callable[[np.ndarray], np.ndarray]:
  """Trains (or resumes) a proxy in `workdir` (see `loop.train`); returns its embedding function.

  Args:
    images: uint8 [N, S, S, C] faces at the model's size.
    labels: int [N] identities (any integers; remapped to 0 … C − 1 here).
    workdir: checkpoints/ and metrics.jsonl go here.

  Returns:
    embed: uint8 [B, S, S, C] → unit float32 [B, D] numpy embeddings.
  """
  if config.batch_size % sharding.mesh_size(mesh):
    raise ValueError(f"batch_size {config.batch_size} is not a multiple of the {sharding.mesh_size(mesh)} devices")
  if len(images) < config.batch_size:
    raise ValueError(f"{len(images)} training images are fewer than one batch of {config.batch_size}")
  _, classes = np.unique(labels, return_inverse=True)
  num_classes = int(classes.max()) + 1
  model, state, shardings = create_state(config, num_classes, mesh)
  step_fn = make_train_step(model, config, mesh, num_classes, shardings)

  def batch_at(step):
    positions = loop.batch_positions(len(images), step, config.batch_size, config.seed)
    return images[positions], classes[positions].astype(np.int32)

  probe = None
  if config.get("probe_images", 0):
    probe_images = images[np.sort(np.random.default_rng(0).permutation(len(images))[:config.probe_images])]
    apply = embedding_fn(model)
    probe = lambda state: probe_spectrum(embedder(model, state_variables(state), mesh, apply)(probe_images))
  state = loop.train(state, step_fn, batch_at, config, workdir, "proxy training", probe)
  return embedder(model, state_variables(state), mesh)


def state_variables(state: ProxyState) -> dict:
  """The trained backbone's flax variables (what `embedder` takes)."""
  return _variables(state.params["backbone"], state.batch_stats)


def probe_spectrum(embeddings: np.ndarray) -> dict:
  """The spectrum of unit embeddings [n, D] as metrics.jsonl fields: r̃, effective rank, RankMe, stable rank,
  the largest eigenvalue's share of the variance, and the length of the mean embedding (1: all the same)."""
  measured = spectrum.spectrum(embeddings)
  return {"probe_effective_rank_normalized": measured.effective_rank_normalized,
          "probe_effective_rank": measured.effective_rank, "probe_rankme": measured.rankme,
          "probe_stable_rank": measured.stable_rank,
          "probe_top_share": float(measured.eigenvalues[0] / max(measured.eigenvalues.sum(), 1e-30)),
          "probe_mean_length": float(np.linalg.norm(embeddings.astype(np.float64).mean(axis=0)))}


def embedding_fn(model) -> Callable:
  """Jitted (variables, uint8 [B, S, S, C]) → unit float32 [B, D] embeddings (inference mode)."""
  @jax.jit
  def apply(variables, images):
    embeddings = model.apply(variables, images)
    return embeddings / jnp.linalg.norm(embeddings, axis=1, keepdims=True)
  return apply


def embedder(model, variables, mesh: Mesh, apply: Callable = None, chunk: int = 512):
  """uint8 [B, S, S, C] → unit float32 [B, D] numpy embeddings, `chunk` images per sharded call.

  `variables` are the backbone's (`state_variables`); `apply` an `embedding_fn(model)` to reuse its
  compilation (a new one by default)."""
  variables = jax.device_put(variables, sharding.replicated(mesh))
  apply = functools.partial(apply or embedding_fn(model), variables)

  def embed(images: np.ndarray) -> np.ndarray:
    return np.concatenate([sharding.apply_to_batch(apply, images[i:i + chunk], mesh)
                           for i in range(0, len(images), chunk)])
  return embed
