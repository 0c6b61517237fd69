r"""The IQ validation experiment on LFW-dev (`python -m train.protocol --config=protocol_lfw --workdir=DIR`).

Identities with >= 4 images train (391 identities, 4,098 images); the others give held-out verification
pairs. Arguments (comma-separated): `smoke`, a two-minute version for CI (identities with >= 10 images,
three variants, a few steps); `vit`, the proxy is the PaCo-FR ViT fine-tuned from the bundled encoder,
on detected and aligned faces (`proxy_arcface:vit`).
"""
import ml_collections

from facequal_jax.configs import proxy_arcface


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  options = set(filter(None, (arg or "").split(",")))
  if options - {"smoke", "vit"}:
    raise ValueError(f"protocol_lfw takes 'smoke' and 'vit' (comma-separated), got {arg!r}")
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_devices = 0

  config.data = ml_collections.ConfigDict()
  config.data.images = "../shared/data/lfw_dev"
  config.data.align = "centre"  # or "detect" (the face network's detection + alignment; the ViT proxy's)
  config.data.crop = 120  # centred square of source pixels (align "centre", or where no face is found)
  config.data.cache = ""  # folder that keeps the decoded faces between runs ("": none)
  config.data.min_train_images = 4  # identities with fewer images give the held-out pairs
  config.data.workers = 2

  config.proxy = proxy_arcface.get_config("vit" if "vit" in options else "tiny")
  if "vit" in options:
    config.data.align = "detect"
    config.proxy.init = "paco_fr"  # the bundled encoder
  config.proxy.steps = 600
  config.proxy.log_every = 100
  config.proxy.checkpoint_every = 200

  config.variants = ml_collections.ConfigDict()
  config.variants.clean_percents = (25, 50, 100)
  config.variants.noise_percents = (2, 5, 10, 20, 40)
  config.variants.mixed_quality = True  # the tight / diverse pair

  config.iq = ml_collections.ConfigDict()
  config.iq.k = 5  # most training identities have 4-9 images
  config.iq.alpha = 0.2

  # "eigenfaces", "face_resnet", "paco_fr" or an encoder.msgpack from train/pretrain.py
  config.fixed_encoder = "eigenfaces"
  config.eigenfaces_dim = 128
  config.max_genuine_pairs = 1500
  config.folds = 10

  if "smoke" in options:
    config.data.min_train_images = 10
    if "vit" not in options:  # the ViT keeps the size it was pretrained at
      config.proxy.model.image_size = 32
    config.proxy.batch_size = 64
    config.proxy.steps = 20
    config.proxy.log_every = 10
    config.proxy.checkpoint_every = 10
    config.variants.clean_percents = (50, 100)
    config.variants.noise_percents = (20,)
    config.variants.mixed_quality = False
    config.max_genuine_pairs = 500
  return config
