"""Core-set selection via proxy and training on precomputed selections."""

import os

import numpy as np
import pytest

from configs import fashion_mnist_coreset
from configs import precomputed_selection
from svp_jax import coreset
from svp_jax import results
from svp_jax import validation


def tiny_coreset(data_dir, method, subset=120.0, seeds=20):
  """Real Fashion-MNIST, a 400-image pool, preact8 models, 1 epoch each."""
  config = fashion_mnist_coreset.get_config(f'{method},quick')
  config.data.data_dir = data_dir
  config.data.max_train_examples = 400
  config.data.max_test_examples = 200
  config.coreset.subset_size = subset
  config.coreset.kcenters_seeds = seeds
  return config


@pytest.mark.slow
@pytest.mark.parametrize('method', ['forgetting_events', 'kcenters', 'random'])
def test_coreset_keeps_the_subset_and_trains_the_target(fashion_mnist_dir,
                                                        tmp_path, method):
  summary = coreset.run(tiny_coreset(fashion_mnist_dir, method), str(tmp_path))
  keep = np.loadtxt(tmp_path / 'coreset_120.index', dtype=np.int64)
  # The subset size includes k-centers' random seeds.
  assert len(keep) == len(np.unique(keep)) == 120 and keep.max() < 400
  assert summary['subset_size'] == 120
  target = results.read_csv(tmp_path / 'target.csv')
  assert [r['nexamples'] for r in target] == [120]
  proxy = results.read_csv(tmp_path / 'proxy.csv')
  # Random selection trains no proxy.
  assert len(proxy) == (0 if method == 'random' else 1)
  # Running again resumes: nothing is selected or trained twice.
  before = os.path.getmtime(tmp_path / 'coreset_120.index')
  again = coreset.run(tiny_coreset(fashion_mnist_dir, method), str(tmp_path))
  assert os.path.getmtime(tmp_path / 'coreset_120.index') == before
  assert again['target_test_accuracy'] == summary['target_test_accuracy']


@pytest.mark.parametrize('subset,seeds,match', [
    (500.0, 20, r'subset_size=500.0 is 500 examples, more than the pool'),
    (10.0, 20, r'kcenters_seeds=20 is more than the subset of 10'),
])
def test_impossible_sizes_are_refused(fashion_mnist_dir, tmp_path, subset,
                                      seeds, match):
  config = tiny_coreset(fashion_mnist_dir, 'kcenters', subset, seeds)
  with pytest.raises(validation.ConfigError, match=match):
    coreset.run(config, str(tmp_path))


def write_run(run_dir, sizes):
  """A run directory with svp_jax's and the reference's index layouts."""
  rng = np.random.default_rng(0)
  for size in sizes:
    folder = run_dir / 'proxy' / str(size)
    folder.mkdir(parents=True)
    np.savetxt(folder / f'labeled_{size}.index',
               rng.permutation(400)[:size], fmt='%d')
  reference = run_dir / 'selector' / '30'
  reference.mkdir(parents=True)
  np.savetxt(reference / 'labelled_30.index', np.arange(30), fmt='%d')


def test_find_selections_reads_both_layouts(tmp_path):
  write_run(tmp_path, [50, 80])
  assert list(coreset.find_selections(str(tmp_path))) == [30, 50, 80]


def precomputed(data_dir, run_dir, sizes=()):
  config = precomputed_selection.get_config('fashion_mnist')
  config.data.data_dir = data_dir
  config.data.max_train_examples = 400
  config.data.max_test_examples = 200
  config.target.model.name = 'preact8'
  config.target.train.lr_schedule = ((1, 0.05),)
  config.precomputed.run_dir = str(run_dir)
  config.precomputed.sizes = sizes
  return config


@pytest.mark.slow
def test_precomputed_selection_trains_chosen_sizes(fashion_mnist_dir,
                                                   tmp_path):
  write_run(tmp_path / 'run', [50, 80])
  coreset.run_precomputed(
      precomputed(fashion_mnist_dir, tmp_path / 'run', (30, 80)),
      str(tmp_path / 'out'))
  rows = results.read_csv(tmp_path / 'out' / 'target.csv')
  assert [r['nexamples'] for r in rows] == [30, 80]


def test_precomputed_errors_name_what_is_missing(fashion_mnist_dir, tmp_path):
  write_run(tmp_path / 'run', [50])
  with pytest.raises(validation.ConfigError, match=r'no index file for sizes '
                     r'\[60\].*it has \[30, 50\]'):
    coreset.run_precomputed(
        precomputed(fashion_mnist_dir, tmp_path / 'run', (60,)),
        str(tmp_path / 'out'))
  with pytest.raises(validation.ConfigError, match=r'holds no labeled-index'):
    coreset.run_precomputed(precomputed(fashion_mnist_dir, tmp_path / 'none'),
                            str(tmp_path / 'out'))
  with pytest.raises(validation.ConfigError, match=r'precomputed.run_dir='):
    coreset.run_precomputed(precomputed(fashion_mnist_dir, ''),
                            str(tmp_path / 'out'))
