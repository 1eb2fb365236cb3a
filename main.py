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

from svp_jax import data
from svp_jax import jobs
from svp_jax import validation

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file, optionally FILE:ARG.',
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Where results go (default: workdirs/<config file name>).')


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
  config_path = flags.FLAGS['config'].config_filename
  workdir = _WORKDIR.value or os.path.join(
      'workdirs', os.path.splitext(os.path.basename(config_path))[0])
  logging.info('Config %s, workdir %s', config_path, workdir)
  try:
    jobs.run(_CONFIG.value, workdir)
  except (validation.ConfigError, data.DataError) as e:
    # A bad config or missing data is the user's to fix: one clear message,
    # no traceback.
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  flags.mark_flags_as_required(['config'])
  app.run(main)
