"""`--config=iq`: the config shipped with the package as facequal_jax/configs/iq.py (read it there).

This file loads it, so `--config=configs/iq.py` works from the repository too.
"""
from facequal_jax.configs.iq import get_config  # pylint: disable=unused-import
