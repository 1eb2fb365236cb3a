r"""Where an active run's data-selection time goes, phase by phase.

  python -m benchmarks.selection_phases --selector=preact20 \
      --method=least_confidence --pool=60000

Runs one real active-learning run in this process (svp_jax.active.run) on
Fashion-MNIST in CIFAR's layout: --selector trained for --epochs epochs
(batch 128, the default config's recipe), 1,000 random labels, then +1,000
and +2,000 picked by --method, no target (only the selection is timed).
Every phase is timed where the library does it, by wrapping the library's
own functions (nothing is re-implemented here):

  init        train.init_state, until the state is on the devices
  placement   host time gathering batches and handing them to the devices
              (train.global_batch), in training, testing and scoring
  epochs      each epoch's seconds (train_model's history)
  scoring     experiment.method_scores (the pool's forward pass)
  ranking     the selection's top-k / greedy k-centers
  test        train.evaluate on 2,000 test images (not part of selection)
  compile     JAX's compiling inside each of them (svp_jax.timing)

Right after each round's scoring (outside every timer of the run), the
forward step alone: the same jitted scoring step with the same trained
selector on one batch already on the devices, images/s at the same batch
size, the ceiling pool scoring is measured against. Measured next to each
other, the two share the machine's load. The last line printed is the result
as JSON.
"""

import contextlib
import dataclasses
import functools
import json
import statistics
import tempfile
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from configs import common
from configs import fashion_mnist
from configs import fashion_mnist_svp
from svp_jax import active
from svp_jax import experiment
from svp_jax import methods
from svp_jax import runtime
from svp_jax import scoring
from svp_jax import selection
from svp_jax import sharding
from svp_jax import timing
from svp_jax import train

_SELECTOR = flags.DEFINE_string('selector', 'preact20', 'Selector model.')
_METHOD = flags.DEFINE_enum('method', 'least_confidence',
                            ['least_confidence', 'kcenters'],
                            'Selection method.')
_POOL = flags.DEFINE_integer('pool', 60000, 'Pool size (training images).')
_EPOCHS = flags.DEFINE_enum('epochs', '5', ['5', '15'],
                            "Selector epochs: the fewer-epochs recipe (5) "
                            "or the default proxy's (15).")
_ROUNDS = flags.DEFINE_list('rounds', ['1000', '1000', '2000'],
                            'Initial labeled set, then each round\'s adds.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Forward-step repetitions.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir.')

TEST_EXAMPLES = 2000
_SCHEDULES = {'5': fashion_mnist.FEWER_EPOCHS_LR_SCHEDULE,
              '15': fashion_mnist.SVP_LR_SCHEDULE}


@dataclasses.dataclass
class _Phases:
  """Seconds (and compile seconds) of each phase, as the run goes."""

  current: str = 'other'
  seconds: dict[str, float] = dataclasses.field(default_factory=dict)
  compiling: dict[str, float] = dataclasses.field(default_factory=dict)
  fits: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  scorings: list[dict[str, Any]] = dataclasses.field(default_factory=list)

  def add(self, phase: str, took: timing.Timed):
    self.seconds[phase] = self.seconds.get(phase, 0.0) + took.seconds
    self.compiling[phase] = (self.compiling.get(phase, 0.0)
                             + took.compile_seconds)

  @contextlib.contextmanager
  def inside(self, phase: str):
    outer, self.current = self.current, phase
    try:
      yield
    finally:
      self.current = outer


def config_for(selector: str, method: str, pool: int, epochs: str,
               rounds: list[str], data_dir: str | None):
  config = fashion_mnist_svp.get_config(method)
  config.selector = common.model_section(selector, _SCHEDULES[epochs])
  config.data.max_train_examples = pool
  # The selector's test accuracy is not part of the selection: 2,000 test
  # images keep its (reported) test phase short.
  config.data.max_test_examples = TEST_EXAMPLES
  if data_dir:
    config.data.data_dir = data_dir
  config.selection.initial_subset = float(rounds[0])
  config.selection.rounds = tuple(float(r) for r in rounds[1:])
  config.selection.train_target = False
  return config


