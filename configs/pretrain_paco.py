"""`--config=pretrain_paco`: the config shipped with the package as facequal_jax/configs/pretrain_paco.py (read it there).

This file loads it, so `--config=configs/pretrain_paco.py` works from the repository too.
"""
from facequal_jax.configs.pretrain_paco import get_config  # pylint: disable=unused-import
