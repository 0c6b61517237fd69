r"""Does PaCo-FR pretraining pay off when labels are scarce? The ViT proxy from scratch vs from pretrained encoders.

  python -m train.finetune_study --config=finetune_study --workdir=/tmp/study \
      --config.pretrained_dir=/tmp/paco        # holds NAME/encoder.msgpack for each pretrained arm

On the validation protocol's pool (LFW-dev identities with >= 4 images; detected and aligned 64 × 64 faces)
each arm's proxy is trained on `fractions` % of the identities (the protocol's clean-scaling variants)
for the same number of steps, once per seed, and scored on the protocol's held-out pairs (10-fold
accuracy). Arms name a proxy variant of `proxy_arcface` and a pretrained encoder ("" = from scratch).
"""
import ml_collections

from facequal_jax.configs import protocol_lfw

# arm: (proxy_arcface variant, pretrained encoder under pretrained_dir ("" = scratch), fractions, layer_decay,
# drop_path); the ViT recipes as measured by the `sweep` (README)
ARMS = {
    "resnet": ("tiny", "", (25, 50, 100), 1.0, 0.0),
    "vit_scratch": ("vit", "", (25, 50, 100), 1.0, 0.0),
    "vit_paco": ("vit", "full", (25, 50, 100), 1.0, 0.0),
    "vit_paco_teacher": ("vit", "teacher", (25, 50, 100), 1.0, 0.0),  # pretrained with the teacher target
    # ablations, one pretraining component changed each (same pretraining budget)
    "vit_paco_random_masking": ("vit", "random_masking", (50,), 1.0, 0.0),
    "vit_paco_no_codebook": ("vit", "no_codebook", (50,), 1.0, 0.0),
    "vit_paco_one_candidate": ("vit", "one_candidate", (50,), 1.0, 0.0),
    "vit_paco_no_spatial": ("vit", "no_spatial", (50,), 1.0, 0.0),
}
# The fine-tuning recipe, measured at 50 % with seed 0 (`finetune_study:sweep`).
SWEEP = {
    "sweep_paco_ld075_dp01": ("vit", "full", (50,), 0.75, 0.1),
    "sweep_paco_ld1_dp01": ("vit", "full", (50,), 1.0, 0.1),
    "sweep_paco_ld075_dp0": ("vit", "full", (50,), 0.75, 0.0),
    "sweep_scratch_ld1_dp01": ("vit", "", (50,), 1.0, 0.1),
    "sweep_scratch_ld1_dp0": ("vit", "", (50,), 1.0, 0.0),
}


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """`arg`: "" (the study), "sweep" (the fine-tuning recipe) or "smoke" (seconds-long, for tests)."""
  if arg not in ("", "sweep", "smoke"):
    raise ValueError(f"finetune_study takes '', 'sweep' or 'smoke', got {arg!r}")
  config = protocol_lfw.get_config("vit,smoke" if arg == "smoke" else "vit")
  del config.variants, config.iq, config.fixed_encoder, config.eigenfaces_dim
  config.pretrained_dir = "/tmp/paco"  # holds NAME/encoder.msgpack for each arm's pretrained encoder
  config.seeds = (0,) if arg else (0, 1)  # proxy seeds (head init, batches, flips, drop-path); subsets stay fixed
  config.steps = 300  # fine-tuning steps, the same for every arm
  config.batch_size = 64
  config.image_size = config.proxy.model.image_size  # every arm sees the same faces (the ViT's pretraining size)
  config.only = ""  # comma-separated arm names to run now ("": every arm); finished runs are always read back
  config.arms = ml_collections.ConfigDict()
  for name, (variant, pretrained, fractions, layer_decay, drop_path) in (SWEEP if arg == "sweep" else ARMS).items():
    arm = ml_collections.ConfigDict()
    arm.proxy = variant
    arm.pretrained = pretrained
    arm.fractions = fractions
    arm.layer_decay = layer_decay
    arm.drop_path = drop_path
    config.arms[name] = arm
  if arg == "smoke":
    config.steps = config.proxy.steps
  del config.proxy  # each arm builds its own from proxy_arcface
  return config
