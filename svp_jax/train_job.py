"""The train job (`mode='train'`): one model trained and tested on its dataset.

Writes into the workdir: config.json (resolved config), metrics.jsonl (one
line per epoch), summary.json and summary.md.
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
from svp_jax import results
from svp_jax import run_files
from svp_jax import train
from svp_jax import validation


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains one model on the training split; reports test accuracy."""
  validation.validate_train_config(config)
  start = time.perf_counter()
  job = experiment.load_job(config, workdir, {'model': config})
  learner = job.learners['model']
  logging.info('Training %s on %d %s examples (%d test) over %d device(s).',
               learner.name, job.pool_size, config.data.name,
               len(job.test[1]), job.mesh.size)

  results.write_json(os.path.join(workdir, run_files.CONFIG_JSON),
                     config.to_dict())
  metrics_path = os.path.join(workdir, run_files.METRICS_JSONL)
  if results.is_writer() and os.path.exists(metrics_path):
    os.remove(metrics_path)  # This run's epochs only.
  tc = config.train
  result = train.train_model(
      jax.random.key(config.seed), learner.model, learner.cfg,
      learner.pool_inputs, job.pool[1], np.arange(job.pool_size),
      batch_size=tc.batch_size, lr_schedule=tc.lr_schedule, mesh=job.mesh,
      eval_data=(learner.test_inputs, job.test[1]), eval_every=tc.eval_every,
      eval_batch_size=tc.eval_batch_size,
      on_epoch=lambda r: results.append_jsonl(metrics_path, r))
  summary = make_summary(config, job, result,
                         time.perf_counter() - start)
  write_summary(workdir, config, result.history, summary)
  logging.info('Final test accuracy %.4f (best over evaluated epochs %.4f), '
               '%.0f s in all; results in %s', summary['final_test_accuracy'],
               summary['best_test_accuracy'], summary['wall_seconds'], workdir)
  return summary


def make_summary(config: ml_collections.ConfigDict, job: experiment.Job,
                 result: train.TrainResult,
                 wall_seconds: float) -> dict[str, Any]:
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
