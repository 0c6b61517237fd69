r"""The IQ validation experiment on LFW-dev (`python -m train.protocol --config=protocol_lfw --workdir=DIR`).

Identities with >= 4 images train (391 identities, 4,098 images); the others give held-out verification
pairs (all 1,030 genuine pairs they have, as many impostors). Faces are detected and aligned as the face
network sees them; each variant trains one ResNet proxy (64 × 64, BatchNorm head, ArcFace scale 32) per seed,
and two more on the halves of its faces (cross-fitting); the fixed label-free encoder is the pretrained face
network. Metrics are measured on the whole variant and on fixed-size stratified identity subsets
(`research/protocols.py`); the pre-registered primary metric is `primary`.
Arguments (comma-separated): `smoke`, a two-minute version for CI (identities with >= 10 images, three
variants, a few steps, centre crops and eigenfaces); `vit`, the proxy is the PaCo-FR ViT fine-tuned from the
bundled encoder (`proxy_arcface:vit`); `v1`, the first committed run (`results/protocol_lfw.md`: centre crops,
48 × 48 LayerNorm-head proxies of 600 steps × 128, one seed, eigenfaces); `v2`, the second
(`results/protocol_lfw_v2.md`: its variants, whole-set metrics only).
"""
import ml_collections

from facequal_jax.config_files import parse_arg
from facequal_jax.research.configs import proxy_arcface


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """`arg`: any of `smoke`, `vit`, `v1`, `v2`, comma-separated (module docstring)."""
  options = {name for name, on in parse_arg(arg, "protocol_lfw", smoke=False, vit=False, v1=False,
                                            v2=False).items() if on}
  config = ml_collections.ConfigDict()
  config.seed = 0  # variants, held-out pairs, folds and the bootstrap
  config.seeds = (0, 1)  # one proxy per variant and seed (head init, batches, flips)
  config.num_devices = 0

  config.data = ml_collections.ConfigDict()
  config.data.images = "../shared/data/lfw_dev"
  config.data.align = "detect"  # the face network's detection + alignment, or "centre" (crop below)
  config.data.crop = 120  # centred square of source pixels (align "centre", or where no face is found)
  config.data.cache = ""  # folder that keeps the decoded faces between runs ("": none)
  config.data.min_train_images = 4  # identities with fewer images give the held-out pairs
  config.data.workers = 2

  config.proxy = proxy_arcface.get_config("vit" if "vit" in options else "tiny")
  if "vit" in options:
    config.proxy.init = "paco_fr"  # the bundled encoder
  else:
    config.proxy.model.image_size = 64
    config.proxy.arcface.scale = 32.0  # s = 64 leaves 40 %-noise runs swinging between seeds
  config.proxy.steps = 300
  config.proxy.batch_size = 64
  config.proxy.log_every = 30
  config.proxy.checkpoint_every = 100
  config.proxy.probe_images = 1024  # the proxy's spectrum during training (protocol_training.svg)

  config.variants = ml_collections.ConfigDict()
  config.variants.clean_percents = (25, 50, 100)
  config.variants.noise_percents = (5, 20, 40)
  config.variants.mixed_quality = True  # the tight / diverse pair
  config.variants.caps = (2, 3)  # cap_K: at most K images of every identity
  config.variants.lowres_percents = (50,)  # lowres_P: P % of the faces at low resolution
  config.variants.lowres_factor = 4  # shrunk this many times on each side

  # The fixed-size subset protocol (research/protocols.py): identities × faces per identity, k = faces − 1.
  config.subset = ml_collections.ConfigDict()
  config.subset.identities = 96  # clean_25, the smallest variant, has 98
  config.subset.images_per_identity = 4  # every training identity has >= 4
  config.subset.draws = 5  # 0: no subset protocols
  config.crossfit = ml_collections.ConfigDict()
  config.crossfit.enabled = True  # two more proxies per run, one on each half of every identity's faces
  # the same passes over its data as the whole proxy: half the steps
  config.crossfit.steps = config.proxy.get_ref("steps") // 2
  # Pre-registered before the full run (results/protocol_lfw_v3.md says why): the result stated first.
  config.primary = "subset_iq"

  config.iq = ml_collections.ConfigDict()
  config.iq.k = 5  # most training identities have 4-9 images
  config.iq.alpha = 0.2

  # "face_resnet", "eigenfaces", "paco_fr" or an encoder.msgpack from train/pretrain.py
  config.fixed_encoder = "face_resnet"
  config.eigenfaces_dim = 128
  config.max_genuine_pairs = 0  # 0: every genuine pair of the held-out identities
  config.folds = 10
  config.bootstrap_resamples = 2000  # of the correlations' 95 % intervals

  if "v1" in options or "v2" in options:
    config.variants.update(noise_percents=(2, 5, 10, 20, 40), caps=(2,), lowres_percents=())
    config.subset.draws = 0
    config.crossfit.enabled = False
    config.primary = "iq"
    config.max_genuine_pairs = 1500
  if "v1" in options:
    config.seeds = (0,)
    config.data.align = "centre"
    config.proxy.model.update(image_size=48, head_norm="layernorm")
    config.proxy.arcface.scale = 64.0
    config.proxy.update(steps=600, batch_size=128, log_every=100, checkpoint_every=200, probe_images=0)
    config.variants.caps = ()
    config.fixed_encoder = "eigenfaces"
  if "smoke" in options:
    config.data.min_train_images = 10
    if "vit" not in options:  # the ViT keeps the size it was pretrained at
      config.data.align = "centre"
      config.proxy.model.image_size = 32
    config.fixed_encoder = "eigenfaces"
    config.proxy.update(steps=20, log_every=10, checkpoint_every=10, probe_images=256)
    config.variants.clean_percents = (50, 100)
    config.variants.noise_percents = (20,)
    config.variants.mixed_quality = False
    config.variants.caps = ()
    config.variants.lowres_percents = ()
    config.subset.update(identities=24, draws=2)
    config.max_genuine_pairs = 500
    config.bootstrap_resamples = 200
  return config
