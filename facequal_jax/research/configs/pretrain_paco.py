r"""Masked-image-modelling pretraining of the face encoder (patch codebook, facial-region masking).

  python -m train.pretrain --config=pretrain_paco:tiny --workdir=/tmp/paco_tiny
  python -m train.pretrain --config=pretrain_paco:tiny --workdir=/tmp/mae \
      --config.model.use_codebook=False --config.masking=random          # plain MAE ablation

Variants: tiny (CPU, 64 × 64 grey-free RGB, ViT 4 × 128), vit_s, vit_b (accelerators, 112 × 112).
"""
import ml_collections

from facequal_jax.config_files import parse_arg

VARIANTS = {
    # name: (image_size, patch, dim, depth, heads, decoder_dim, decoder_depth, codebook_size)
    "tiny": (64, 8, 128, 4, 4, 96, 2, 256),
    "vit_s": (112, 8, 384, 12, 6, 384, 4, 1024),
    "vit_b": (112, 8, 768, 12, 12, 384, 4, 2048),
}


def get_config(arg: str = "tiny") -> ml_collections.ConfigDict:
  """`arg` names a variant of VARIANTS."""
  variant = parse_arg(arg, "pretrain_paco", variant=tuple(VARIANTS)).variant
  image_size, patch, dim, depth, heads, decoder_dim, decoder_depth, codebook_size = VARIANTS[variant]
  config = ml_collections.ConfigDict()
  config.variant = variant
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  # Identity folders (one, or a tuple); labels are never used.
  config.data.images = ("../shared/data/lfw_dev", "../shared/data/orl_faces")
  # Identities with fewer images are left out: the validation protocol's held-out verification pairs come from
  # LFW-dev's identities with < 4 images, so pretraining never sees a face that the evaluation tests on.
  config.data.min_identity_images = 4
  config.data.align = "detect"  # as the face network aligns faces (its chip geometry); or "centre"
  config.data.crop = 120  # centred square of source pixels where no face is found (or align "centre")
  config.data.cache = ""  # folder that keeps the decoded faces between runs ("": none)
  config.data.workers = 0

  config.model = ml_collections.ConfigDict()
  config.model.image_size = image_size
  config.model.channels = 3
  config.model.patch = patch
  config.model.geometry = "chip"  # where facial parts sit: "chip" (align "detect") or "arcface" (masking.py)
  config.model.dim = dim
  config.model.depth = depth
  config.model.heads = heads
  config.model.mlp_ratio = 2
  config.model.decoder_dim = decoder_dim
  config.model.decoder_depth = decoder_depth
  config.model.use_codebook = True
  config.model.codebook_size = codebook_size
  config.model.candidates = 4  # code tokens mixed per corrupted patch
  config.model.code_weight = 1.0
  config.model.commitment_weight = 0.25
  config.model.spatial_weight = 0.1  # 0 switches the spatial loss (facial-part geometry) off
  config.model.invariance_weight = 0.0  # > 0: VICReg between two views' pooled tokens (see paco.py)
  config.model.projector_dim = 4 * dim
  # > 0: the masked face's mean token predicts the pretrained face network's embedding (cosine loss, paco.py);
  # needs the extra `faces`. 0 = label-free pretraining with no teacher.
  config.model.teacher_weight = 0.0
  config.model.teacher_dim = 128  # the face network's embedding size

  config.views = ml_collections.ConfigDict()  # view jitter (models/views.py)
  config.views.scale = 0.1
  config.views.shift = 0.05
  config.views.colour = 0.2

  config.masking = "region"  # or "random"
  config.mask_ratio = 0.5
  config.incubation_steps = 100  # predictor supervised while the encoder sees target codes
  config.dead_code_threshold = 0.01  # EMA usage below this (codes per batch) → revived
  config.usage_decay = 0.99

  config.batch_size = 64
  config.steps = 2000
  config.learning_rate = 1e-3
  config.warmup_steps = 100
  config.weight_decay = 0.05
  config.log_every = 20
  config.checkpoint_every = 200
  config.num_devices = 0  # data-parallel mesh; 0 = all
  return config
