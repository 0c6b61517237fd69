r"""Derives and measures the fixed warp from the ArcFace 112 × 112 template to the face network's chip.

insightface packs (MS1M, Glint360K, WebFace) hold faces already aligned to the
ArcFace five-point template (eye centres, nose tip, mouth corners); the face
network wants dlib's chip geometry (eye corners and nose base on dlib's template,
padding 0.25). For each LFW-dev face both alignments are computed from
landmarks dlib finds (the 68-point model gives the ArcFace points, the 5-point
model dlib's), and the one similarity transform template frame → chip that fits
all faces best (least squares over the template's points, pooled) is printed:
`facequal_jax/data/align.py` holds it as ARCFACE_TO_CHIP.

Then the measurement: the LFW-dev identities with >= 10 images (at most 20
each) are aligned to the ArcFace template (112 × 112, as a pack would hold
them), warped with the fixed transform and embedded, against the detected
("detect") and centred ("centre") paths: leave-one-out 1-NN and ROC-AUC.

  python -m benchmarks.arcface_chip --lfw=../shared/data/lfw_dev
"""
import dlib
import numpy as np
from absl import app, flags
from PIL import Image

import facequal_jax as fq
from facequal_jax import faces_extra
from facequal_jax.data import align
from facequal_jax.data.preprocess import ARCFACE_TEMPLATE_112, FacePreprocess, similarity_transform
from facequal_jax.data.sources import ImageFolderSource
from facequal_jax.research import verification

_LFW = flags.DEFINE_string("lfw", "../shared/data/lfw_dev", "LFW-dev image folder.")
_FIT_FACES = flags.DEFINE_integer("fit_faces", 600, "faces the warp is fitted on.")

# dlib's five-point template (interpolation.h, get_face_chip_details), in the unit square.
DLIB_TEMPLATE = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                          [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                          [0.4901123135679, 0.6277975316475]])


def arcface_points(shape68) -> np.ndarray:
  """The ArcFace five points (image-left eye centre, image-right eye centre, nose tip, mouth corners) [5, 2]."""
  points = np.array([(shape68.part(i).x, shape68.part(i).y) for i in range(68)], np.float64)
  return np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]])


def landmarks(rgb: np.ndarray, detector, five, sixty_eight):
  faces = detector(rgb, 1)
  if not len(faces):
    return None
  face = align.central_face(faces, *rgb.shape[:2])
  shape5 = five(rgb, face)
  return (np.array([(shape5.part(i).x, shape5.part(i).y) for i in range(5)], np.float64),
          arcface_points(sixty_eight(rgb, face)))


def fit_warp(pairs) -> np.ndarray:
  """The similarity (2 × 3) template frame → chip that best maps every face's template points."""
  chip_points = (align.CHIP_PADDING + DLIB_TEMPLATE) / (2 * align.CHIP_PADDING + 1) * align.CHIP_SIZE
  source, target = [], []
  grid = np.concatenate([ARCFACE_TEMPLATE_112, [[0, 0], [112, 0], [0, 112], [112, 112], [56, 56]]])
  for dlib_points, arcface in pairs:
    to_chip = np.vstack([similarity_transform(dlib_points, chip_points), [0, 0, 1]])
    to_template = np.vstack([similarity_transform(arcface, ARCFACE_TEMPLATE_112), [0, 0, 1]])
    warp = to_chip @ np.linalg.inv(to_template)
    source.append(grid)
    target.append(grid @ warp[:2, :2].T + warp[:2, 2])
  return similarity_transform(np.concatenate(source), np.concatenate(target))


def main(argv):
  del argv
  detector = dlib.get_frontal_face_detector()
  five = dlib.shape_predictor(faces_extra.model_file("shape_predictor_5_face_landmarks.dat"))
  sixty_eight = dlib.shape_predictor(faces_extra.model_file("shape_predictor_68_face_landmarks.dat"))
  source = ImageFolderSource(_LFW.value)
  rng = np.random.default_rng(0)
  pairs = []
  for row in rng.permutation(len(source))[:_FIT_FACES.value]:
    found = landmarks(np.asarray(Image.open(source.describe(int(row))).convert("RGB")), detector, five, sixty_eight)
    if found is not None:
      pairs.append(found)
  warp = fit_warp(pairs)
  print(f"ARCFACE_TO_CHIP fitted on {len(pairs)} faces:\n{np.array2string(warp, precision=6, separator=', ')}")

  counts = np.bincount(source.labels)
  rows = np.concatenate([np.flatnonzero(source.labels == label)[:20] for label in np.flatnonzero(counts >= 10)])
  labels = source.labels[rows]
  encoder = fq.load_encoder()
  chips = {"detect": [], "centre": [], "arcface": []}
  detect, centre = FacePreprocess(150, 0, "rgb", "detect"), FacePreprocess(150, 120, "rgb", "centre")
  align.ARCFACE_TO_CHIP = warp
  arcface = FacePreprocess(150, 0, "rgb", "arcface")
  for row in rows:
    image = Image.open(source.describe(int(row))).convert("RGB")
    chips["detect"].append(detect(image))
    chips["centre"].append(centre(image))
    found = landmarks(np.asarray(image), detector, five, sixty_eight)
    packed = FacePreprocess(112, 0, "rgb", template="arcface")(image, found[1]) if found is not None else centre(image)
    chips["arcface"].append(arcface(Image.fromarray(packed)))
  print(f"LFW-dev identities with >= 10 images, at most 20 each: {len(rows)} faces, {len(set(labels))} identities")
  for name, faces in chips.items():
    accuracy, auc = verification.identification_and_roc_auc(encoder(np.stack(faces)), labels)
    print(f"{name:>8}: 1-NN {accuracy:.4f}  ROC-AUC {auc:.4f}")


if __name__ == "__main__":
  app.run(main)
