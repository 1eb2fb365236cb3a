"""Training and eval throughput (images/s) of the CIFAR pre-activation ResNets.

  python -m benchmarks.throughput --models=preact20,preact56 \
      --out=/tmp/throughput.json

(benchmarks/side_by_side.py times the same steps alternately with PyTorch.)

Random 32x32x3 images (throughput does not depend on pixel values); the real
jitted `train_step` (augmentation included) at batch 128 and `predict_step` at
batch 512, over all devices JAX sees (set XLA_FLAGS=--xla_force_host_platform_device_count=N
to split the CPU into N devices). Each figure is the median of --repeats timed
runs of --steps steps after one warm-up (compile) run.
"""

import json

from absl import app
from absl import flags

from benchmarks import jax_steps
from svp_jax import runtime
from svp_jax import sharding

_MODELS = flags.DEFINE_list('models', 'preact20,preact56,preact110,preact164',
                            'Models to time.')
_STEPS = flags.DEFINE_integer('steps', 5, 'Steps per timed run.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed runs per figure.')
_OUT = flags.DEFINE_string('out', '', 'Write results as JSON here.')


def measure(name, mesh, steps, repeats):
  runners = jax_steps.jax_runners(name, mesh, steps)
  train_s = jax_steps.time_runs(runners['train'], repeats)
  eval_s = jax_steps.time_runs(runners['eval'], repeats)
  return {'model': name, 'devices': mesh.size,
          'parameters': runners['parameters'],
          'train_images_per_second': 128 * steps / train_s,
          'eval_images_per_second': 512 * steps / eval_s}


def main(argv):
  del argv
  runtime.configure()  # As main.py does.
  mesh = sharding.make_mesh()
  rows = []
  for name in _MODELS.value:
    row = measure(name, mesh, _STEPS.value, _REPEATS.value)
    print(json.dumps(row), flush=True)
    rows.append(row)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      json.dump(rows, f, indent=2)


if __name__ == '__main__':
  app.run(main)
