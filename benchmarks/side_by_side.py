r"""JAX and PyTorch train / eval images/s of one model, timed side by side.

  python -m benchmarks.side_by_side --model=preact110 --steps=5 --repeats=5

benchmarks/run_all.py runs this once per model, each in a fresh process, as a
user's run would be: with one process for every model, the heap kept by
svp_jax.cpu.host_memory grew from model to model (20 GB by preact164) and timed
steps stalled on fresh pages (docs/performance.md). In the process the
two libraries still alternate, so a change in machine load hits both. Without
PyTorch (outside .venv-bench) the PyTorch figures are None. The last line
printed is the row as JSON.
"""

import json
import resource
import statistics
import time
from typing import Any, Callable

from absl import app
from absl import flags

from benchmarks import flops
from benchmarks import hardware
from benchmarks import jax_steps
from svp_jax import runtime
from svp_jax import sharding


def minor_page_faults() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


# A call with this many minor page faults grew the heap (the stalls seen
# took 0.2-0.8 million faults for 0.8-3.2 GB): on the benchmark machine,
# where a page touched for the first time costs ~10 us, seconds slower.
FRESH_MEMORY_FAULTS = 100_000
MAX_WARMUP_ROUNDS = 6


def timed_call(run: Callable[[], Any]) -> tuple[float, int]:
  """Seconds and minor page faults of one call of `run`."""
  start, faults = time.perf_counter(), minor_page_faults()
  run()
  return time.perf_counter() - start, minor_page_faults() - faults


def interleaved_seconds(runners: dict[str, Callable[[], Any]], repeats: int,
                        max_warmup_rounds: int = MAX_WARMUP_ROUNDS
                        ) -> tuple[dict[str, list[float]],
                                   dict[str, list[int]], int]:
  """Seconds and minor page faults of `repeats` calls of each runner.

  The runners alternate round by round, and the order flips every round so
  neither always runs first. Warm-up rounds come first: at least two, one in
  each order (they compile, and each switch from one library to the other
  happens once), and more, up to `max_warmup_rounds`, while a round still
  grew the heap, so that the timed calls measure the steady state rather
  than the process reaching its high-water mark. The page faults of each
  timed call show whether one still grew it. Returns the times, the faults
  and the number of warm-up rounds.
  """
  names = list(runners)

  def run_round(r):
    return {name: timed_call(runners[name])
            for name in (names if r % 2 == 0 else names[::-1])}

  warmup = 0
  while warmup < max(2, max_warmup_rounds):
    calls = run_round(warmup)
    warmup += 1
    grew = any(f >= FRESH_MEMORY_FAULTS for _, f in calls.values())
    if warmup >= 2 and not grew:
      break
  times = {name: [] for name in names}
  faults = {name: [] for name in names}
  for r in range(repeats):
    for name, (seconds, count) in run_round(r).items():
      times[name].append(seconds)
      faults[name].append(count)
  return times, faults, warmup


def torch_module():
  """benchmarks.torch_preact, or None where PyTorch is not installed."""
  try:
    from benchmarks import torch_preact  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return torch_preact


def measure(name: str, *, steps: int, repeats: int, train_batch: int,
            eval_batch: int, torch_threads: int = 0) -> dict[str, Any]:
  """The model's row: images/s (median over repeats), GFLOP/s, ratios."""
  torch_preact = torch_module()
  threads = None
  if torch_preact is not None:
    import torch  # pylint: disable=g-import-not-at-top
    if torch_threads:
      torch.set_num_threads(torch_threads)
      threads = torch.get_num_threads()
    else:
      threads = torch_preact.set_threads()
  mesh = sharding.make_mesh()
  runners = {'jax': jax_steps.jax_runners(name, mesh, steps,
                                          train_batch=train_batch,
                                          eval_batch=eval_batch)}
  if torch_preact is not None:
    runners['torch'] = torch_preact.torch_runners(
        name, steps, train_batch=train_batch, eval_batch=eval_batch,
        mean=jax_steps.MEAN, std=jax_steps.STD)
  forward = flops.forward_flops_per_image(runners['jax']['model'])
  train_flops = flops.TRAIN_TO_FORWARD * forward
  row = {'model': name, 'parameters': runners['jax']['parameters'],
         'jax_devices': mesh.size, 'torch_threads': threads,
         'train_batch': train_batch, 'eval_batch': eval_batch, 'steps': steps,
         'repeats': repeats,
         'jax_convolutions': ('oneDNN' if runtime.current().onednn_enabled()
                              else 'XLA'),
         'jax_host_memory_retained': runtime.current().retain_host_memory,
         'forward_gflop_per_image': forward / 1e9,
         'train_gflop_per_image': train_flops / 1e9}
  if 'torch' in runners:
    row['torch_parameters'] = runners['torch']['parameters']
  for mode, batch, per_image in (('train', train_batch, train_flops),
                                 ('eval', eval_batch, forward)):
    times, faults, warmup = interleaved_seconds(
        {lib: r[mode] for lib, r in runners.items()}, repeats)
    row[f'{mode}_warmup_rounds'] = warmup
    for lib in ('jax', 'torch'):
      ips = (batch * steps / statistics.median(times[lib])
             if lib in times else None)
      row[f'{lib}_{mode}_images_per_second'] = ips
      row[f'{lib}_{mode}_gflops'] = ips * per_image / 1e9 if ips else None
      row[f'{lib}_{mode}_seconds'] = times.get(lib)
      row[f'{lib}_{mode}_page_faults'] = faults.get(lib)
    row[f'{mode}_ratio_jax_over_torch'] = hardware.ratio(
        row[f'jax_{mode}_images_per_second'],
        row[f'torch_{mode}_images_per_second'])
  return row


def define_flags() -> None:
  """The command line's flags: defined only when run as a program, since
  run_all, importable alongside this module, defines flags of the same
  names."""
  flags.DEFINE_string('model', 'preact20', 'Model to time.')
  flags.DEFINE_integer('steps', 5, 'Train / eval steps per repetition.')
  flags.DEFINE_integer('repeats', 5, 'Timed repetitions per figure.')
  flags.DEFINE_integer('train_batch', 128, 'Training batch size.')
  flags.DEFINE_integer('eval_batch', 512, 'Eval batch size.')
  flags.DEFINE_integer('torch_threads', 0,
                       'PyTorch threads (0: one per core).')


def main(argv):
  del argv
  runtime.configure()  # As main.py does.
  f = flags.FLAGS
  row = measure(f.model, steps=f.steps, repeats=f.repeats,
                train_batch=f.train_batch, eval_batch=f.eval_batch,
                torch_threads=f.torch_threads)
  print(json.dumps(row))


if __name__ == '__main__':
  define_flags()
  app.run(main)
