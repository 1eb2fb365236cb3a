"""The README's own-data example, end to end on real data, as a user runs it.

  python scripts/own_data_example.py --out=DIR [--formats=digits,reviews] \
      [--methods=least_confidence,random] [--quick]

1. Writes scikit-learn's digits as a PNG folder and Rotten Tomatoes snippets
   as a CSV (scripts/write_own_data_examples.py).
2. For each format and method, runs the labeling loop for 3 rounds (2% at
   random, +8%, +10% of the pool) with `main.py ...:label`, a simulated
   person answering each round from the files' labels
   (scripts/answer_queries.py, with labeling.ignore_file_labels), and
   trains the target on the labels after each round (action=train_target).
   Digits: ResNet8 selects for ResNet20; reviews: fastText for fastText.
3. Runs the simulated active-learning run (mode active) on the same files and
   seed and checks that the loop asked for exactly its selections.

Writes DIR/results.csv and DIR/results.md: per format, method and round, the
labels, the proxy's and the target's test accuracy, and whether the labeled
set equals the simulated run's; plus how long preparing each format took.
Every command is printed before it runs. `--quick` shrinks the trainings to
one epoch (plumbing only).
"""

import argparse
import csv
import os
import re
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# pylint: disable=g-import-not-at-top,wrong-import-position
from svp_jax import labeling
from svp_jax import results

FORMATS = {
    # format: (config, path under DIR, config arguments after the method).
    'digits': ('configs/own_images.py', 'digits', ''),
    # fastText as its own target: VDCNN9 takes half an hour a training on
    # this CPU and learns little from a few thousand snippets
    # (docs/results/rotten_tomatoes_svp_study).
    'reviews': ('configs/own_texts.py', 'rotten_tomatoes.csv',
                ',fasttext_target'),
}
SCHEDULE = ['--config.selection.initial_subset=0.02',
            '--config.selection.rounds=(0.08, 0.1)']
QUICK = ['--config.selector.train.lr_schedule=((1, 0.05),)',
         '--config.target.train.lr_schedule=((1, 0.05),)']
COLUMNS = ('format', 'method', 'round', 'labeled', 'proxy_accuracy',
           'target_accuracy', 'same_as_simulated')


def shell(command: list[str]) -> str:
  """Runs `command` in the repository, echoed; its stderr on failure."""
  print('+', ' '.join(command), flush=True)
  done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                        check=False)
  if done.returncode:
    sys.exit(f'error: {command[1]} failed ({done.returncode}):\n'
             f'{done.stderr[-3000:]}')
  return done.stderr


def main_py(config: str, data_path: str, workdir: str, data_dir: str,
            extra: list[str]) -> str:
  return shell([sys.executable, 'main.py', f'--config={config}',
                f'--config.data.path={data_path}',
                f'--config.data.data_dir={data_dir}', f'--workdir={workdir}',
                *SCHEDULE, *extra])


def loop(config: str, data_path: str, workdir: str, data_dir: str,
         extra: list[str]) -> list[dict[str, object]]:
  """3 answered rounds, the target trained after each; a row per round."""
  label = [*extra, '--config.labeling.ignore_file_labels=True']
  config = f'{config},label'  # `config` names its method: FILE:METHOD.
  main_py(config, data_path, workdir, data_dir, label)  # Asks round 0.
  targets = []
  for _ in range(3):
    shell([sys.executable, 'scripts/answer_queries.py',
           f'--workdir={workdir}'])
    # Merges the answers, then asks the next round (none after round 2).
    main_py(config, data_path, workdir, data_dir, label)
    log = main_py(config, data_path, workdir, data_dir,
                  [*label, '--config.labeling.action=train_target'])
    found = re.search(r'trained on (\d+) labels: test accuracy ([\d.]+)',
                      log)
    targets.append({'labeled': int(found.group(1)),
                    'target_accuracy': float(found.group(2))})
  rounds = results.read_csv(os.path.join(workdir, labeling.ROUNDS_CSV))
  return [{'round': int(r['round']), 'proxy_accuracy': r['selector_accuracy'],
           **t} for r, t in zip(rounds, targets)]


def asked_sets(workdir: str) -> list[list[int]]:
  """The loop's labeled set after each round (cumulative, sorted)."""
  asked = [experiment_index(labeling.asked_path(workdir, r))
           for r in labeling.query_rounds(workdir)]
  return [sorted(np.concatenate(asked[:r + 1]).tolist())
          for r in range(len(asked))]


def simulated_sets(workdir: str) -> list[list[int]]:
  """The simulated run's labeled set after each round."""
  summary = results.read_json(os.path.join(workdir, 'summary.json'))
  sizes = [int(r['labeled']) for r in summary['rounds']]
  paths = [os.path.join(workdir, f'initial_subset_{sizes[0]}.index')] + [
      os.path.join(workdir, 'proxy', str(n), f'labeled_{n}.index')
      for n in sizes[1:]]
  return [sorted(experiment_index(p).tolist()) for p in paths]


def experiment_index(path: str) -> np.ndarray:
  return np.loadtxt(path, dtype=np.int64, ndmin=1)


def prepare_seconds(data_path: str, data_dir: str, config: str,
                    workdir: str) -> float:
  """Seconds main.py's data preparation logged for these files."""
  log = main_py(f'{config}:label', data_path, workdir, data_dir,
                ['--config.labeling.action=export'])
  found = re.search(r'Prepared .* in ([\d.]+) s', log)
  return float(found.group(1)) if found else float('nan')


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True)
  parser.add_argument('--formats', default=','.join(FORMATS))
  parser.add_argument('--methods', default='least_confidence,random')
  parser.add_argument('--quick', action='store_true')
  args = parser.parse_args()
  out = os.path.abspath(args.out)
  shell([sys.executable, 'scripts/write_own_data_examples.py',
         f'--out={out}'])
  extra = QUICK if args.quick else []
  rows, prepared = [], {}
  for name in args.formats.split(','):
    config, relative, arguments = FORMATS[name]
    data_path = os.path.join(out, relative)
    data_dir = os.path.join(out, 'tfds')
    prepared[name] = prepare_seconds(data_path, data_dir, config,
                                     os.path.join(out, 'runs', name))
    for method in args.methods.split(','):
      start = time.perf_counter()
      workdir = os.path.join(out, 'runs', f'{name}_{method}')
      config_method = f'{config}:{method}{arguments}'
      per_round = loop(config_method, data_path, f'{workdir}_loop', data_dir,
                       extra)
      main_py(config_method, data_path, f'{workdir}_simulated', data_dir,
              extra)
      same = [a == b for a, b in zip(asked_sets(f'{workdir}_loop'),
                                     simulated_sets(f'{workdir}_simulated'))]
      for row, equal in zip(per_round, same):
        rows.append({'format': name, 'method': method, **row,
                     'same_as_simulated': equal})
      print(f'{name} {method}: {time.perf_counter() - start:.0f} s',
            flush=True)
  results.write_csv(os.path.join(out, 'results.csv'), rows, COLUMNS)
  results.write_text(
      os.path.join(out, 'results.md'),
      results.markdown_table(rows, COLUMNS) + '\nPreparing the files (s): '
      + ', '.join(f'{k} {v:.1f}' for k, v in prepared.items()) + '\n')
  print(open(os.path.join(out, 'results.md'), encoding='utf-8').read())
  if not all(r['same_as_simulated'] for r in rows):
    sys.exit('error: a loop asked for other examples than the simulated run')


if __name__ == '__main__':
  main()
