"""Per-class counts of each method's core-set, as a Markdown table.

  python scripts/coreset_class_balance.py WORKDIR [WORKDIR ...]

Reads each core-set workdir's <method>/coreset_<n>.index and the pool's
labels (config.json names the dataset), and prints one row per run and
method: how many examples of each class the subset kept.
"""

import glob
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
from svp_jax import data
from svp_jax import results


def main(workdirs):
  labels_of = {}
  rows = []
  for workdir in workdirs:
    config = results.read_json(os.path.join(workdir, 'config.json'))
    section = config['data']
    key = (section['name'], section['data_dir'], section['max_train_examples'])
    if key not in labels_of:
      _, labels = data.load_split(section['name'], 'train',
                                  data_dir=section['data_dir'] or None,
                                  manual_dir=section['manual_dir'] or None)
      limit = section['max_train_examples']
      labels_of[key] = labels[:limit] if limit else labels
    labels = labels_of[key]
    num_classes = int(labels.max()) + 1
    for method in config['coreset']['methods']:
      for path in glob.glob(os.path.join(workdir, method, 'coreset_*.index')):
        kept = np.loadtxt(path, dtype=np.int64, ndmin=1)
        counts = np.bincount(labels[kept], minlength=num_classes)
        rows.append({'run': os.path.basename(os.path.normpath(workdir)),
                     'method': method,
                     **{f'class {c}': int(n) for c, n in enumerate(counts)},
                     'min/max': f'{counts.min() / counts.max():.2f}'})
  print(results.markdown_table(rows, list(rows[0])))


if __name__ == '__main__':
  main(sys.argv[1:])
