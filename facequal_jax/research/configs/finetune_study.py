r"""Does PaCo-FR pretraining pay off when labels are scarce? The ViT proxy from scratch vs from pretrained encoders.

  python -m train.finetune_study --config=finetune_study --workdir=/tmp/study \
      --config.pretrained_dir=/tmp/paco        # holds NAME/encoder.msgpack for each pretrained arm

On the validation protocol's pool (LFW-dev identities with >= 4 images; detected and aligned 64 × 64 faces)
each arm's proxy is trained on `fractions` % of the identities (the protocol's clean-scaling variants)
for the same number of steps, once per seed, and scored on the protocol's held-out pairs (10-fold
accuracy). Arms name a proxy variant of `proxy_arcface` and a pretrained encoder ("" = from scratch).
"""
import ml_collections

from facequal_jax.config_files import parse_arg
from facequal_jax.research.configs import protocol_lfw

ALL = (25, 50, 100)


def _arm(proxy: str, pretrained: str = "", fractions=ALL, layer_decay: float = 1.0, drop_path: float = 0.0,
         pool: str = "flatten", init_head: bool = False, head_norm: str = "layernorm", **overrides) -> dict:
  """An arm: a proxy_arcface variant, its pretrained encoder under pretrained_dir ("" = from scratch), the
  fractions it runs at, its fine-tuning recipe (the defaults: as measured by the `sweep`, README), its head's
  normalisation (LayerNorm by default, as when the study was run) and any other proxy-config fields
  (`overrides`, nested as in the config: arcface={"scale": 32.0})."""
  return dict(proxy=proxy, pretrained=pretrained, fractions=fractions, layer_decay=layer_decay,
              drop_path=drop_path, pool=pool, init_head=init_head, head_norm=head_norm, overrides=overrides)


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

# What collapses the ResNet proxy's spectrum (README, "The proxy's spectrum"): its head's normalisation, and
# the learning rate, ArcFace scale and training length with the LayerNorm head; seed 0, r̃ logged while training.
SPECTRUM = {
    "resnet_layernorm": _arm("tiny", fractions=(25, 100)),
    "resnet_batchnorm": _arm("tiny", fractions=(25, 100), head_norm="batchnorm"),
    "resnet_layernorm_lr5e-4": _arm("tiny", fractions=(100,), learning_rate=5e-4),
    "resnet_layernorm_scale32": _arm("tiny", fractions=(100,), arcface={"scale": 32.0}),
    "resnet_layernorm_600_steps": _arm("tiny", fractions=(100,), steps=600),
}
STUDIES = {"": ARMS, "sweep": SWEEP, "spectrum": SPECTRUM}


def get_config(arg: str = "") -> ml_collections.ConfigDict:
  """`arg`: "" (the study), "sweep" (the fine-tuning recipe) or "spectrum" (the proxy's collapse)."""
  arg = parse_arg(arg, "finetune_study", study=tuple(STUDIES)).study
  config = protocol_lfw.get_config("vit")
  del config.variants, config.iq, config.fixed_encoder, config.eigenfaces_dim, config.subset, config.crossfit
  del config.primary
  config.pretrained_dir = "/tmp/paco"  # holds NAME/encoder.msgpack for each arm's pretrained encoder
  config.seeds = (0,) if arg else (0, 1)  # proxy seeds (head init, batches, flips, drop-path); subsets stay fixed
  config.steps = 300  # fine-tuning steps, the same for every arm (unless its overrides say otherwise)
  config.batch_size = 128 if arg == "sweep" else 64  # faces per step
  config.log_every = 30 if arg == "spectrum" else 50  # steps between logged metrics (and probe spectra)
  config.probe_images = 1024 if arg == "spectrum" else 0  # > 0: log the spectrum of this many training faces
  config.image_size = config.proxy.model.image_size  # every arm sees the same faces (the ViT's pretraining size)
  config.only = ""  # comma-separated arm names to run now ("": every arm); finished runs are always read back
  config.arms = ml_collections.ConfigDict()
  for name, arm in STUDIES[arg].items():
    config.arms[name] = ml_collections.ConfigDict(arm)
  del config.proxy  # each arm builds its own from proxy_arcface
  return config
