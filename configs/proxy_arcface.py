"""`--config=proxy_arcface`: the config shipped with the package as facequal_jax/configs/proxy_arcface.py (read it there).

This file loads it, so `--config=configs/proxy_arcface.py` works from the repository too.
"""
from facequal_jax.configs.proxy_arcface import get_config  # pylint: disable=unused-import
