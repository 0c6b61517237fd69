r"""ArcFace proxy: a compact ResNet, or the PaCo-FR ViT encoder, trained with the additive angular margin loss.

  python -m train.train_proxy --config=proxy_arcface --workdir=/tmp/proxy
  python -m train.train_proxy --config=proxy_arcface:vit --workdir=/tmp/proxy_vit \
      --config.init=/tmp/paco/full/encoder.msgpack           # fine-tune a pretrained encoder

Variants: tiny (CPU: 48 × 48 RGB, ResNet widths 32-64-128, one block per stage), resnet (accelerators:
112 × 112, widths 64-128-256-512, two blocks per stage), vit (CPU: 64 × 64 RGB, the ViT 4 × 128 of
`pretrain_paco:tiny`, detected and aligned faces as it was pretrained on).
"""
import ml_collections

from facequal_jax.config_files import parse_arg

RESNETS = {
    # name: (image_size, widths, blocks_per_stage, stem_stride, embedding_dim, batch_size)
    "tiny": (48, (32, 64, 128), 1, 2, 128, 128),
    "resnet": (112, (64, 128, 256, 512), 2, 2, 512, 512),
}
VARIANTS = tuple(RESNETS) + ("vit",)


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
  """`arg` names a variant of VARIANTS."""
  variant = parse_arg(arg, "proxy_arcface", variant=VARIANTS).variant
  config = ml_collections.ConfigDict()
  config.variant = variant
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.images = "../shared/data/lfw_dev"  # identity folders
  config.data.align = "centre"  # "centre" (crop below) or "detect" (the face network's detection + alignment)
  config.data.crop = 120  # centred square of source pixels (LFW deep-funneled faces)
  config.data.min_images = 4  # identities with fewer images are left out of training
  config.data.cache = ""  # folder that keeps the decoded faces between runs ("": none)
  config.data.workers = 0

  config.model = ml_collections.ConfigDict()
  if variant in RESNETS:
    image_size, widths, blocks, stem_stride, embedding_dim, batch_size = RESNETS[variant]
    config.model.name = "resnet"  # backbone: "resnet" (research/backbone.FaceResNet) or "vit" (FaceViT)
    config.model.image_size = image_size
    config.model.channels = 3
    config.model.widths = widths
    config.model.blocks_per_stage = blocks
    config.model.stem_stride = stem_stride
    config.model.embedding_dim = embedding_dim
  else:
    batch_size = 128
    config.data.align = "detect"
    config.model.name = "vit"  # backbone: "resnet" (research/backbone.FaceResNet) or "vit" (FaceViT)
    config.model.image_size = 64  # the sizes of pretrain_paco:tiny, so its checkpoints load
    config.model.channels = 3
    config.model.patch = 8
    config.model.dim = 128
    config.model.depth = 4
    config.model.heads = 4
    config.model.mlp_ratio = 2
    config.model.embedding_dim = 128
    config.model.pool = "flatten"  # head input: all final tokens ("flatten") or their mean ("mean")
    config.model.drop_path = 0.0  # stochastic depth of the last block (linear in depth from 0); README: measured
  # "layernorm" or "batchnorm" (ArcFace's output BN, batch statistics); README "The proxy's spectrum": measured
  config.model.head_norm = "batchnorm" if variant in RESNETS else "layernorm"
  # encoder.msgpack of train/pretrain.py to start the ViT's encoder from ("": from scratch)
  config.init = ""
  # ViT: also start the head from the checkpoint's teacher head (pretrained with the teacher target; pool "mean")
  config.init_head = False
  config.layer_decay = 1.0  # ViT: block i's learning rate × layer_decay^(depth − i); 1 = none; README: measured

  config.arcface = ml_collections.ConfigDict()
  config.arcface.scale = 64.0  # s, ArcFace default
  config.arcface.margin = 0.5  # m in radians, ArcFace default

  config.batch_size = batch_size
  config.steps = 1500
  config.learning_rate = 2e-3
  config.warmup_steps = 100
  config.weight_decay = 5e-4
  config.log_every = 50
  config.probe_images = 0  # > 0: the spectrum of this many fixed training faces at every logged step (metrics.jsonl)
  config.checkpoint_every = 500
  config.num_devices = 0  # data-parallel mesh; 0 = all
  return config
