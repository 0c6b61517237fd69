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

ALL = (25, 50, 100)


def _arm(proxy: str, pretrained: str = "", fractions=ALL, layer_decay: float = 1.0, drop_path: float = 0.0,
         pool: str = "flatten", init_head: bool = False) -> dict:
  """An arm: a proxy_arcface variant, its pretrained encoder under pretrained_dir ("" = from scratch), the
  fractions it runs at, and its fine-tuning recipe (the defaults: as measured by the `sweep`, README)."""
  return dict(proxy=proxy, pretrained=pretrained, fractions=fractions, layer_decay=layer_decay,
              drop_path=drop_path, pool=pool, init_head=init_head)


ARMS = {
    "resnet": _arm("tiny"),
    "vit_scratch": _arm("vit"),
    "vit_paco": _arm("vit", "full"),
    # the teacher-pretrained encoder, its mean token read by its own teacher head; and that ViT from scratch
    "vit_paco_teacher": _arm("vit", "teacher", (25,), pool="mean", init_head=True),
    "vit_scratch_mean": _arm("vit", "", (25,), pool="mean"),
    # ablations, one pretraining component changed each (same pretraining budget)
    "vit_paco_random_masking": _arm("vit", "random_masking", (50,)),
    "vit_paco_no_codebook": _arm("vit", "no_codebook", (50,)),
    "vit_paco_one_candidate": _arm("vit", "one_candidate", (50,)),
    "vit_paco_no_spatial": _arm("vit", "no_spatial", (50,)),
}
# The fine-tuning recipe, measured at 50 % with seed 0 and batch 128 (`finetune_study:sweep`).
SWEEP = {
    "sweep_paco_ld075_dp01": _arm("vit", "full", (50,), 0.75, 0.1),
    "sweep_paco_ld1_dp01": _arm("vit", "full", (50,), 1.0, 0.1),
    "sweep_paco_ld075_dp0": _arm("vit", "full", (50,), 0.75, 0.0),
    "sweep_scratch_ld1_dp01": _arm("vit", "", (50,), 1.0, 0.1),
    "sweep_scratch_ld1_dp0": _arm("vit", "", (50,), 1.0, 0.0),
}


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """`arg`: "" (the study) or "sweep" (the fine-tuning recipe)."""
  if arg not in ("", "sweep"):
    raise ValueError(f"finetune_study takes '' or 'sweep', got {arg!r}")
  config = protocol_lfw.get_config("vit")
  del config.variants, config.iq, config.fixed_encoder, config.eigenfaces_dim
  config.pretrained_dir = "/tmp/paco"  # holds NAME/encoder.msgpack for each arm's pretrained encoder
  config.seeds = (0,) if arg else (0, 1)  # proxy seeds (head init, batches, flips, drop-path); subsets stay fixed
  config.steps = 300  # fine-tuning steps, the same for every arm
  config.batch_size = 128 if arg == "sweep" else 64  # faces per step
  config.image_size = config.proxy.model.image_size  # every arm sees the same faces (the ViT's pretraining size)
  config.only = ""  # comma-separated arm names to run now ("": every arm); finished runs are always read back
  config.arms = ml_collections.ConfigDict()
  for name, arm in (SWEEP if arg == "sweep" else ARMS).items():
    config.arms[name] = ml_collections.ConfigDict(arm)
  del config.proxy  # each arm builds its own from proxy_arcface
  return config
