"""The public names of `import facequal_jax as fq`: every one of `__all__` is there, and none was lost."""
import importlib

import facequal_jax as fq

# The names the package offered before its layers became subpackages; each must stay.
EARLIER_NAMES = ("IQReport", "IdentityTable", "Neighbors", "Spectrum", "Thresholds", "diagnose", "identity_table",
                 "intrinsic_quality", "knn", "load_encoder", "make_mesh", "neighbor_consistency", "spectrum",
                 "stratified_identity_subset", "streaming_knn", "write_report_html")


def test_every_name_of_all_imports():
  assert set(EARLIER_NAMES) <= set(fq.__all__)
  for name in fq.__all__:
    assert getattr(fq, name) is not None, name
  namespace = {}
  exec("from facequal_jax import *", namespace)  # pylint: disable=exec-used
  assert set(fq.__all__) <= set(namespace)


def test_names_come_from_their_layers():
  assert fq.knn.__module__ == "facequal_jax.knn.search"
  assert fq.intrinsic_quality.__module__ == "facequal_jax.metrics.quality"
  assert fq.diagnose.__module__ == "facequal_jax.metrics.diagnostics"
  assert fq.write_report_html.__module__ == "facequal_jax.report.html"
  assert fq.load_encoder.__module__ == "facequal_jax.encoders.registry"
  assert importlib.import_module("facequal_jax.metrics.diagnostics").diagnose is fq.diagnose
