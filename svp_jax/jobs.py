"""The jobs `main.py` runs, chosen by `config.mode`."""

from typing import Any

import ml_collections

from svp_jax import active
from svp_jax import coreset
from svp_jax import labeling
from svp_jax import train_job
from svp_jax import validation

JOBS = {'train': train_job.run, 'active': active.run, 'coreset': coreset.run,
        'precomputed': coreset.run_precomputed, 'label': labeling.run}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs the job `config.mode` names."""
  validation.check_choice('mode', config.get('mode'), tuple(JOBS))
  return JOBS[config.mode](config, workdir)
