"""The ViT proxy fine-tuned from a PaCo-FR checkpoint: exact loading, refusals, sharding, resume, learning rates."""
import shutil

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import facequal_jax as fq
from facequal_jax.research.configs import finetune_study as finetune_study_config
from facequal_jax.research.configs import pretrain_paco, protocol_lfw, proxy_arcface
from facequal_jax.errors import DataError
from facequal_jax.research import pretraining_study
from facequal_jax.models.vit import Block
from facequal_jax.research.training import finetune, loop, mim, proxy

from tests.test_training import _interrupt_after_the_first_checkpoint

SIZES = dict(image_size=16, patch=4, dim=16, depth=2, heads=2)


def _checkpoint(tmp_path, name="encoder.msgpack", **changes):
  """A pretraining state at init (seed 3) exported as an encoder.msgpack: (path, its params)."""
  config = pretrain_paco.get_config("tiny")
  config.seed = 3
  config.model.update(decoder_dim=16, decoder_depth=1, codebook_size=8, **{**SIZES, **changes})
  _, state = mim.create_state(config)
  path = str(tmp_path / name)
  mim.export_encoder(state, config, path)
  return path, jax.device_get(state.params)


def _vit_config(steps=1, init=""):
  config = proxy_arcface.get_config("vit")
  config.model.update(embedding_dim=8, drop_path=0.5, **SIZES)
  config.update(batch_size=16, steps=steps, warmup_steps=1, log_every=1, checkpoint_every=2, init=init,
                layer_decay=0.5)
  return config


def _flat(tree):
  return {"/".join(path): np.asarray(leaf) for path, leaf in flax.traverse_util.flatten_dict(tree).items()}


def test_checkpoint_initialises_every_encoder_parameter_exactly(tmp_path):
  """One teacher-pretrained checkpoint: its encoder is copied leaf by leaf, its teacher head only with init_head."""
  path, pretrained = _checkpoint(tmp_path, teacher_weight=1.0, teacher_dim=8)
  _, state, _ = proxy.create_state(_vit_config(init=path), num_classes=5, mesh=fq.make_mesh(1))
  loaded = _flat(jax.device_get(state.params["backbone"]))
  source = _flat({name: pretrained[name] for name in ("embed_patch", "encoder")})
  assert len(source) == 2 + 1 + 2 * 16 + 2  # patch kernel + bias, positions, 2 blocks × 16 leaves, final norm
  for name, value in source.items():
    np.testing.assert_array_equal(loaded[name], value, err_msg=name)
  assert set(loaded) - set(source) == {"head/kernel", "head/bias", "head_norm/scale", "head_norm/bias"}
  # init_head (a mean-pooled head, the teacher head's shape) starts the head from the teacher head too; the
  # same seed from scratch gives other encoder weights, so the copy is what made them equal above.
  config = _vit_config(init=path)
  config.model.pool, config.init_head = "mean", True
  _, state, _ = proxy.create_state(config, num_classes=5, mesh=fq.make_mesh(1))
  headed = _flat(jax.device_get(state.params["backbone"]))
  np.testing.assert_array_equal(headed["head/kernel"], pretrained["teacher_head"]["kernel"])
  np.testing.assert_array_equal(headed["head/bias"], pretrained["teacher_head"]["bias"])
  np.testing.assert_array_equal(headed["encoder/positions"], source["encoder/positions"])
  config.init = ""
  _, scratch, _ = proxy.create_state(config, num_classes=5, mesh=fq.make_mesh(1))
  assert not np.array_equal(_flat(jax.device_get(scratch.params["backbone"]))["embed_patch/kernel"],
                            source["embed_patch/kernel"])


def test_a_checkpoint_that_does_not_fit_is_refused_naming_the_parameter(tmp_path):
  path, _ = _checkpoint(tmp_path)
  payload = finetune.read_checkpoint(path)
  encoder = payload["params"]["encoder"]
  cases = {  # what the checkpoint holds instead → what the error must name
      "extra block": ({**encoder, "Block_2": encoder["Block_1"]},
                      "encoder/Block_2/Dense_0/bias is in the checkpoint but not in the model"),
      "missing block": ({k: v for k, v in encoder.items() if k != "Block_1"},
                        "encoder/Block_1/Dense_0/bias is not in the checkpoint"),
      "other image size": ({**encoder, "positions": np.zeros((64, 16), np.float32)},
                           "encoder/positions has shape (64, 16) in the checkpoint, (16, 16) in the model"),
      "no teacher head for init_head": (encoder, "head/bias is not in the checkpoint"),
  }
  for case, (changed, named) in cases.items():
    bad = str(tmp_path / f"{case}.msgpack")
    with open(bad, "wb") as f:
      f.write(flax.serialization.msgpack_serialize({**payload, "params": {**payload["params"], "encoder": changed}}))
    config = _vit_config(init=bad)
    if case == "no teacher head for init_head":
      config.model.pool, config.init_head = "mean", True
    with pytest.raises(DataError, match="does not fit") as error:
      proxy.create_state(config, num_classes=5, mesh=fq.make_mesh(1))
    assert named in str(error.value) and bad in str(error.value), case


