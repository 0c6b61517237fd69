"""The 1-D device mesh and moving row-sharded arrays between host and devices.

Every array facequal_jax puts on devices is sharded by rows over the single mesh
axis `ROWS`, padded so that each device holds the same number of rows. The same
code serves one process and many (`jax.distributed`): each process only builds
the shards of its own devices, and results come back to every host.
"""
from typing import Callable, Optional

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from facequal_jax.errors import UsageError

ROWS = "rows"


def make_mesh(num_devices: int = 0) -> Mesh:
  """A 1-D mesh with axis `ROWS` over the first `num_devices` devices (0 = all).

  In a multi-process run all devices of all processes are used; `num_devices`
  must then be 0 or the global device count.
  """
  devices = jax.devices()
  if num_devices < 0 or num_devices > len(devices):
    raise UsageError(f"num_devices={num_devices}: between 0 (all) and {len(devices)} devices exist")
  if num_devices and jax.process_count() > 1 and num_devices != len(devices):
    raise UsageError("a multi-process mesh must use all devices (num_devices=0)")
  return Mesh(np.asarray(devices[:num_devices or len(devices)]), (ROWS,))


def mesh_size(mesh: Mesh) -> int:
  return mesh.shape[ROWS]


def per_device(body: Callable, mesh: Mesh, in_specs, out_specs, donate_argnums=()) -> Callable:
  """`body` run on every device of `mesh` on its own blocks (`shard_map`), jitted.

  Replication checks are off: the kernels' loop carries mix per-device and
  replicated values on purpose, and every collective in them is explicit.
  """
  mapped = jax.shard_map(body, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
  return jax.jit(mapped, donate_argnums=donate_argnums)


def row_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(ROWS))


def replicated(mesh: Mesh) -> NamedSharding:
  """Every device of `mesh` holds the whole array."""
  return NamedSharding(mesh, PartitionSpec())


def replicated_scalar(value, mesh: Mesh, dtype) -> jax.Array:
  """A [1] array replicated on every device of `mesh` (valid in multi-process runs)."""
  host = np.asarray([value], dtype=dtype)
  return jax.make_array_from_callback((1,), replicated(mesh), lambda index: host[index])


def put_rows(rows: Callable[[int, int], np.ndarray], num_rows: int, num_padded: int,
             trailing_shape: tuple, dtype, mesh: Mesh, fill=0) -> jax.Array:
  """Builds a row-sharded global array of `num_padded` rows from host data.

  Args:
    rows: `rows(start, stop)` returns host rows [start, stop) (stop <= num_rows);
      called only for this process's shards, so a memory-mapped source is never
      read whole.
    num_rows: real rows; rows [num_rows, num_padded) are `fill`.
    num_padded: global row count, a multiple of the mesh size.
    trailing_shape: shape after the row axis.
    dtype: dtype of the device array.
    mesh: the 1-D mesh.
    fill: value of padding rows.

  Returns:
    jax.Array [num_padded, *trailing_shape], sharded by rows over `mesh`.
  """
  def shard(index):
    start, stop, _ = index[0].indices(num_padded)
    block = np.full((stop - start,) + tuple(trailing_shape), fill, dtype=dtype)
    real_stop = min(stop, num_rows)
    if real_stop > start:
      block[: real_stop - start] = rows(start, real_stop)
    return block

  shape = (num_padded,) + tuple(trailing_shape)
  return jax.make_array_from_callback(shape, row_sharding(mesh), shard)


def to_host(array: jax.Array, num_rows: Optional[int] = None) -> np.ndarray:
  """Gathers a row-sharded array to every host as numpy, keeping `num_rows` rows."""
  if jax.process_count() > 1 and not array.is_fully_addressable:
    host = np.asarray(multihost_utils.process_allgather(array, tiled=True))
  else:
    host = np.asarray(array)
  return host if num_rows is None else host[:num_rows]


def apply_to_batch(apply: Callable, batch: np.ndarray, mesh: Mesh) -> np.ndarray:
  """Runs a jitted `apply` on a host batch split over the mesh's devices.

  Args:
    apply: jitted function [B, ...] → [B, D].
    batch: [B, ...] host batch (padded here to a multiple of the devices with zeros).
    mesh: 1-D mesh of this process's devices.

  Returns:
    [B, D] numpy array.
  """
  count, devices = len(batch), mesh_size(mesh)
  padded = -(-max(count, 1) // devices) * devices
  placed = np.zeros((padded,) + batch.shape[1:], batch.dtype)
  placed[:count] = batch
  return np.asarray(apply(jax.device_put(placed, row_sharding(mesh))))[:count]
