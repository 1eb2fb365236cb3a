"""Test-session set-up: 8 simulated CPU devices, so sharded paths are exercised.

Tests compare against 1 device by building a mesh over jax.devices()[:1].
This must run before JAX initialises its backend, hence here.
"""

import atexit
import os
import shutil
import tempfile

from svp_jax import sharding  # Imports JAX without initialising a backend.

if '--xla_force_host_platform_device_count' not in os.environ.get(
    'XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' ' +
                             sharding.simulated_cpu_devices_flags(8))

# main.py runs started by tests share one persistent compilation cache of
# their own (svp_jax.compilation_cache), deleted at the end, never the
# user's: tests kill some runs, and an entry cut short by a kill would stay
# in the user's folder.
if 'SVP_JAX_COMPILATION_CACHE' not in os.environ:
  _CACHE = tempfile.mkdtemp(prefix='svp_jax_test_compilation_cache_')
  os.environ['SVP_JAX_COMPILATION_CACHE'] = _CACHE
  atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

FASHION_MNIST_DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def load_script():
  """Imports scripts/NAME.py (not a package) as a module: NAME -> module."""
  import importlib.util  # pylint: disable=g-import-not-at-top

  def load(name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(REPO, 'scripts', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

  return load


@pytest.fixture(scope='session')
def fashion_mnist_dir(tmp_path_factory):
  """A TFDS data_dir holding real Fashion-MNIST, prepared once per session."""
  if not os.path.exists(os.path.join(FASHION_MNIST_DEBIAN_DIR,
                                     'train-images-idx3-ubyte.gz')):
    pytest.skip('Debian package dataset-fashion-mnist is not installed '
                '(scripts/setup.sh installs it)')
  from svp_jax import data  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  data.load_split('fashion_mnist', 'test', data_dir=data_dir)
  return data_dir


@pytest.fixture(scope='session')
def own_files(tmp_path_factory):
  """Tiny own-files datasets, one per kind: {'images', 'texts'} -> path.

  Plumbing only (shapes and formats); tests of learning use real data.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('own_files')
  rng = np.random.default_rng(0)
  for c, name in enumerate(('dark', 'light')):
    folder = root / 'images' / name
    folder.mkdir(parents=True)
    for i in range(12):
      pixels = rng.integers(0, 100, (8, 8), dtype=np.uint8) + 150 * c
      Image.fromarray(pixels.astype(np.uint8)).save(folder / f'{i}.png')
  table = root / 'texts.csv'
  rows = ['text,label'] + [f'{word} {word} {i},{word}' for i in range(12)
                           for word in ('good', 'bad')]
  table.write_text('\n'.join(rows) + '\n', encoding='utf-8')
  return {'images': str(root / 'images'), 'texts': str(table)}