def test_a_missing_or_foreign_checkpoint_file_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match="nowhere.msgpack"):
    finetune.read_checkpoint(str(tmp_path / "nowhere.msgpack"))
  (tmp_path / "junk.msgpack").write_bytes(b"\x01\x02 not msgpack")
  with pytest.raises(DataError, match="junk.msgpack"):
    finetune.read_checkpoint(str(tmp_path / "junk.msgpack"))


def _data():
  rng = np.random.default_rng(0)
  return rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8), np.repeat(np.arange(13), 5)[:64] * 7


def test_a_fine_tuning_step_on_eight_devices_equals_one(tmp_path):
  path, _ = _checkpoint(tmp_path)
  images, labels = _data()
  _, classes = np.unique(labels, return_inverse=True)
  results = {}
  for devices in (1, 8):
    mesh, config = fq.make_mesh(devices), _vit_config(init=path)
    model, state, shardings = proxy.create_state(config, 13, mesh)
    step = proxy.make_train_step(model, config, mesh, 13, shardings)
    for i in range(2):  # the second step has a non-zero learning rate (warmup from 0)
      positions = loop.batch_positions(len(images), i, config.batch_size, config.seed)
      state, metrics = step(state, images[positions], classes[positions].astype(np.int32))
    params = jax.device_get(state.params)
    params["centres"] = params["centres"][:13]  # padded to 16 rows on 8 devices: compare the real ones
    results[devices] = (float(metrics["loss"]), params)
  (loss_one, params_one), (loss_eight, params_eight) = results[1], results[8]
  assert np.isfinite(loss_one) and loss_eight == pytest.approx(loss_one, rel=1e-5)
  for name, one in _flat(params_one).items():
    # A key bias shifts every logit of a query alike, so its true gradient is exactly 0: what is left is
    # rounding noise, which Adam scales up to steps as large as the learning rate (2e-3) in either direction.
    tolerance = 2 * config.learning_rate if name.endswith("key/bias") else 2e-5
    np.testing.assert_allclose(_flat(params_eight)[name], one, atol=tolerance, rtol=1e-4, err_msg=name)


def test_fine_tuning_resumes_exactly(tmp_path):
  path, _ = _checkpoint(tmp_path)
  images, labels = _data()
  config, mesh = _vit_config(steps=4, init=path), fq.make_mesh(2)
  straight = proxy.train(config, images, labels, str(tmp_path / "straight"), mesh)(images[:8])
  workdir = str(tmp_path / "resumed")
  shutil.copytree(tmp_path / "straight", workdir)
  _interrupt_after_the_first_checkpoint(workdir, config)
  np.testing.assert_array_equal(proxy.train(config, images, labels, workdir, mesh)(images[:8]), straight)


def test_layer_scales_decay_with_depth():
  params = {"backbone": {"embed_patch": {"kernel": 0}, "encoder": {"positions": 0, "Block_0": {"Dense_0": {"kernel": 0}},
                                                                  "Block_1": {"LayerNorm_0": {"scale": 0}},
                                                                  "LayerNorm_0": {"scale": 0}},
                         "head": {"kernel": 0}}, "centres": 0}
  scales = finetune.layer_scales(params, depth=2, decay=0.5)
  assert _flat(scales) == {"backbone/embed_patch/kernel": 0.125, "backbone/encoder/positions": 0.125,
                           "backbone/encoder/Block_0/Dense_0/kernel": 0.25,
                           "backbone/encoder/Block_1/LayerNorm_0/scale": 0.5,
                           "backbone/encoder/LayerNorm_0/scale": 1.0, "backbone/head/kernel": 1.0, "centres": 1.0}
  updates = jax.tree.map(lambda _: 2.0, params)
  scaled, _ = finetune.scale_updates(scales).update(updates, None)
  assert _flat(scaled)["backbone/encoder/Block_0/Dense_0/kernel"] == 0.5


