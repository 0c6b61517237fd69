"""Exact cosine k-NN: tiled, device-sharded, bf16 candidates certified back to the float32 answer.

`knn` (in-memory rows, `search.py`) and `streaming_knn` (rows streamed from
host memory, `streaming.py`) are the entry points; `SearchSettings` says how
they run. Inside: the ring (`ring.py`) and symmetric (`symmetric.py`) paths,
the fused Pallas kernel (`fused.py`), candidate lists (`candidates.py`),
tie-exact selection (`selection.py`) and row placement (`tiling.py`).
"""
from facequal_jax.knn.candidates import Neighbors
from facequal_jax.knn.search import knn
from facequal_jax.knn.settings import SearchSettings
from facequal_jax.knn.streaming import streaming_knn

__all__ = ["Neighbors", "SearchSettings", "knn", "streaming_knn"]
