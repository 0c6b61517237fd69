"""`--config=protocol_lfw`: the config shipped with the package as facequal_jax/configs/protocol_lfw.py (read it there).

This file loads it, so `--config=configs/protocol_lfw.py` works from the repository too.
"""
from facequal_jax.configs.protocol_lfw import get_config  # pylint: disable=unused-import
