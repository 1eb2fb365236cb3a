"""The active-learning loop: schedule, files, baseline reuse, refusal, resume."""

import csv
import errno
import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from configs import common
from configs import fashion_mnist_svp
from svp_jax import active
from svp_jax import experiment
from svp_jax import preemption
from svp_jax import results
from svp_jax import run_files
from svp_jax import sharding
from svp_jax import timing
from svp_jax import train
from svp_jax import validation

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_paper_schedules_resolve_to_reference_counts():
  # docs/reference.md: CIFAR 1,000 then +4,000, +5,000 x4; ImageNet 25,623 then
  # +102,493, +128,117 x4; Amazon polarity 72,000 then +288,000, +360,000 x4.
  paper = (common.PAPER_INITIAL_SUBSET, common.PAPER_ROUNDS)
  assert active.resolve_schedule(*paper, 50_000) == (
      1000, 4000, 5000, 5000, 5000, 5000)
  assert active.resolve_schedule(*paper, 1_281_167) == (
      25_623, 102_493, 128_117, 128_117, 128_117, 128_117)
  assert active.resolve_schedule(*paper, 3_600_000) == (
      72_000, 288_000, 360_000, 360_000, 360_000, 360_000)
  assert active.resolve_schedule(1000.0, (5, 0.5), 100_000) == (
      1000, 5, 50_000)


@pytest.mark.parametrize('initial,rounds,match', [
    (0, (), r'selection.initial_subset=0 '),
    (-0.5, (), r'selection.initial_subset=-0.5 '),
    (10.5, (), r'selection.initial_subset=10.5 .*whole number'),
    (0.1, (0.2, 0), r'selection.rounds\[1\]=0 '),
    (0.0001, (), r'is 0 examples of a pool of 1000'),
    (500, (400, 200), r'add up to 1100 examples, more than the pool of 1000'),
])
def test_bad_schedules_name_the_key_and_value(initial, rounds, match):
  with pytest.raises(validation.ConfigError, match=match):
    active.resolve_schedule(initial, rounds, 1000)


def tiny_config(data_dir, **selection):
  """Real Fashion-MNIST, 600-image pool, preact8 models, 1 epoch each."""
  config = fashion_mnist_svp.get_config('quick')
  config.data.data_dir = data_dir
  config.data.max_train_examples = 600
  config.data.max_test_examples = 200
  config.selection.initial_subset = 50.0
  config.selection.rounds = (50.0, 100.0)
  config.target.model.name = 'preact8'
  for key, value in selection.items():
    config.selection[key] = value
  return config


