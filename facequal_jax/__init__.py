"""facequal_jax: Intrinsic Quality of face-recognition training sets in JAX.

Layers, each a subpackage: `data` (face sources and their kinds, preprocessing,
extraction) → `encoders` (faces → embeddings, one table by name) → `knn` (exact
sharded search) → `metrics` (consistency, spectrum, IQ, the findings and their
kinds) → `cleaning` (decisions, applying them, overlap between data sets) →
`report` (HTML, plots) → `jobs` (the IQ command); `models` holds the Flax
modules of the encoders. `research` (the validation experiment, the
fine-tuning study, pretraining and proxy training) may import all of these;
none of them imports it.
"""
from facequal_jax.cleaning.decisions import Policy
from facequal_jax.cleaning.overlap import OverlapThresholds, find_overlap
from facequal_jax.knn import Neighbors, SearchSettings, knn, streaming_knn
from facequal_jax.metrics.consistency import IdentityTable, identity_table, neighbor_consistency
from facequal_jax.metrics.diagnostics import Thresholds, diagnose
from facequal_jax.metrics.findings import Findings
from facequal_jax.metrics.quality import IQReport, intrinsic_quality
from facequal_jax.metrics.spectrum import Spectrum, spectrum
from facequal_jax.metrics.subsets import stratified_identity_subset
from facequal_jax.report.html import write as write_report_html
from facequal_jax.sharding import make_mesh

__all__ = ["Findings", "IQReport", "IdentityTable", "Neighbors", "OverlapThresholds", "Policy", "SearchSettings", "Spectrum",
           "Thresholds", "diagnose", "find_overlap", "identity_table", "intrinsic_quality", "knn", "load_encoder",
           "make_mesh", "neighbor_consistency", "spectrum", "stratified_identity_subset", "streaming_knn",
           "write_report_html"]


def __getattr__(name: str):
  """`load_encoder` is imported on first use: it pulls in flax, which the IQ path does not need."""
  if name == "load_encoder":
    from facequal_jax.encoders.registry import load_encoder  # pylint: disable=import-outside-toplevel
    return load_encoder
  raise AttributeError(f"module 'facequal_jax' has no attribute {name!r}")
