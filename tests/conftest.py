"""Every test process sees 8 fake CPU devices, so sharded paths run on 1, 2, 4 and 8."""
import os
import tempfile

os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=8"]).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The face network's converted weights are cached once for the whole test run (and its subprocesses), not in $HOME.
os.environ.setdefault("FACEQUAL_CACHE", os.path.join(tempfile.gettempdir(), "facequal_jax_test_cache"))
