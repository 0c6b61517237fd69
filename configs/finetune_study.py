"""`--config=finetune_study`: the config shipped with the package as facequal_jax/configs/finetune_study.py (read it there).

This file loads it, so `--config=configs/finetune_study.py` works from the repository too.
"""
from facequal_jax.configs.finetune_study import get_config  # pylint: disable=unused-import
