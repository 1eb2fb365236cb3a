"""The train job (`mode='train'`): one model trained and tested on its dataset.

Writes into the workdir: config.json (resolved config; claims the workdir,
experiment.claim_workdir), metrics.jsonl (one line per epoch), summary.json
and summary.md. The training saves its progress in
training_checkpoints/model/ (svp_jax.preemption, config.preemption), so a
run stopped by SIGTERM, killed or hung resumes where it saved, with the
same command, and ends as an uninterrupted run would; the checkpoint is
removed once the summary is written.
"""

import os
import time
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np

from svp_jax import experiment
from svp_jax import models
from svp_jax import preemption
from svp_jax import results
from svp_jax import run_files
from svp_jax import train
from svp_jax import validation
from svp_jax import workdir_lock


@workdir_lock.holds_workdir
def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains one model on the training split (or resumes it); reports test
  accuracy."""
  validation.validate_train_config(config)
  start = time.perf_counter()
  policy = preemption.Policy.from_config(config)
  # From here on SIGTERM and SIGINT only request a stop (svp_jax.preemption).
  with preemption.guard(policy):
    job = experiment.load_job(config, workdir, {'model': config})
    experiment.claim_workdir(workdir, config)
    learner = job.learners['model']
    logging.info('Training %s on %d %s examples (%d test) over %d device(s).',
                 learner.name, job.pool_size, config.data.name,
                 len(job.test[1]), job.mesh.size)
    metrics = EpochLog(os.path.join(workdir, run_files.METRICS_JSONL))
    folder = os.path.join(workdir, run_files.TRAINING_CHECKPOINTS)
    tc = config.train
    with preemption.training_checkpoints(
        os.path.join(folder, 'model'), policy,
        f'model {learner.name} n={job.pool_size}') as checkpoints:
      result = train.train_model(
          jax.random.key(config.seed), learner.model, learner.cfg,
          learner.pool_inputs, job.pool[1], np.arange(job.pool_size),
          batch_size=tc.batch_size, lr_schedule=tc.lr_schedule, mesh=job.mesh,
          eval_data=(learner.test_inputs, job.test[1]),
          eval_every=tc.eval_every, eval_batch_size=tc.eval_batch_size,
          on_epoch=metrics.add, checkpoints=checkpoints)
  # The whole training's epochs, those before a resume included.
  results.write_jsonl(metrics.path, result.history)
  summary = make_summary(config, job, result, time.perf_counter() - start
                         + result.resumed_seconds)
  write_summary(workdir, config, result.history, summary)
  # Recorded: nothing left to resume.
  preemption.remove(folder)
  logging.info('Final test accuracy %.4f (best over evaluated epochs %.4f), '
               '%.0f s in all; results in %s', summary['final_test_accuracy'],
               summary['best_test_accuracy'], summary['wall_seconds'], workdir)
  return summary


class EpochLog:
  """metrics.jsonl as the training goes: each epoch's record replaces those
  from it on (a resumed training repeats the epochs after its checkpoint),
  the file rewritten atomically."""

  def __init__(self, path: str):
    self.path = path
    self.records = None

  def add(self, record: dict[str, Any]):
    if self.records is None:
      self.records = self._earlier(record['epoch'])
    self.records.append(record)
    results.write_jsonl(self.path, self.records)

  def _earlier(self, epoch: int) -> list[dict[str, Any]]:
    """The file's records of epochs before `epoch` (none of a fresh run)."""
    try:
      records = results.read_jsonl(self.path)
    except (OSError, ValueError):  # None yet, or torn by an older version.
      return []
    return [r for r in records
            if isinstance(r, dict) and r.get('epoch', epoch) < epoch]


def make_summary(config: ml_collections.ConfigDict, job: experiment.Job,
                 result: train.TrainResult,
                 wall_seconds: float) -> dict[str, Any]:
  """summary.json's fields; `wall_seconds` counts this process's seconds
  and the training's seconds before it resumed."""
  history = result.history
  evaluated = [r['test_accuracy'] for r in history if 'test_accuracy' in r]
  return {
      'dataset': config.data.name, 'model': config.model.name,
      'parameters': models.count_params(result.state.params),
      'train_examples': job.pool_size, 'test_examples': len(job.test[1]),
      'epochs': len(history), 'devices': job.mesh.size,
      'final_test_accuracy': evaluated[-1],
      # The reference reported the best epoch; we report both, labelled.
      'best_test_accuracy': max(evaluated),
      'train_images_per_second': float(np.median(
          [r['images_per_second'] for r in history])),
      'wall_seconds': wall_seconds,
  }


def write_summary(workdir: str, config: ml_collections.ConfigDict,
                  history: list[dict[str, Any]], summary: dict[str, Any]):
  results.write_json(os.path.join(workdir, run_files.SUMMARY_JSON), summary)
  results.write_text(
      os.path.join(workdir, run_files.SUMMARY_MD),
      f'# {config.model.name} on {config.data.name}\n\n'
      + results.markdown_table(history, list(history[-1].keys())) + '\n'
      + results.markdown_table([summary], list(summary.keys())))
