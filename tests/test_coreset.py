"""Core-set selection via proxy and training on precomputed selections."""

import os
import shutil

import jax
import numpy as np
import pytest

from configs import fashion_mnist_coreset
from configs import precomputed_selection
from svp_jax import coreset
from svp_jax import experiment
from svp_jax import methods
from svp_jax import results
from svp_jax import run_files
from svp_jax import selection
from svp_jax import validation


def tiny_coreset(data_dir, method, subset=120.0, seeds=20):
  """Real Fashion-MNIST, a 400-image pool, preact8 models, 1 epoch each.

  `method` is a config argument: one method, or `all`.
  """
  config = fashion_mnist_coreset.get_config(f'{method},quick')
  config.data.data_dir = data_dir
  config.data.max_train_examples = 400
  config.data.max_test_examples = 200
  config.coreset.subset_size = subset
  config.coreset.kcenters_seeds = seeds
  return config


class Calls:
  """Counts calls of a module function while forwarding them."""

  def __init__(self, monkeypatch, module, name):
    self.count = 0
    wrapped = getattr(module, name)

    def counting(*args, **kwargs):
      self.count += 1
      return wrapped(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)


def by_method(summary):
  return {row['method']: row for row in summary['methods']}


def kept(workdir, method, size=120):
  return np.loadtxt(os.path.join(workdir, method, f'coreset_{size}.index'),
                    dtype=np.int64)


@pytest.fixture(scope='module')
def all_methods_run(fashion_mnist_dir, tmp_path_factory):
  """One `all` run (six methods); its workdir, summary and proxy trainings."""
  workdir = str(tmp_path_factory.mktemp('all'))
  with pytest.MonkeyPatch.context() as monkeypatch:
    proxies = Calls(monkeypatch, coreset, 'train_proxy')
    summary = coreset.run(tiny_coreset(fashion_mnist_dir, 'all'), workdir)
  return workdir, summary, proxies.count


@pytest.mark.slow
def test_all_methods_rank_from_one_proxy(all_methods_run):
  workdir, summary, proxy_trainings = all_methods_run
  assert proxy_trainings == 1
  rows = by_method(summary)
  assert list(rows) == list(methods.names('coreset'))
  proxy = results.read_csv(os.path.join(workdir, 'proxy.csv'))
  assert len(proxy) == 1 and proxy[0]['nexamples'] == 400
  for method, row in rows.items():
    keep = kept(workdir, method)
    # The subset size includes k-centers' random seeds.
    assert len(keep) == len(np.unique(keep)) == 120 and keep.max() < 400
    assert row['subset_size'] == 120 and row['pool_size'] == 400
    assert 0 <= row['target_test_accuracy'] <= 1
    folder = os.path.join(workdir, method)
    assert [r['nexamples'] for r in
            results.read_csv(os.path.join(folder, 'target.csv'))] == [120]
    assert results.read_json(os.path.join(folder, 'selection.json'))[
        'inference_time'] == row['scoring_seconds']
    # One proxy: every method but random reports the same one.
    if method == 'random':
      assert row['proxy'] is None and row['proxy_train_seconds'] == 0.0
      assert row['scoring_seconds'] == 0.0
    else:
      assert row['proxy'] == 'preact8'
      assert row['proxy_train_seconds'] == proxy[0]['train_time']
  assert results.read_json(os.path.join(workdir, 'summary.json')) == summary
  with open(os.path.join(workdir, 'summary.md')) as f:
    text = f.read()
  assert '| random | — | preact8 | 400 | 120 | 0 | — | 0 |' in text
  assert '| kcenters | preact8 | preact8 | 400 | 120 |' in text


@pytest.mark.slow
def test_kcenters_keeps_its_random_seeds(all_methods_run):
  workdir, _, _ = all_methods_run
  purpose = experiment.CORESET_SEEDS
  seeds = selection.select_random(
      jax.random.fold_in(jax.random.key(0), purpose), np.zeros(400, bool), 20)
  assert set(np.asarray(seeds).tolist()) <= set(kept(workdir, 'kcenters'))