def read_csv(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def read_indices(workdir):
  found = {}
  for root, _, files in os.walk(workdir):
    for name in files:
      if name.endswith('.index'):
        found[name] = np.loadtxt(os.path.join(root, name), dtype=np.int64,
                                 ndmin=1)
  return found


@pytest.mark.slow
@pytest.mark.parametrize('method', ['least_confidence', 'kcenters'])
def test_run_writes_reference_files(fashion_mnist_dir, tmp_path, method):
  config = tiny_config(fashion_mnist_dir, method=method)
  summary = active.run(config, str(tmp_path))
  assert summary['complete'] and summary['rounds_completed'] == 3
  assert [r['labeled'] for r in summary['rounds']] == [50, 100, 200]
  assert [r['encoding_seconds'] for r in summary['rounds']] == [0.0] * 3
  proxy = read_csv(tmp_path / 'proxy.csv')
  assert list(proxy[0]) == list(run_files.MODEL_COLUMNS)
  assert [int(r['nexamples']) for r in proxy] == [50, 100]
  selection_rows = read_csv(tmp_path / 'selection.csv')
  assert list(selection_rows[0]) == list(run_files.SELECTION_COLUMNS)
  assert [(int(r['current_nexamples']), int(r['new_nexamples']))
          for r in selection_rows] == [(50, 50), (100, 100)]
  target = read_csv(tmp_path / 'target.csv')
  assert [int(r['nexamples']) for r in target] == [100, 200]
  indices = read_indices(tmp_path)
  assert set(indices) == {'initial_subset_50.index', 'labeled_100.index',
                          'labeled_200.index'}
  # Each labeled set contains the previous one; no duplicates; in the pool.
  small, mid, big = (indices['initial_subset_50.index'],
                     indices['labeled_100.index'], indices['labeled_200.index'])
  assert set(small) < set(mid) < set(big)
  assert len(set(big)) == 200 and big.max() < 600


@pytest.mark.slow
@pytest.mark.parametrize('method', ['least_confidence', 'kcenters'])
def test_a_round_like_the_last_compiles_nothing(fashion_mnist_dir, tmp_path,
                                                method, monkeypatch):
  # Rounds 1 and 2 add as many points (same k), so every jitted function of
  # training, scoring and ranking has the shapes it had in round 1: the
  # third round must find them all compiled (labeled-set sizes differ, but
  # batches are padded to one size). Every fit takes 2 steps an epoch (130
  # to 230 labels, batch 128), so summing step metrics is not new either.
  config = tiny_config(fashion_mnist_dir, method=method, initial_subset=130.0,
                       rounds=(50.0, 50.0))
  counts = []
  write_tables = active.write_tables

  def counting(exp, state):
    counts.append((timing.compile_counts(), timing.compiled_functions()))
    return write_tables(exp, state)

  monkeypatch.setattr(active, 'write_tables', counting)
  timing.install()
  # Compiled by earlier tests or not, round 1 must compile for itself.
  jax.clear_caches()
  train._jitted_init.cache_clear()  # pylint: disable=protected-access
  summary = active.run(config, str(tmp_path))
  # After each round, and once more at the end (nothing runs in between).
  assert summary['complete'] and len(counts) == 4 and counts[3] == counts[2]
  again = {name: n - counts[1][1].get(name, 0)
           for name, n in counts[2][1].items()
           if n != counts[1][1].get(name, 0)}
  assert not again, f'round 2 compiled again: {again}'
  assert counts[2][0] == counts[1][0]  # No tracing or lowering either.
  assert counts[1][0] != counts[0][0], 'round 1 compiled nothing: not counting'
  assert summary['rounds'][2]['compile_seconds'] == 0.0
  assert summary['rounds'][1]['compile_seconds'] > 0.0
  assert summary['rounds'][2]['selection_seconds'] == pytest.approx(
      sum(summary['rounds'][2][part] for part in (
          'selector_train_seconds', 'scoring_seconds', 'ranking_seconds')))


def _key_tuple(key):
  return tuple(np.asarray(jax.random.key_data(key)).ravel().tolist())


def test_training_keys_differ_by_role_and_size():
  root = experiment.root_key_data(0)
  keys = [_key_tuple(experiment.train_key(root, role, size))
          for role in ('selector', 'target') for size in (1, 2, 3, 50, 60_000)]
  assert len(set(keys)) == len(keys)


@pytest.mark.slow
def test_selector_and_target_never_share_a_training_key(
    fashion_mnist_dir, tmp_path, monkeypatch):
  # The target's model trained for fewer epochs selects (as the fewer-epochs
  # proxy does), and a target trained on the same labels scores for the
  # agreement: both meet selector and target trainings on equal labels.
  config = tiny_config(fashion_mnist_dir, compare_with_target=True)
  config.target.train.lr_schedule = ((2, 0.05),)
  fits = []
  real_fit = experiment.fit

  def recording(job, learner, indices, key, why, **kwargs):
    fits.append((why.split()[0], len(indices), _key_tuple(key)))
    return real_fit(job, learner, indices, key, why, **kwargs)

  monkeypatch.setattr(experiment, 'fit', recording)
  active.run(config, str(tmp_path))
  # The target trained on 100 labels (end of round 1) scores for round 2's
  # agreement: reused, not trained again.
  assert sorted((role, n) for role, n, _ in fits) == [
      ('selector', 50), ('selector', 100), ('target', 50), ('target', 100),
      ('target', 200)]
  selector_keys = {key for role, _, key in fits if role == 'selector'}
  target_keys = {key for role, _, key in fits if role == 'target'}
  assert len(selector_keys) == 2 and len(target_keys) == 3
  assert not selector_keys & target_keys


class _Killed(Exception):
  """Stands in for a kill between rounds (after a round's checkpoint)."""


@pytest.mark.slow
def test_resumed_baseline_reuses_what_an_uninterrupted_one_does(
    fashion_mnist_dir, tmp_path, monkeypatch):
  config = tiny_config(fashion_mnist_dir, rounds=(50.0, 100.0, 100.0))
  config.selector = config.target.copy_and_resolve_references()
  active.run(config, str(tmp_path / 'straight'))

  # Die right after round 1 is checkpointed and written.
  monkeypatch.setattr(active, 'write_tables',
                      _write_tables_then_die_after_round_1)
  with pytest.raises(_Killed):
    active.run(config, str(tmp_path / 'resumed'))
  monkeypatch.undo()
  fits = []
  real_fit = experiment.fit
  monkeypatch.setattr(experiment, 'fit', lambda *a, **k: fits.append(
      a[4]) or real_fit(*a, **k))
  active.run(config, str(tmp_path / 'resumed'))
  # Rounds 2 and 3 train a target each; their selectors are the targets of
  # rounds 1 and 2, also right after the resume.
  assert fits == ['target', 'target']
  straight, resumed = (read_indices(tmp_path / 'straight'),
                       read_indices(tmp_path / 'resumed'))
  assert sorted(straight) == sorted(resumed)
  for name, indices in straight.items():
    np.testing.assert_array_equal(indices, resumed[name])
  for run in ('straight', 'resumed'):
    proxy = read_csv(tmp_path / run / 'proxy.csv')
    target = read_csv(tmp_path / run / 'target.csv')
    # The selector of round r + 1 is the target of round r: the very rows,
    # timings included.
    assert proxy[1:] == target[:2], run
  # No checkpoint keeps a target once no round is left to reuse it.
  final = sorted(os.listdir(tmp_path / 'resumed' / 'checkpoints'))[-1]
  assert 'last_target' not in os.listdir(
      tmp_path / 'resumed' / 'checkpoints' / final)


def _write_tables_then_die_after_round_1(exp, state):
  real_write_tables(exp, state)
  if state.round == 2:  # Rounds 0 (random) and 1 done, 1 trained a target.
    raise _Killed


real_write_tables = active.write_tables


@pytest.mark.slow
def test_workdir_of_another_config_is_refused(fashion_mnist_dir, tmp_path):
  config = tiny_config(fashion_mnist_dir, method='random')
  config.selection.rounds = (50.0,)
  active.run(config, str(tmp_path))
  before = sorted(os.listdir(tmp_path))
  other = tiny_config(fashion_mnist_dir, method='margin')
  with pytest.raises(validation.ConfigError,
                     match=r'different config .*selection.method'):
    active.run(other, str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == before


def test_eval_target_at_must_be_reached(fashion_mnist_dir, tmp_path):
  config = tiny_config(fashion_mnist_dir, eval_target_at=(123,))
  with pytest.raises(validation.ConfigError, match=r'eval_target_at.*\[123\]'):
    active.run(config, str(tmp_path))


def main_command(data_dir, workdir):
  return [sys.executable, os.path.join(REPO, 'main.py'),
          '--config=' + os.path.join(REPO, 'configs', 'fashion_mnist_svp.py')
          + ':quick',
          f'--workdir={workdir}', f'--config.data.data_dir={data_dir}',
          '--config.data.max_train_examples=600',
          '--config.data.max_test_examples=200',
          '--config.selection.initial_subset=50.0',
          '--config.selection.rounds=(50.0, 100.0, 100.0)',
          '--config.target.model.name=preact8']


@pytest.mark.slow
def test_sigterm_mid_target_resumes_mid_round_to_the_same_results(
    fashion_mnist_dir, tmp_path):
  # Targets of 8 epochs of 13 steps (100 labels, batch 8): SIGTERM once the
  # round-1 target has finished its second epoch lands mid-training.
  env = dict(os.environ, XLA_FLAGS=sharding.simulated_cpu_devices_flags(2))
  recipe = ['--config.target.train.batch_size=8',
            '--config.target.train.lr_schedule=((8, 0.02),)']
  straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
  subprocess.run(main_command(fashion_mnist_dir, straight) + recipe, env=env,
                 check=True, capture_output=True, timeout=600)
  process = subprocess.Popen(main_command(fashion_mnist_dir, resumed) + recipe,
                             env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
  log = []
  try:
    for line in process.stderr:
      log.append(line)
      if 'target preact8 n=100 epoch 2/8:' in line:
        process.send_signal(signal.SIGTERM)
        break
    log.extend(process.stderr)
    status = process.wait(timeout=600)
  finally:
    process.kill()
  log = ''.join(log)
  assert status == preemption.PREEMPTED_STATUS, log[-3000:]
  stopped = [l for l in log.splitlines() if l.startswith('stopped: ')]
  assert len(stopped) == 1 and 'stopped in target' in stopped[0], log[-3000:]
  assert 'Resume with the same command' in stopped[0]
  assert (resumed / 'round_checkpoints' / 'target_100').is_dir()

  result = subprocess.run(main_command(fashion_mnist_dir, resumed) + recipe,
                          env=env, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert re.search(r'target preact8 n=100: resuming at epoch [3-8], step',
                   result.stderr), result.stderr[-3000:]
  a, b = read_indices(straight), read_indices(resumed)
  assert sorted(a) == sorted(b)
  for name in a:
    np.testing.assert_array_equal(a[name], b[name])
  for table in ('proxy.csv', 'target.csv'):
    accuracies = lambda run: [(r['nexamples'], r['train_accuracy'],
                               r['test_accuracy'])
                              for r in read_csv(run / table)]
    assert accuracies(straight) == accuracies(resumed), table
  assert not (resumed / 'round_checkpoints').exists()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_selections(fashion_mnist_dir,
                                                   tmp_path):
  env = dict(os.environ, XLA_FLAGS=sharding.simulated_cpu_devices_flags(2))
  straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
  subprocess.run(main_command(fashion_mnist_dir, straight), env=env,
                 check=True, capture_output=True, timeout=600)

  # Kill the second run with SIGKILL once round 1 is checkpointed.
  process = subprocess.Popen(main_command(fashion_mnist_dir, resumed),
                             env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  try:
    deadline = time.monotonic() + 600
    while not (resumed / 'checkpoints' / '2').exists():
      assert process.poll() is None, 'run ended before it could be killed'
      assert time.monotonic() < deadline
      time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
  finally:
    process.kill()
    process.wait()
  assert not (resumed / 'proxy' / '300').exists(), 'killed too late'

  result = subprocess.run(main_command(fashion_mnist_dir, resumed), env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Resuming' in result.stderr
  a, b = read_indices(straight), read_indices(resumed)
  assert sorted(a) == sorted(b)
  for name in a:
    np.testing.assert_array_equal(a[name], b[name])
  assert len(read_csv(resumed / 'selection.csv')) == 3


@pytest.mark.slow
def test_agreement_scores_are_saved_per_round(fashion_mnist_dir, tmp_path):
  config = tiny_config(fashion_mnist_dir, compare_with_target=True)
  active.run(config, str(tmp_path / 'proxy'))
  for round_index, k in ((1, 50), (2, 100)):
    saved = np.load(tmp_path / 'proxy' / 'agreement' / f'round_{round_index}.npz')
    assert saved['proxy'].shape == saved['target'].shape == (600,)
    assert int(saved['k']) == k
    assert saved['labeled'].sum() == (50 if round_index == 1 else 100)
  # When the selector is the target, both score vectors are the same.
  config.selector = config.target.copy_and_resolve_references()
  active.run(config, str(tmp_path / 'baseline'))
  saved = np.load(tmp_path / 'baseline' / 'agreement' / 'round_2.npz')
  np.testing.assert_array_equal(saved['proxy'], saved['target'])


def test_agreement_needs_an_uncertainty_method(fashion_mnist_dir, tmp_path):
  config = tiny_config(fashion_mnist_dir, compare_with_target=True,
                       method='kcenters')
  with pytest.raises(validation.ConfigError, match=r'compare_with_target'):
    active.run(config, str(tmp_path))


@pytest.mark.slow
def test_damaged_files_at_a_resume_are_repaired_or_named(fashion_mnist_dir,
                                                         tmp_path):
  config = tiny_config(fashion_mnist_dir)
  straight = tmp_path / 'straight'
  active.run(config, str(straight))
  expected = read_indices(straight)
  checkpoints = straight / 'checkpoints'
  assert sorted(os.listdir(checkpoints)) == ['2', '3']
  # The newest checkpoint truncated, the newest index file too: the run
  # falls back to round 2's checkpoint, runs round 3 again and selects the
  # same points.
  for root, _, files in os.walk(checkpoints / '3'):
    for name in files:
      with open(os.path.join(root, name), 'r+b') as f:
        f.truncate(max(0, os.path.getsize(os.path.join(root, name)) // 2))
  newest = straight / 'proxy' / '200' / 'labeled_200.index'
  newest.write_text('12\n13\n')
  summary = active.run(config, str(straight))
  assert summary['complete']
  assert (checkpoints / '3.unreadable').is_dir()
  repaired = read_indices(straight)
  for name, indices in expected.items():
    np.testing.assert_array_equal(repaired[name], indices, err_msg=name)
  # An older labeled set cannot be rebuilt from a checkpoint: named.
  (straight / 'initial_subset_50.index').write_text('1\n2\n')
  with pytest.raises(validation.ConfigError,
                     match=r'initial_subset_50.index is missing or corrupt'):
    active.run(config, str(straight))


@pytest.mark.slow
def test_a_full_disk_stops_the_run_and_keeps_what_was_written(
    fashion_mnist_dir, tmp_path, monkeypatch):
  config = tiny_config(fashion_mnist_dir)
  workdir = tmp_path / 'run'
  disk_full = []
  real_fsync, real_write_tables = os.fsync, active.write_tables

  def fsync(fd):
    if disk_full:
      raise OSError(errno.ENOSPC, 'No space left on device')
    return real_fsync(fd)

  def write_tables_then_fill_the_disk(exp, state):
    summary = real_write_tables(exp, state)
    if state.round == 2:
      disk_full.append(True)
    return summary

  monkeypatch.setattr(os, 'fsync', fsync)
  monkeypatch.setattr(active, 'write_tables', write_tables_then_fill_the_disk)
  with pytest.raises(results.WriteError,
                     match=r'cannot write .*labeled_200.index: No space left '
                           r'on device; its previous version is intact'):
    active.run(config, str(workdir))
  summary = results.read_json(str(workdir / 'summary.json'))
  assert summary['rounds_completed'] == 2
  assert len(read_csv(workdir / 'target.csv')) == 1
  leftovers = [name for _, _, files in os.walk(workdir) for name in files
               if name.endswith('.tmp')]
  assert not leftovers
  monkeypatch.undo()
  summary = active.run(config, str(workdir))  # Space again: it resumes.
  assert summary['complete'] and summary['rounds_completed'] == 3
