"""The jobs `main.py` runs, chosen by `config.mode`, each holding its workdir.

Each job's `run` holds its workdir's lock (svp_jax.workdir_lock.holds_workdir)
from before it reads anything there until it returns: a second process in
the same workdir stops with one error naming the first.
"""

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
  """Runs the job `config.mode` names (it holds `workdir`'s lock)."""
  validation.check_choice('mode', config.get('mode'), tuple(JOBS))
  return JOBS[config.mode](config, workdir)
