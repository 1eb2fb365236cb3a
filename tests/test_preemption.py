"""Checkpoints inside a training and stop requests (svp_jax.preemption)."""

import importlib.util
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from svp_jax import models
from svp_jax import preemption
from svp_jax import sharding
from svp_jax import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = train.StepConfig(num_classes=10, mean=(0.5,), std=(0.25,),
                       augment=True)


def _data(n=40, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, 12, 12, 1), dtype=np.uint8)
  return images, rng.integers(0, 10, n).astype(np.int32)


def _train(checkpoints=None, forgetting=False):
  images, labels = _data()
  # 40 examples in batches of 16: 3 steps an epoch, the last one padded.
  return train.train_model(
      jax.random.key(3), models.create_model('preact8', 10), CFG, images,
      labels, np.arange(40), batch_size=16,
      lr_schedule=((2, 0.1), (2, 0.01)), mesh=sharding.make_mesh(),
      track_forgetting=forgetting, checkpoints=checkpoints)


def _same(a, b):
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(a),
               jax.device_get(b))


def _stop_after_steps(monkeypatch, steps):
  """A stop request that arrives after `steps` training steps."""
  calls = []
  real = train._save_if_due  # pylint: disable=protected-access

  def counting(*args):
    calls.append(1)
    if len(calls) == steps:
      preemption.request_stop()
    return real(*args)

  monkeypatch.setattr(train, '_save_if_due', counting)


@pytest.fixture(autouse=True)
def _no_stale_request():
  preemption.clear_stop_request()
  yield
  preemption.clear_stop_request()


@pytest.mark.parametrize('steps', [2, 3, 7])  # Mid-epoch, epoch end, later.
@pytest.mark.parametrize('forgetting', [False, True])
def test_a_stopped_training_resumes_to_the_same_bits(tmp_path, monkeypatch,
                                                     steps, forgetting):
  straight = _train(forgetting=forgetting)
  policy = preemption.Policy(minutes=0.0, epochs=0)
  checkpoints = preemption.TrainingCheckpoints(str(tmp_path / 'fit'), policy,
                                               'test fit')
  _stop_after_steps(monkeypatch, steps)
  with pytest.raises(preemption.Preempted, match=f'step {(steps - 1) % 3 + 1}'
                     ' of 3'):
    _train(checkpoints, forgetting)
  checkpoints.close()
  monkeypatch.undo()
  preemption.clear_stop_request()
  again = preemption.TrainingCheckpoints(str(tmp_path / 'fit'), policy,
                                         'test fit')
  resumed = _train(again, forgetting)
  again.close()
  _same(straight.state, resumed.state)
  if forgetting:
    _same(straight.forgetting, resumed.forgetting)
  strip = lambda history: [{k: v for k, v in r.items()
                            if k not in ('seconds', 'images_per_second')}
                           for r in history]
  assert strip(resumed.history) == strip(straight.history)
  assert resumed.resumed_seconds > 0


def test_a_finished_training_is_not_trained_again(tmp_path, monkeypatch):
  policy = preemption.Policy(minutes=0.0, epochs=0)
  first = preemption.TrainingCheckpoints(str(tmp_path / 'fit'), policy, 'fit')
  done = _train(first)
  first.close()
  monkeypatch.setattr(train, '_train_epoch', None)  # Any epoch would fail.
  second = preemption.TrainingCheckpoints(str(tmp_path / 'fit'), policy, 'fit')
  again = _train(second)
  second.close()
  _same(done.state, again.state)
  assert again.history == done.history


def test_epoch_policy_saves_every_n_epochs_and_keeps_one(tmp_path,
                                                         monkeypatch):
  saved = []
  real_save = preemption.TrainingCheckpoints.save

  def recording(self, progress, why):
    saved.append((progress.epoch, progress.step, why))
    return real_save(self, progress, why)

  monkeypatch.setattr(preemption.TrainingCheckpoints, 'save', recording)
  checkpoints = preemption.TrainingCheckpoints(
      str(tmp_path / 'fit'), preemption.Policy(minutes=0.0, epochs=2), 'fit')
  _train(checkpoints)
  checkpoints.close()
  assert saved == [(2, 0, 'schedule'), (4, 0, 'training done')]
  assert len([d for d in os.listdir(tmp_path / 'fit') if d.isdigit()]) == 1


def _python(code, timeout=120):
  return subprocess.run([sys.executable, '-c', code], capture_output=True,
                        text=True, timeout=timeout, cwd=REPO)


def test_the_watchdog_aborts_a_run_without_progress():
  result = _python(
      'import time\n'
      'from svp_jax import preemption\n'
      'with preemption.Watchdog(minutes=0.02, check_seconds=0.1):\n'
      '  preemption.progress("training target preact8 n=100")\n'
      '  time.sleep(30)\n')
  assert result.returncode == preemption.HUNG_STATUS, result.stderr
  errors = [l for l in result.stderr.splitlines() if l.startswith('error: ')]
  assert len(errors) == 1
  assert 'while training target preact8 n=100' in errors[0]
  assert 'resumes from the last checkpoint' in errors[0]


def test_the_watchdog_spares_progress_and_unwatched_phases():
  result = _python(
      'import time\n'
      'from svp_jax import preemption\n'
      'with preemption.Watchdog(minutes=0.02, check_seconds=0.1):\n'
      '  for _ in range(30):\n'
      '    preemption.progress("training")\n'
      '    time.sleep(0.1)\n'
      '  with preemption.unwatched("ranking by kcenters"):\n'
      '    time.sleep(3)\n'
      'print("finished")\n')
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == 'finished'


@pytest.mark.slow
def test_a_short_soak_of_kills_and_resumes_diverges_nowhere(
    fashion_mnist_dir, tmp_path):
  # The short version of scripts/soak_preemption.py (whose long run is in
  # docs/results/preemption_soak/): kills at log-chosen phases, SIGKILL and
  # SIGTERM, each trial resumed until it completes.
  spec = importlib.util.spec_from_file_location(
      'soak_preemption', os.path.join(REPO, 'scripts', 'soak_preemption.py'))
  soak = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(soak)
  summary = soak.soak(str(tmp_path / 'out'), kills_wanted=4, seed=3,
                      data_dir=fashion_mnist_dir, max_kills_per_trial=2)
  assert summary['kills'] == 4 and summary['divergent_trials'] == 0
  assert (tmp_path / 'out' / 'soak.md').read_text().count('SIG') >= 1
