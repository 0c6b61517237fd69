r"""ArcFace proxy: a compact ResNet trained with the additive angular margin loss.

  python -m train.train_proxy --config=proxy_arcface --workdir=/tmp/proxy

Variants: tiny (CPU: 48 × 48 RGB, widths 32-64-128, one block per stage), resnet (accelerators: 112 × 112,
widths 64-128-256-512, two blocks per stage).
"""
import ml_collections

VARIANTS = {
    # name: (image_size, widths, blocks_per_stage, stem_stride, embedding_dim, batch_size)
    "tiny": (48, (32, 64, 128), 1, 2, 128, 128),
    "resnet": (112, (64, 128, 256, 512), 2, 2, 512, 512),
}


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
  """`arg` names a variant of VARIANTS."""
  image_size, widths, blocks, stem_stride, embedding_dim, batch_size = VARIANTS[arg or "tiny"]
  config = ml_collections.ConfigDict()
  config.variant = arg or "tiny"
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.images = "../shared/data/lfw_dev"  # identity folders
  config.data.crop = 120  # centred square of source pixels (LFW deep-funneled faces)
  config.data.min_images = 4  # identities with fewer images are left out of training
  config.data.workers = 0

  config.model = ml_collections.ConfigDict()
  config.model.image_size = image_size
  config.model.channels = 3
  config.model.widths = widths
  config.model.blocks_per_stage = blocks
  config.model.stem_stride = stem_stride
  config.model.embedding_dim = embedding_dim

  config.arcface = ml_collections.ConfigDict()
  config.arcface.scale = 64.0  # s, ArcFace default
  config.arcface.margin = 0.5  # m in radians, ArcFace default

  config.batch_size = batch_size
  config.steps = 1500
  config.learning_rate = 2e-3
  config.warmup_steps = 100
  config.weight_decay = 5e-4
  config.log_every = 50
  config.checkpoint_every = 500
  config.num_devices = 0  # data-parallel mesh; 0 = all
  return config
