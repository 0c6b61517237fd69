"""TFDS: prepare an image folder as a TFDS dataset, and read any TFDS image dataset.

Needs the optional extra: `pip install "facequal_jax[tfds]"` (TensorFlow
Datasets builds and reads through TensorFlow).

- `prepare_image_folder(root, data_dir)` builds the dataset `face_folder` with
  features `image` (PNG, decoded by PIL first, so any format PIL reads works),
  `label` (ClassLabel named by identity folder) and `filename`. Files that do
  not decode are left out and listed in `skipped.json` beside the dataset, and
  returned.
- `TfdsSource(name, data_dir, split)` reads any TFDS dataset with an image
  feature and an integer (or ClassLabel) label feature. One sequential pass
  copies the still-encoded images into a RecordIO cache, which then gives the
  random access the pipeline uses; memory stays bounded whatever the size.
"""
import json
import os
from typing import List, Optional, Tuple

import numpy as np

from facequal_jax.data import preprocess, recordio
from facequal_jax.data.sources import ImageFolderSource, RecordIOSource
from facequal_jax.progress import Progress


def _tfds():
  try:
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise ImportError('TFDS support needs the optional extra: pip install "facequal_jax[tfds]"') from error
  return tfds


def _face_folder_builder_class():
  tfds = _tfds()

  class FaceFolder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Face images in ROOT/<identity>/<image> as a TFDS dataset (one `train` split)."""
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Image folder with identity labels."}

    def __init__(self, *, root: str, **kwargs):
      self._source = ImageFolderSource(root)
      self.skipped: List[Tuple[str, str]] = list(self._source.listing_skipped)
      super().__init__(**kwargs)

    def _info(self):
      return self.dataset_info_from_configs(
          features=tfds.features.FeaturesDict({
              "image": tfds.features.Image(encoding_format="png"),
              "label": tfds.features.ClassLabel(names=self._source.identity_names),
              "filename": tfds.features.Text(),
          }),
          supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      for i in range(len(self._source)):
        try:
          image = np.asarray(preprocess.decode(self._source.read(i)).convert("RGB"))
        except (OSError, preprocess.DecodeError) as error:
          self.skipped.append((self._source.describe(i), str(error)))
          continue
        yield i, {"image": image, "label": int(self._source.labels[i]),
                  "filename": os.path.relpath(self._source.describe(i), self._source.root)}

  return FaceFolder


def prepare_image_folder(root: str, data_dir: str) -> List[Tuple[str, str]]:
  """Builds TFDS dataset `face_folder` from `root` into `data_dir`; returns the skipped files."""
  builder = _face_folder_builder_class()(root=root, data_dir=data_dir)
  builder.download_and_prepare()
  skipped_path = os.path.join(builder.data_dir, "skipped.json")
  with open(skipped_path, "w") as f:
    json.dump([{"file": path, "reason": reason} for path, reason in builder.skipped], f, indent=2)
  return builder.skipped


class TfdsSource(RecordIOSource):
  """A TFDS split as a face source, through a RecordIO cache in `cache_dir`.

  Args:
    name: TFDS dataset name (e.g. "face_folder", "lfw").
    data_dir: where the prepared dataset lives.
    split: split name.
    cache_dir: where `NAME-SPLIT.rec/.idx` go (reused when present and complete).
    image_key, label_key: the features to read.
  """

  def __init__(self, name: str, data_dir: str, cache_dir: str, split: str = "train", image_key: str = "image",
               label_key: str = "label"):
    tfds = _tfds()
    builder = tfds.builder(name, data_dir=data_dir)
    features = builder.info.features
    for key in (image_key, label_key):
      if key not in features:
        raise ValueError(f"TFDS dataset {name!r} has no feature {key!r} (it has {sorted(features.keys())})")
    os.makedirs(cache_dir, exist_ok=True)
    stem = os.path.join(cache_dir, f"{name.replace('/', '_')}-{split}")
    if not os.path.exists(stem + ".done"):
      self._write_cache(tfds, builder, split, image_key, label_key, stem)
    super().__init__(stem + ".rec", stem + ".idx")
    names: Optional[List[str]] = getattr(features[label_key], "names", None)
    if names:
      self.identity_names = [names[int(v)] for v in self.identity_names]

  @staticmethod
  def _write_cache(tfds, builder, split: str, image_key: str, label_key: str, stem: str) -> None:
    dataset = builder.as_dataset(split=split, decoders={image_key: tfds.decode.SkipDecoding()})
    progress = Progress(f"TFDS {builder.name}/{split} → RecordIO cache",
                        total=builder.info.splits[split].num_examples, unit="images")
    with recordio.RecordIOWriter(stem + ".rec", stem + ".idx") as writer:
      for key, example in enumerate(tfds.as_numpy(dataset)):
        label = np.asarray(example[label_key]).ravel()
        writer.write(key, recordio.pack(recordio.ImageHeader(0, float(label[0]), key), bytes(example[image_key])))
        progress.advance(1)
    with open(stem + ".done", "w") as f:
      f.write("complete\n")