def test_drop_path_skips_whole_branches_per_sample():
  """Each sample's output is one of the four branch combinations, kept branches scaled by 1 / (1 − p)."""
  block, rate = Block(8, 2, 2, drop_path=0.5), 0.5
  x = jax.random.normal(jax.random.PRNGKey(0), (64, 5, 8))
  params = block.init(jax.random.PRNGKey(1), x)["params"]
  out = np.asarray(block.apply({"params": params}, x, deterministic=False, rngs={"dropout": jax.random.PRNGKey(2)}))
  np.testing.assert_array_equal(block.apply({"params": params}, x), block.apply({"params": params}, x))

  def attention(h):
    normed = nn.LayerNorm().apply({"params": params["LayerNorm_0"]}, h)
    return nn.MultiHeadDotProductAttention(num_heads=2).apply(
        {"params": params["MultiHeadDotProductAttention_0"]}, normed)

  def mlp(h):
    hidden = nn.Dense(16).apply({"params": params["Dense_0"]}, nn.LayerNorm().apply({"params": params["LayerNorm_1"]}, h))
    return nn.Dense(8).apply({"params": params["Dense_1"]}, nn.gelu(hidden))

  kinds = []
  for keep_attention in (0.0, 1.0):
    for keep_mlp in (0.0, 1.0):
      h = x + keep_attention / (1 - rate) * attention(x)
      kinds.append(np.asarray(h + keep_mlp / (1 - rate) * mlp(h)))
  matched = [[np.allclose(out[i], kind[i], atol=1e-5) for kind in kinds] for i in range(len(x))]
  assert all(any(row) for row in matched)
  counts = np.sum(matched, axis=0)
  assert all(counts > 3), counts  # every combination occurs (expected 16 of 64 each)
  kept = np.asarray(block.apply({"params": params}, x))
  np.testing.assert_allclose(kept, np.asarray(x + attention(x) + mlp(x + attention(x))), atol=1e-5)
  assert jnp.isfinite(out).all()


def test_the_bundled_encoder_initialises_the_protocols_vit_proxy():
  config = protocol_lfw.get_config("vit")
  assert (config.proxy.model.name, config.proxy.init, config.data.align) == ("vit", "paco_fr", "detect")
  _, state, _ = proxy.create_state(config.proxy, num_classes=3, mesh=fq.make_mesh(1))
  bundled = finetune.read_checkpoint("paco_fr")["params"]
  loaded = _flat(jax.device_get(state.params["backbone"]))
  for name, value in _flat({name: bundled[name] for name in finetune.ENCODER_PARAMS}).items():
    np.testing.assert_array_equal(loaded[name], value, err_msg=name)


def test_study_summary_by_hand():
  rows = [{"arm": "vit_scratch", "fraction": 50, "seed": 0, "accuracy": 0.60, "roc_auc": 0.64},
          {"arm": "vit_scratch", "fraction": 50, "seed": 1, "accuracy": 0.64, "roc_auc": 0.68},
          {"arm": "vit_paco", "fraction": 50, "seed": 0, "accuracy": 0.70, "roc_auc": 0.75},
          {"arm": "vit_paco", "fraction": 50, "seed": 1, "accuracy": 0.66, "roc_auc": 0.73},
          {"arm": "vit_paco", "fraction": 25, "seed": 0, "accuracy": 0.61, "roc_auc": 0.70}]
  summary = {(s["arm"], s["fraction"]): s for s in pretraining_study.summarise(rows)}
  paco = summary[("vit_paco", 50)]
  assert paco["accuracy_mean"] == pytest.approx(0.68) and paco["roc_auc_mean"] == pytest.approx(0.74)
  assert paco["accuracy_std"] == pytest.approx(np.sqrt(2 * 0.02 ** 2))  # n − 1 = 1
  assert paco["gain_over_scratch"] == pytest.approx(0.68 - 0.62)
  assert summary[("vit_scratch", 50)]["gain_over_scratch"] is None
  assert summary[("vit_paco", 25)]["gain_over_scratch"] is None and summary[("vit_paco", 25)]["accuracy_std"] == 0.0


def test_every_study_arm_fine_tunes_with_the_same_budget():
  config = finetune_study_config.get_config("")
  runs = pretraining_study.runs(config)
  assert len(runs) == (3 * 3 + 2 + 4) * 2 and len(set(runs)) == len(runs)
  for name, arm in config.arms.items():
    proxy_config = pretraining_study.arm_proxy_config(config, arm, seed=1)
    assert (proxy_config.steps, proxy_config.batch_size, proxy_config.seed) == (300, 64, 1)
    assert proxy_config.model.image_size == 64 and proxy_config.model.name == ("resnet" if name == "resnet" else "vit")
    assert proxy_config.init == ("" if not arm.pretrained else f"/tmp/paco/{arm.pretrained}/encoder.msgpack")
