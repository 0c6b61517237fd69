"""facequal_jax: Intrinsic Quality of face-recognition training sets in JAX."""
from facequal_jax.consistency import IdentityTable, identity_table, neighbor_consistency
from facequal_jax.diagnostics import Thresholds
from facequal_jax.diagnostics import of_report as diagnose
from facequal_jax.html_report import write as write_report_html
from facequal_jax.nearest import knn
from facequal_jax.neighbors import Neighbors
from facequal_jax.quality import IQReport, intrinsic_quality
from facequal_jax.sharding import make_mesh
from facequal_jax.spectral import Spectrum, spectrum
from facequal_jax.streaming import streaming_knn
from facequal_jax.subsets import stratified_identity_subset

__all__ = ["IQReport", "IdentityTable", "Neighbors", "Spectrum", "Thresholds", "diagnose", "identity_table",
           "intrinsic_quality", "knn", "load_encoder", "make_mesh", "neighbor_consistency", "spectrum",
           "stratified_identity_subset", "streaming_knn", "write_report_html"]


def __getattr__(name: str):
  """`load_encoder` is imported on first use: it pulls in flax, which the IQ path does not need."""
  if name == "load_encoder":
    from facequal_jax.encoder import load_encoder  # pylint: disable=import-outside-toplevel
    return load_encoder
  raise AttributeError(f"module 'facequal_jax' has no attribute {name!r}")
