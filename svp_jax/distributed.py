"""Several processes as one JAX runtime (multi-host TPU/GPU, or CPU on loopback).

svp_jax uses JAX's own multi-controller runtime: every process runs the same
program, `jax.distributed.initialize` connects them, and the one `data` mesh
(sharding.make_mesh) then spans every device of every process. Each process
feeds only its rows of every global batch (data.process_slice), pool scores
are gathered to every process, so each one selects the same points, and only
process 0 writes result files (results.is_writer). BUILD.md, "Multi-host",
has the commands.
"""

import hashlib
import json
import socket
import time

from absl import logging
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from svp_jax import results
from svp_jax import validation


def initialize(coordinator_address: str | None, num_processes: int | None,
               process_id: int | None, *, cpu_devices: int = 0,
               timeout_seconds: int = 300):
  """Joins this process to the others before JAX's backend starts.

  With no address, JAX detects the cluster itself (Cloud TPU, SLURM, Open
  MPI). `cpu_devices` > 0 runs on the CPU with that many devices per process
  and gloo collectives (how the tests prove multi-process runs on one machine).
  """
  if cpu_devices:
    jax.config.update('jax_platforms', 'cpu')
    jax.config.update('jax_num_cpu_devices', cpu_devices)
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  if coordinator_address and process_id:
    # XLA aborts the whole process (no Python exception) when it cannot
    # register with the coordinator; probing first gives a readable error.
    _wait_for_coordinator(coordinator_address, timeout_seconds)
  logging.info('Joining the distributed run at %s as process %s of %s '
               '(waiting up to %d s for all to join).', coordinator_address
               or '(auto-detected)', process_id, num_processes,
               timeout_seconds)
  try:
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes,
        process_id=process_id, initialization_timeout=timeout_seconds)
  except Exception as e:  # JAX raises several types; all mean "not joined".
    raise validation.ConfigError(
        f'could not join the distributed run (coordinator_address='
        f'{coordinator_address!r}, num_processes={num_processes}, process_id='
        f'{process_id}) within {timeout_seconds} s: {e}') from e
  logging.info('Process %d of %d joined: %d local and %d global devices.',
               jax.process_index(), jax.process_count(),
               jax.local_device_count(), jax.device_count())


# Where data is read from may differ between hosts (their own disks).
_HOST_LOCAL_KEYS = ('data_dir', 'manual_dir')


def _wait_for_coordinator(address: str, timeout_seconds: float):
  """Returns once `host:port` accepts TCP connections; ConfigError if never."""
  host, _, port = address.rpartition(':')
  deadline = time.monotonic() + timeout_seconds
  while True:
    try:
      with socket.create_connection((host.strip('[]'), int(port)), timeout=5):
        return
    except (OSError, ValueError) as e:
      if time.monotonic() >= deadline:
        raise validation.ConfigError(
            f'could not join the distributed run: nothing answers at '
            f'--coordinator_address={address!r} after {timeout_seconds} s '
            f'({e}). Start process 0 (it hosts the coordinator) and check '
            'the address and port.') from e
      time.sleep(0.5)


def config_digest(config: ml_collections.ConfigDict) -> bytes:
  """A 32-byte digest of the config, host-local paths excepted."""
  value = results.to_jsonable(config.to_dict())
  for key in _HOST_LOCAL_KEYS:
    value.get('data', {}).pop(key, None)
  text = json.dumps(value, sort_keys=True)
  return hashlib.sha256(text.encode()).digest()


def check_same_config(config: ml_collections.ConfigDict):
  """Refuses to run unless every process was started with the same config.

  Processes with different configs would select different points and
  deadlock or, worse, write a mixed run. Every process raises, so none hangs.
  """
  if jax.process_count() == 1:
    return
  mine = np.frombuffer(config_digest(config), np.uint8)
  every = np.asarray(multihost_utils.process_allgather(mine))
  differing = [p for p in range(len(every))
               if not np.array_equal(every[p], every[0])]
  if differing:
    raise validation.ConfigError(
        f'processes {differing} were started with a config different from '
        f'process 0 (compare their --config flags and overrides); every '
        f'process must run the same config. Nothing was written.')