def instrument(phases: _Phases, repeats: int):
  """Wraps the library's phase functions so that `phases` records them."""

  def timed_as(phase, fn, ready=lambda result: result):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
      with phases.inside(phase):
        result, took = timing.timed(lambda: ready(fn(*args, **kwargs)))
      phases.add(phase, took)
      return result
    return wrapper

  def block(result):
    return jax.block_until_ready(result)

  train.init_state = timed_as('init', train.init_state, block)
  train.evaluate = timed_as('test', train.evaluate)
  scores_of = timed_as('scoring', experiment.method_scores)

  @functools.wraps(experiment.method_scores)
  def method_scores(job, learner, method, trained, labeled=None):
    before = phases.seconds.get('scoring', 0.0), phases.compiling.get(
        'scoring', 0.0)
    scores = scores_of(job, learner, method, trained, labeled)
    scored = (len(labeled) - int(np.sum(labeled))
              if labeled is not None and method.scoring.unlabeled_only
              else len(learner.pool_eval_inputs))
    run_seconds = (phases.seconds['scoring'] - before[0]) - (
        phases.compiling['scoring'] - before[1])
    phases.scorings.append({
        'images': scored, 'run_seconds': run_seconds,
        'images_per_second': scored / run_seconds,
        'forward_images_per_second': forward_images_per_second(
            job, learner, method, trained.state, repeats)})
    return scores

  experiment.method_scores = method_scores
  selection.select_top_k = timed_as('ranking', selection.select_top_k, block)
  selection.greedy_k_centers = timed_as('ranking', selection.greedy_k_centers,
                                        block)
  placing = train.global_batch

  @functools.wraps(placing)
  def global_batch(*args, **kwargs):
    start = time.perf_counter()
    batch = placing(*args, **kwargs)
    phases.seconds.setdefault('placement:' + phases.current, 0.0)
    phases.seconds['placement:' + phases.current] += (
        time.perf_counter() - start)
    return batch

  train.global_batch = global_batch
  train.DEFAULT_HOOKS = dataclasses.replace(train.DEFAULT_HOOKS,
                                            make_batch=global_batch)
  training = train.train_model

  @functools.wraps(training)
  def train_model(*args, **kwargs):
    before = dict(phases.seconds), dict(phases.compiling)
    with phases.inside('fit'):
      result, took = timing.timed(training, *args, **kwargs)
    epochs = [h['seconds'] for h in result.history]
    phases.fits.append({
        'labeled': len(args[5]), 'wall_seconds': took.seconds,
        'compile_seconds': took.compile_seconds,
        'init_seconds': phases.seconds.get('init', 0.0)
                        - before[0].get('init', 0.0),
        'init_compile_seconds': phases.compiling.get('init', 0.0)
                                - before[1].get('init', 0.0),
        'placement_seconds': phases.seconds.get('placement:fit', 0.0)
                             - before[0].get('placement:fit', 0.0),
        'epoch_seconds': epochs})
    return result

  train.train_model = train_model


def fit_checks(fit: dict[str, Any]) -> dict[str, Any]:
  """The issue's yardsticks for one fit (seconds)."""
  epochs = fit['epoch_seconds']
  steady = statistics.median(epochs[1:]) if len(epochs) > 1 else epochs[0]
  expected = len(epochs) * steady + fit['compile_seconds']
  return {**fit, 'steady_epoch_seconds': steady,
          'epochs_x_steady_plus_compile': expected,
          'wall_over_expected': fit['wall_seconds'] / expected,
          # Everything but steady epochs and compiling: initialisation, the
          # first epoch's extra cost beyond compiling, the loop's own work.
          'fixed_seconds': fit['wall_seconds'] - len(epochs) * steady
                           - fit['compile_seconds'],
          'outside_epochs_seconds': fit['wall_seconds'] - sum(epochs)}


def forward_images_per_second(job: experiment.Job,
                              learner: experiment.Learner,
                              method: methods.SelectionMethod,
                              state: train.TrainState, repeats: int) -> float:
  """The scoring step alone on one device-resident batch (its ceiling)."""
  size = sharding.padded_size(learner.eval_batch_size, job.mesh)
  images = learner.pool_eval_inputs[:size]
  batch = train.global_batch(job.mesh, images,
                             np.zeros(len(images), np.int32),
                             np.arange(size), np.ones(size, np.float32))
  step = functools.partial(scoring.batch_step, model=learner.model,
                           cfg=learner.cfg, per_batch=method.scoring)
  steps = max(1, 2048 // size)
  jax.block_until_ready(step(state, batch['image']))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    outs = [step(state, batch['image']) for _ in range(steps)]
    jax.block_until_ready(outs)
    times.append(time.perf_counter() - start)
  return steps * size / statistics.median(times)


def measure(selector: str, method: str, pool: int, epochs: str,
            rounds: list[str], repeats: int,
            data_dir: str | None) -> dict[str, Any]:
  config = config_for(selector, method, pool, epochs, rounds, data_dir)
  phases = _Phases()
  instrument(phases, repeats)
  timing.install()
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    summary = active.run(config, workdir)
    run_seconds = time.perf_counter() - start
  scored = sum(s['images'] for s in phases.scorings)
  scoring_seconds = sum(s['run_seconds'] for s in phases.scorings)
  return {
      'selector': selector, 'method': method, 'pool': pool,
      'epochs': int(epochs), 'schedule': [int(r) for r in rounds],
      'devices': jax.device_count(),
      'eval_batch_size': config.selector.train.eval_batch_size,
      'run_seconds': run_seconds,
      'data_selection_seconds': summary['data_selection_seconds'],
      'rounds': summary['rounds'],
      'phase_seconds': phases.seconds,
      'phase_compile_seconds': phases.compiling,
      'fits': [fit_checks(f) for f in phases.fits],
      'scorings': phases.scorings,
      'scored_images': scored,
      'scoring_images_per_second': scored / scoring_seconds,
      # Each round's forward-step figure weighted by the images it scored.
      'forward_images_per_second': scored / sum(
          s['images'] / s['forward_images_per_second']
          for s in phases.scorings),
  }


def main(argv):
  del argv
  runtime.configure()  # as main.py does
  result = measure(_SELECTOR.value, _METHOD.value, _POOL.value,
                   _EPOCHS.value, _ROUNDS.value, _REPEATS.value,
                   _DATA_DIR.value)
  logging.info('phases: %s', result['phase_seconds'])
  print(json.dumps(result), flush=True)


if __name__ == '__main__':
  app.run(main)
