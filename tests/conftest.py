"""Every test process sees 8 fake CPU devices, so sharded paths run on 1, 2, 4 and 8."""
import os
import tempfile

os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=8"]).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The face network's converted weights are cached once for the whole test run (and its subprocesses), not in $HOME.
os.environ.setdefault("FACEQUAL_CACHE", os.path.join(tempfile.gettempdir(), "facequal_jax_test_cache"))
# XLA's persistent compilation cache, shared by the tests and their subprocesses: a function compiled once (the
# same program for the same shapes) is not compiled again by the next test or command that builds it anew.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "facequal_jax_test_xla_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")