@pytest.mark.slow
@pytest.mark.parametrize('method', ['kcenters', 'random'])
def test_one_method_alone_keeps_what_it_keeps_among_all(
    fashion_mnist_dir, all_methods_run, tmp_path, method):
  # kcenters alone trains its proxy without counting forgetting events.
  workdir, summary, _ = all_methods_run
  alone = coreset.run(tiny_coreset(fashion_mnist_dir, method), str(tmp_path))
  np.testing.assert_array_equal(kept(str(tmp_path), method),
                                kept(workdir, method))
  # The same subset trains the same target.
  assert (by_method(alone)[method]['target_test_accuracy']
          == by_method(summary)[method]['target_test_accuracy'])
  assert len(results.read_csv(tmp_path / 'proxy.csv')) == (
      0 if method == 'random' else 1)


@pytest.mark.slow
def test_resume_skips_finished_phases(fashion_mnist_dir, all_methods_run,
                                      tmp_path, monkeypatch):
  workdir = str(tmp_path / 'run')
  shutil.copytree(all_methods_run[0], workdir)
  summary = all_methods_run[1]
  stamps = {m: os.path.getmtime(os.path.join(workdir, m, 'coreset_120.index'))
            for m in methods.names('coreset')}
  proxies = Calls(monkeypatch, coreset, 'train_proxy')
  targets = Calls(monkeypatch, coreset, 'train_target')
  # Everything done: nothing is trained or selected again.
  assert coreset.run(tiny_coreset(fashion_mnist_dir, 'all'),
                     workdir) == summary
  assert (proxies.count, targets.count) == (0, 0)
  # Only margin lost its selection, only entropy its target: the proxy
  # trains again for margin alone, which keeps the same subset.
  os.remove(os.path.join(workdir, 'margin', 'coreset_120.index'))
  os.remove(os.path.join(workdir, 'entropy', 'target.csv'))
  again = coreset.run(tiny_coreset(fashion_mnist_dir, 'all'), workdir)
  assert (proxies.count, targets.count) == (1, 1)
  for method, stamp in stamps.items():
    path = os.path.join(workdir, method, 'coreset_120.index')
    assert (os.path.getmtime(path) == stamp) == (method != 'margin')
  np.testing.assert_array_equal(kept(workdir, 'margin'),
                                kept(all_methods_run[0], 'margin'))
  assert (by_method(again)['entropy']['target_test_accuracy']
          == by_method(summary)['entropy']['target_test_accuracy'])
  # Only random left to select: no proxy at all.
  os.remove(os.path.join(workdir, 'random', 'selection.json'))
  coreset.run(tiny_coreset(fashion_mnist_dir, 'all'), workdir)
  assert proxies.count == 1


@pytest.mark.slow
def test_precomputed_reads_one_method_folder(fashion_mnist_dir,
                                             all_methods_run, tmp_path):
  workdir = all_methods_run[0]
  folder = os.path.join(workdir, 'entropy')
  assert coreset.find_selections(folder) == {
      120: os.path.join(folder, 'coreset_120.index')}
  # The workdir itself holds one subset per method: the error says so.
  with pytest.raises(validation.ConfigError,
                     match=r'holds no labeled-index files.*core-set workdir '
                     r'with one subset per method.*entropy'):
    coreset.run_precomputed(precomputed(fashion_mnist_dir, workdir),
                            str(tmp_path / 'out'))


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


# Found by the core-set soak (docs/results/preemption_soak_jobs/).
def test_a_proxy_restored_by_a_resume_is_one_row_of_proxy_csv(tmp_path):
  row = run_files.model_row(400, 0.25, 0.27, 1.5, 0.3, 1.2)
  again = dict(row, train_time=2.4, test_time=0.2, compile_time=0.4)
  other = dict(row, test_accuracy=0.3)
  for m in ('a', 'b', 'c'):
    os.makedirs(tmp_path / m)
  record = lambda proxy: {'proxy': proxy, 'inference_time': 0.1,
                          'ranking_time': 0.0, 'compile_time': 0.0}
  coreset.write_selection_tables(str(tmp_path), {
      'a': (np.arange(3), record(row)), 'b': (np.arange(3), record(again)),
      'c': (np.arange(3), record(other))})
  rows = results.read_csv(str(tmp_path / 'proxy.csv'))
  assert [r['test_accuracy'] for r in rows] == [0.27, 0.3]
