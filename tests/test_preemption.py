"""Checkpoints inside a training and stop requests (svp_jax.preemption)."""

import importlib.util
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import fashion_mnist_coreset
from configs import fashion_mnist_resnet20
from svp_jax import coreset
from svp_jax import models
from svp_jax import preemption
from svp_jax import results
from svp_jax import run_files
from svp_jax import sharding
from svp_jax import train
from svp_jax import train_job

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


# ----------------------------------------------------------------------------
# The train and core-set jobs stop, save and resume like active runs.


class _Stops:
  """SIGTERM after given numbers of training steps, one per attempt
  (counted afresh in each), and the final states of the trainings."""

  def __init__(self, monkeypatch, steps):
    self.steps, self.states = list(steps), []
    self.count = 0
    real_save = train._save_if_due  # pylint: disable=protected-access
    real_train = train.train_model

    def counting(*args):
      self.count += 1
      if self.steps and self.count == self.steps[0]:
        # The job's own handler, else the signal would end the tests.
        assert signal.getsignal(signal.SIGTERM) is preemption.request_stop
        os.kill(os.getpid(), signal.SIGTERM)
      return real_save(*args)

    def recording(*args, **kwargs):
      result = real_train(*args, **kwargs)
      self.states.append(jax.device_get(result.state))
      return result

    monkeypatch.setattr(train, '_save_if_due', counting)
    monkeypatch.setattr(train, 'train_model', recording)

  def stop_after(self, *steps):
    self.steps, self.count = list(steps), 0

  def next_attempt(self):
    self.stop_after(*self.steps[1:])
    preemption.clear_stop_request()


def _stripped(records):
  return [{k: v for k, v in r.items()
           if k not in ('seconds', 'images_per_second')} for r in records]


def _tiny_train_config(data_dir):
  config = fashion_mnist_resnet20.get_config('quick')
  config.data.data_dir = data_dir
  config.data.max_train_examples = 48
  config.data.max_test_examples = 16
  config.train.batch_size = 16  # 3 steps an epoch, 2 epochs.
  config.preemption.checkpoint_minutes = 0.0  # Saves only when stopped.
  return config


@pytest.mark.slow
def test_a_stopped_train_job_resumes_to_the_same_model(
    fashion_mnist_dir, tmp_path, monkeypatch):
  # Three tiny trainings (48 images, 2 epochs): about 10 s.
  config = _tiny_train_config(fashion_mnist_dir)
  stops = _Stops(monkeypatch, [])
  straight = train_job.run(config, str(tmp_path / 'straight'))
  workdir = tmp_path / 'resumed'
  stops.stop_after(4)  # In the second epoch.
  with pytest.raises(preemption.Preempted, match='epoch 2, step 1 of 3'):
    train_job.run(config, str(workdir))
  assert (workdir / run_files.TRAINING_CHECKPOINTS / 'model').is_dir()
  assert len(results.read_jsonl(str(workdir / run_files.METRICS_JSONL))) == 1
  stops.next_attempt()
  resumed = train_job.run(config, str(workdir))
  _same(stops.states[0].params, stops.states[1].params)
  _same(stops.states[0].batch_stats, stops.states[1].batch_stats)
  for key in ('final_test_accuracy', 'best_test_accuracy', 'epochs'):
    assert resumed[key] == straight[key], key
  assert _stripped(results.read_jsonl(str(
      workdir / run_files.METRICS_JSONL))) == _stripped(results.read_jsonl(
          str(tmp_path / 'straight' / run_files.METRICS_JSONL)))
  assert not (workdir / run_files.TRAINING_CHECKPOINTS).exists()


@pytest.mark.slow
def test_a_stopped_coreset_run_resumes_inside_its_trainings(
    fashion_mnist_dir, tmp_path, monkeypatch):
  # A 400-image pool: the proxy (4 steps) and one target (4 steps), run
  # straight, then stopped in the proxy, then in the target: about 20 s.
  config = fashion_mnist_coreset.get_config('least_confidence,quick')
  config.data.data_dir = fashion_mnist_dir
  config.data.max_train_examples = 400
  config.data.max_test_examples = 100
  config.coreset.subset_size = 120.0
  config.target.train.batch_size = 32
  config.preemption.checkpoint_minutes = 0.0
  stops = _Stops(monkeypatch, [])
  straight = coreset.run(config, str(tmp_path / 'straight'))
  workdir = tmp_path / 'resumed'
  # Step 2 of the proxy; then, resumed, its last 2 and the target's first 2.
  stops.stop_after(2, 4)
  with pytest.raises(preemption.Preempted, match='in proxy .* step 2 of 4'):
    coreset.run(config, str(workdir))
  stops.next_attempt()
  with pytest.raises(preemption.Preempted, match='in target .* step 2 of 4'):
    coreset.run(config, str(workdir))
  assert (workdir / 'least_confidence' / run_files.TRAINING_CHECKPOINTS
          / 'target_120').is_dir()
  stops.next_attempt()
  resumed = coreset.run(config, str(workdir))
  # Trainings: straight proxy and target, then the resumed proxy and target.
  assert len(stops.states) == 4
  for a, b in ((0, 2), (1, 3)):
    _same(stops.states[a].params, stops.states[b].params)
  np.testing.assert_array_equal(
      np.loadtxt(workdir / 'least_confidence' / 'coreset_120.index'),
      np.loadtxt(tmp_path / 'straight' / 'least_confidence' /
                 'coreset_120.index'))
  for key in ('proxy_test_accuracy', 'target_test_accuracy'):
    assert resumed['methods'][0][key] == straight['methods'][0][key], key
  assert not (workdir / run_files.TRAINING_CHECKPOINTS).exists()
  assert not (workdir / 'least_confidence'
              / run_files.TRAINING_CHECKPOINTS).exists()
