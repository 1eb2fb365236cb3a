"""A simulated person: answers a labeling loop's open queries from known labels.

  python scripts/answer_queries.py --workdir=WORKDIR [--skip=0.0] [--seed=0]

Fills in the answer column of the newest query file of the labeling run in
WORKDIR (svp_jax.labeling) with the labels its files already hold (run with
--config.labeling.ignore_file_labels=True, the loop asks about them all).
The run's config.json says where the files are. `--skip` leaves that share
of the queries blank (a person passing on them), drawn with `--seed`.
Answers equal to the known labels make the loop select exactly what the
simulated run (mode active) selects on the same data and seed.
"""

import argparse
import csv
import os
import sys

import ml_collections
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from svp_jax import data
from svp_jax import labeling
from svp_jax import results
from svp_jax import run_files


def known_labels(config: ml_collections.ConfigDict
                 ) -> tuple[np.ndarray, tuple[str, ...]]:
  """The pool's labels as the run's files hold them, and the class names."""
  info = data.configured_info(config.data, config.seed)
  _, labels = data.load_configured_split(
      config.data, info.train_split, config.data.max_train_examples,
      config.seed)
  return labels, info.class_names


def answer(workdir: str, skip: float = 0.0, seed: int = 0) -> str:
  """Answers the newest query file of `workdir`; returns its path."""
  config = ml_collections.ConfigDict(
      results.read_json(os.path.join(workdir, run_files.CONFIG_JSON)))
  rounds = labeling.query_rounds(workdir)
  if not rounds:
    raise SystemExit(f'error: {workdir} has no queries yet')
  path = labeling.query_path(workdir, rounds[-1])
  labels, names = known_labels(config)
  with open(path, encoding='utf-8', newline='') as f:
    rows = list(csv.DictReader(f))
  skipped = np.random.default_rng(seed).random(len(rows)) < skip
  for row, blank in zip(rows, skipped):
    truth = labels[int(row['id'])]
    if truth == data.UNLABELED:
      raise SystemExit(f'error: id {row["id"]} has no known label')
    row['answer'] = '' if blank else names[truth]
  labeling.write_rows(path, rows, labeling.QUERY_COLUMNS)
  return path


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--skip', type=float, default=0.0)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  print(f'answered {answer(args.workdir, args.skip, args.seed)}')


if __name__ == '__main__':
  main()
