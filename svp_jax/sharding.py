"""One mesh with one `data` axis over every device of every process.

Batches, pool scores and pool features are split along `data`; model state is
replicated. Host arrays become global arrays only here, on purpose.
"""

from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import numpy as np

DATA_AXIS = 'data'


def simulated_cpu_devices_flags(count: int) -> str:
  """XLA_FLAGS that split the host CPU into `count` devices.

  On a loaded machine one simulated device can wait for another at a
  collective for longer than XLA:CPU's default 40 s, after which XLA aborts the
  process; a slow step is not a hung one here, so the limit is raised to a day.
  Set before JAX initialises its backend.
  """
  return (f'--xla_force_host_platform_device_count={count} '
          '--xla_cpu_collective_call_terminate_timeout_seconds=86400 '
          '--xla_cpu_collective_call_warn_stuck_timeout_seconds=600')


def make_mesh(devices: list[Any] | None = None) -> Mesh:
  """A 1-D mesh named `data` over `devices` (default: all global devices)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def data_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def padded_size(size: int, mesh: Mesh) -> int:
  """`size` rounded up to a multiple of the number of devices in `mesh`."""
  return -(-size // mesh.size) * mesh.size


def host_to_global(mesh: Mesh, local_tree: Any) -> Any:
  """Assembles this process's rows of a batch into arrays sharded on `data`.

  In a single process the local rows are the whole batch; with several
  processes each passes its own contiguous slice (see data.process_slice).
  """
  sharding = data_sharded(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, x),
      local_tree)


def replicate(mesh: Mesh, tree: Any) -> Any:
  """Places a host pytree on every device of `mesh`."""
  return jax.device_put(tree, replicated(mesh))
