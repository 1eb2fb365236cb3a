"""Runs an svp_jax experiment described by an ml_collections config file.

  python main.py --config=configs/fashion_mnist_resnet20.py --workdir=workdirs/fmnist
  python main.py --config=configs/cifar10_train.py:preact20,quick \
      --config.train.batch_size=64

Kept short on purpose: everything testable lives in the svp_jax package.
"""

import logging as std_logging
import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from svp_jax import command_line
from svp_jax import compilation_cache
from svp_jax import data
from svp_jax import distributed
from svp_jax import jobs
from svp_jax import preemption
from svp_jax import results
from svp_jax import runtime
from svp_jax import validation
from svp_jax import workdir_lock

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file, optionally FILE:ARG.',
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Where results go (default: workdirs/<config file name>).')
# Multi-host (BUILD.md, "Multi-host"): the same command on every process.
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False, 'Join a multi-process run. Without the three flags '
    'below JAX detects the cluster (Cloud TPU, SLURM, Open MPI).')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0 (implies '
    '--distributed).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None,
                                      'Processes in the run.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None,
                                   "This process's index, 0-based.")
_CPU_DEVICES = flags.DEFINE_integer(
    'cpu_devices_per_process', 0, 'Run on the CPU with this many devices per '
    'process and gloo collectives (multi-process runs on one machine).')
_JOIN_TIMEOUT = flags.DEFINE_integer(
    'distributed_timeout', 120, 'Seconds to wait for every process to join.')
# CPU-only speed-ups (svp_jax/runtime.py); GPU and TPU runs never use them.
_CPU_CONV = flags.DEFINE_enum(
    'cpu_conv', None, runtime.CONV_MODES, 'Convolutions on the CPU: oneDNN '
    'if it builds (auto), oneDNN or fail, or XLA\'s own. Default: '
    '$SVP_JAX_CPU_CONV, else auto.')
_RETAIN_HOST_MEMORY = flags.DEFINE_enum(
    'retain_host_memory', 'auto', runtime.MEMORY_MODES, 'Keep freed host '
    'memory for the next step: on a CPU-only run (auto), that or fail (on), '
    'never (off).')
_COMPILATION_CACHE = flags.DEFINE_string(
    'compilation_cache', None, 'Folder of JAX\'s persistent compilation '
    'cache, shared by every run on the machine, or "off". Default: '
    f'${compilation_cache.CACHE_ENV}, else '
    f'{compilation_cache.default_dir()}.')


class _QuietLibraries(std_logging.Filter):
  """Keeps only warnings and errors from chatty libraries (orbax, TFDS)."""

  def filter(self, record):
    return record.levelno >= std_logging.WARNING or not any(
        part in record.pathname
        for part in ('/orbax/', '/tensorflow_datasets/', '/etils/',
                     '/xla_bridge.py'))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_QuietLibraries())
  command_line.check_config(_CONFIG.value, sys.argv)
  try:
    # Before JAX starts its threads (host memory).
    runtime.configure(_CPU_CONV.value, _RETAIN_HOST_MEMORY.value)
    compilation_cache.configure(_COMPILATION_CACHE.value)
  except (ValueError, RuntimeError) as e:  # A choice this machine can't honour.
    sys.exit(f'error: {e}')
  config_path = flags.FLAGS['config'].config_filename
  workdir = _WORKDIR.value or os.path.join(
      'workdirs', os.path.splitext(os.path.basename(config_path))[0])
  logging.info('Config %s, workdir %s', config_path, workdir)
  try:
    if _DISTRIBUTED.value or _COORDINATOR.value:
      distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value,
                             _PROCESS_ID.value,
                             cpu_devices=_CPU_DEVICES.value,
                             timeout_seconds=_JOIN_TIMEOUT.value)
      distributed.check_same_config(_CONFIG.value)
    jobs.run(_CONFIG.value, workdir)
  except (validation.ConfigError, data.DataError, results.WriteError,
          workdir_lock.WorkdirError) as e:
    # A bad config, missing data, a full disk or a workdir in use is the
    # user's to fix: one clear message, no traceback.
    sys.exit(f'error: {e}')
  except runtime.BuildError as e:  # --cpu_conv=onednn where it can't build.
    sys.exit(f'error: --cpu_conv=onednn: {str(e).splitlines()[0]}')
  except preemption.Preempted as e:  # SIGTERM or SIGINT, after saving.
    print(f'stopped: {e}. Resume with the same command: '
          f'python {" ".join(sys.argv)}', file=sys.stderr)
    sys.exit(preemption.PREEMPTED_STATUS)


if __name__ == '__main__':
  flags.mark_flags_as_required(['config'])
  app.run(main, flags_parser=command_line.parse_flags)
