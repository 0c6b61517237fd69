"""Embeddings on devices: unit rows, padded and tiled, sharded over the 1-D mesh.

Every kernel (k-NN, spectrum) works on `DeviceRows`: float32 unit-norm rows
sharded by rows, each device holding `tiling.rows_per_device` rows of which the
ones past `num_rows` are zero padding. Normalisation happens on the devices, and
each process reads only the host rows of its own shards.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from facequal_jax import sharding


@dataclasses.dataclass(frozen=True)
class Tiling:
  """How rows are cut into tiles on each device.

  tile: rows per tile; chunk_tiles: query tiles per jitted call;
  rows_per_device: padded rows each device holds (= chunks · chunk_tiles · tile).
  """
  tile: int
  chunk_tiles: int
  rows_per_device: int

  @property
  def chunk_rows(self) -> int:
    return self.tile * self.chunk_tiles

  @property
  def num_chunks(self) -> int:
    return self.rows_per_device // self.chunk_rows


def plan_tiling(num_rows: int, num_devices: int, block: int, chunk_tiles: int, min_tile: int = 8) -> Tiling:
  """Splits `num_rows` over devices into equal tiles of at most ~`block` rows.

  The tile shrinks (to a multiple of 16, at least `min_tile`) so that padding
  stays below one tile per chunk instead of a whole block per device.
  """
  per_device = -(-num_rows // num_devices)
  tiles = max(1, -(-per_device // block))
  chunk_tiles = min(chunk_tiles, tiles)
  chunks = -(-tiles // chunk_tiles)
  tiles = chunks * chunk_tiles
  tile = max(-(-per_device // tiles), min_tile)
  tile = -(-tile // 16) * 16
  return Tiling(tile, chunk_tiles, tile * tiles)


@jax.jit
def unit_rows(x: jax.Array) -> jax.Array:
  """Float32 rows scaled to unit L2 norm ([N, d] → [N, d]); all-zero rows stay zero.

  Rows are first divided by their largest magnitude, so neither tiny nor huge
  inputs underflow or overflow.
  """
  x = x.astype(jnp.float32)
  peak = jnp.max(jnp.abs(x), axis=1, keepdims=True)
  x = x / jnp.where(peak > 0, peak, 1.0)
  norm = jnp.sqrt(jnp.sum(x * x, axis=1, keepdims=True))
  return x / jnp.where(norm > 0, norm, 1.0)


@dataclasses.dataclass(frozen=True)
class DeviceRows:
  """Unit rows on devices plus the host rows they came from.

  Attributes:
    host: [N, d] the source rows (numpy or memory-mapped; any float dtype).
    array: float32 [devices · tiling.rows_per_device, d], row-sharded unit rows;
      rows >= N are zero.
    tiling: how each device's rows are tiled.
  """
  host: np.ndarray
  array: jax.Array
  tiling: Tiling

  @property
  def num_rows(self) -> int:
    return self.host.shape[0]


def place_unit_rows(host: np.ndarray, mesh: Mesh, *, block: int, chunk_tiles: int,
                    min_tile: int = 8) -> DeviceRows:
  """Pads, shards and normalises host rows [N, d] (already checked) onto `mesh`."""
  tiling = plan_tiling(host.shape[0], sharding.mesh_size(mesh), block, chunk_tiles, min_tile)
  raw = sharding.put_rows(lambda start, stop: host[start:stop], host.shape[0],
                          sharding.mesh_size(mesh) * tiling.rows_per_device, host.shape[1:],
                          np.float32, mesh)
  return DeviceRows(host, unit_rows(raw), tiling)
