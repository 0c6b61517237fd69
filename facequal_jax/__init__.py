"""facequal_jax: Intrinsic Quality of face-recognition training sets in JAX."""
from facequal_jax.nearest import knn
from facequal_jax.neighbors import Neighbors
from facequal_jax.sharding import make_mesh
from facequal_jax.consistency import IdentityTable, identity_table, neighbor_consistency
from facequal_jax.quality import IQReport, intrinsic_quality
from facequal_jax.spectral import Spectrum, spectrum
from facequal_jax.subsets import stratified_identity_subset
from facequal_jax.streaming import streaming_knn
