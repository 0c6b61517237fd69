r"""How well embeddings separate identities: raw pixels, eigenfaces, the MIM encoder and the face network.

For ORL (all 400 bundled faces) and the LFW-dev identities with >= 10 images:
leave-one-out 1-NN identification accuracy (cosine) and verification ROC-AUC over
all pairs, for (a) raw pixels, (b) PCA eigenfaces fitted on the set itself,
(c) the encoder at random initialisation, (d) a plain MAE (no codebook, random
masking), (e) the full encoder and, optionally, (f) the full encoder trained
with the view-invariance loss; (g, h) the pretrained face network on detected and
aligned faces and on centred crops; on the same detected and aligned faces, (i)
raw pixels and (j) eigenfaces (64 × 64), and (k) the bundled PaCo-FR encoder (`paco_fr`). The LFW set is also scored without its largest
identity (George_W_Bush, 530 images, 82 % of its genuine pairs).

  python -m benchmarks.eval_encoder --mae=/tmp/paco_mae/encoder.msgpack --full=/tmp/paco_full/encoder.msgpack \
      --invariant=/tmp/paco_inv/encoder.msgpack
"""
import json
import os
import tempfile

import jax
import numpy as np
from absl import app, flags

import facequal_jax as fq
from facequal_jax.research.configs import pretrain_paco
from facequal_jax.data import orl
from facequal_jax.data.pipeline import decode_batches
from facequal_jax.data.preprocess import FacePreprocess
from facequal_jax.data.sources import ImageFolderSource
from facequal_jax.encoders.eigenfaces import EigenfaceEncoder
from facequal_jax.encoders.mim import load_mim_encoder as load_encoder
from facequal_jax.research import verification
from facequal_jax.research.training import mim

_LFW = flags.DEFINE_string("lfw", "../shared/data/lfw_dev", "LFW-dev image folder.")
_MAE = flags.DEFINE_string("mae", None, "encoder.msgpack of the plain-MAE ablation (d).")
_FULL = flags.DEFINE_string("full", None, "encoder.msgpack of the full encoder (e).")
_INVARIANT = flags.DEFINE_string("invariant", None, "encoder.msgpack of the full encoder with view invariance (f).")
_MIN_IMAGES = flags.DEFINE_integer("min_images", 10, "LFW identities with at least this many images.")
_FACE_NETWORK = flags.DEFINE_bool("face_network", True, "also score the pretrained face network and, on its "
                                  "aligned faces, pixels and the bundled PaCo-FR encoder (extra `faces`).")


def lfw_faces(root: str, min_images: int, face: FacePreprocess = FacePreprocess(112, 120, "rgb")):
  source = ImageFolderSource(root)
  counts = np.bincount(source.labels)
  rows = np.flatnonzero(counts[source.labels] >= min_images)
  images = np.concatenate([b.images for b in decode_batches(source, rows, face, 256)])
  return images, source.labels[rows]


def face_network_rows(lfw_rest: np.ndarray):
  """The face network through the job's preprocessing: {row name: (ORL faces, LFW faces, their subset)}."""
  orl_source = orl.orl_source()
  rows = {}
  for name, align, crop in (("(g) face network, detected + aligned", "detect", 0),
                            ("(h) face network, centred crop (120 px on LFW)", "centre", 120)):
    orl_face, lfw_face = FacePreprocess(150, 0, "rgb", align), FacePreprocess(150, crop, "rgb", align)
    orl_chips = np.concatenate([b.images for b in decode_batches(orl_source, range(len(orl_source)), orl_face, 256)])
    lfw_chips, _ = lfw_faces(_LFW.value, _MIN_IMAGES.value, lfw_face)
    rows[name] = (orl_chips, lfw_chips, lfw_chips[lfw_rest])
  return rows


def random_init_encoder():
  config = pretrain_paco.get_config("tiny")
  _, state = mim.create_state(config)
  path = os.path.join(tempfile.mkdtemp(), "random.msgpack")
  mim.export_encoder(state, config, path)
  return load_encoder(path)


def main(argv):
  del argv
  orl_images, orl_labels = orl.load_orl()
  lfw_images, lfw_labels = lfw_faces(_LFW.value, _MIN_IMAGES.value)
  rest = lfw_labels != np.bincount(lfw_labels).argmax()
  sets = {"ORL (400)": (orl_images[..., None], orl_labels),
          f"LFW-dev >= {_MIN_IMAGES.value} images ({len(lfw_labels)})": (lfw_images, lfw_labels),
          f"the same without the largest identity ({rest.sum()})": (lfw_images[rest], lfw_labels[rest])}
  encoders = {"(a) raw pixels": lambda x: x.reshape(len(x), -1).astype(np.float32),
              "(b) eigenfaces (128, fitted on the set)": lambda x: EigenfaceEncoder.fit(x, 128)(x),
              "(c) encoder, random init": random_init_encoder()}
  if _MAE.value:
    encoders["(d) plain MAE"] = load_encoder(_MAE.value)
  if _FULL.value:
    full = load_encoder(_FULL.value)
    encoders[f"(e) full encoder ({full.step} steps)"] = full
  if _INVARIANT.value:
    encoders["(f) full + view invariance"] = load_encoder(_INVARIANT.value)
  # Each row: the images every set gives that encoder (the face network has its own preprocessing).
  inputs = {name: [images for images, _ in sets.values()] for name in encoders}
  if _FACE_NETWORK.value:
    network = fq.load_encoder()
    for name, chips in face_network_rows(rest).items():
      encoders[name], inputs[name] = network, chips
    small = lambda x: np.asarray(jax.image.resize(x.astype(np.float32), (len(x), 64, 64, 3), "bilinear"))
    on_aligned = {"(i) raw pixels, detected + aligned (64 × 64)": lambda x: small(x).reshape(len(x), -1),
                  "(j) eigenfaces, detected + aligned (64 × 64)": lambda x: EigenfaceEncoder.fit(small(x), 128)(small(x)),
                  "(k) bundled PaCo-FR encoder (paco_fr), detected + aligned": fq.load_encoder("paco_fr")}
    for name, encode in on_aligned.items():
      encoders[name], inputs[name] = encode, inputs["(g) face network, detected + aligned"]
  results = {}
  for number, name in enumerate(sets, 1):
    print(f"set {number}: {name}")
  print(f"{'embedding':<48}" + "".join(f"{f'set {number}':>20}{'':>10}" for number in range(1, len(sets) + 1)))
  print(f"{'':<48}" + "".join(f"{'1-NN acc':>20}{'ROC-AUC':>10}" for _ in sets))
  for name, encode in encoders.items():
    row = {}
    for set_name, images, (_, labels) in zip(sets, inputs[name], sets.values()):
      row[set_name] = verification.identification_and_roc_auc(np.asarray(encode(images), np.float64), labels)
    results[name] = row
    print(f"{name:<48}" + "".join(f"{acc:>20.4f}{auc:>10.4f}" for acc, auc in row.values()), flush=True)
  print(json.dumps(results))


if __name__ == "__main__":
  app.run(main)
