"""docs/from_pytorch.md stays true: commands, flag tables, columns, names.

The page maps the PyTorch reference (stanford-futuredata/selection-via-proxy,
release 0.1.0) to svp_jax. This test reads it and checks every claim about
svp_jax that can be checked without training anything:

* every `python main.py ...` line parses exactly as main.py parses it
  (ml_collections config flags, locked config) and passes the validator of
  its mode (train, active, coreset, precomputed);
* every pair of a reference `svp.cifar`, `svp.imagenet` or `svp.amazon`
  command (`active|coreset|train`, or `fasttext` followed by the run that
  trains the target on its selections) and an svp_jax command runs the same
  experiment: the same models with the same recipe (label smoothing, and on
  ImageNet the batch sizes, learning rates scaled to them and the crop
  size, included), dataset and method, and the same labeled-set sizes
  (active), kept examples and k-centers seeds (coreset) or run directory and
  sizes (`--precomputed-selection`). The reference side is worked out from
  its CLI defaults, REFERENCE_DEFAULTS, IMAGENET_DEFAULTS, AMAZON_DEFAULTS
  and FASTTEXT_DEFAULTS below, which the page's tables must agree with;
* every reference command has an svp_jax counterpart (none is "not yet");
* the tables marked `<!-- check: CONFIG -->` give each config key's default
  correctly, list every reference flag and every config key; the Amazon
  defaults and fastText options tables give the reference's defaults and
  svp_jax's correctly;
* the CSV columns equal svp_jax.active's, the index files the page says
  precomputed runs read (and do not read) are the ones svp_jax.coreset finds,
  and the baseline rule the page states is svp_jax.active's;
* files, modules, functions and links named on the page exist.
"""

import ast
import dataclasses
import functools
import importlib
import os
import re
import shlex
import sys

from absl import flags
from ml_collections import config_flags
import numpy as np
import pytest

from svp_jax import active
from svp_jax import coreset
from svp_jax import data
from svp_jax import experiment
from svp_jax import model_registry
from svp_jax import run_files
from svp_jax import text_models
from svp_jax import validation

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)  # config files import `configs.common`.
DOC_PATH = os.path.join(REPO, 'docs', 'from_pytorch.md')
with open(DOC_PATH) as _f:
  DOC = _f.read()

# The pool is the whole training split (no dev split in svp_jax yet).
POOL_SIZES = {'cifar10': 50_000, 'cifar100': 50_000, 'fashion_mnist': 60_000,
              'amazon_review_polarity': 3_600_000,
              'amazon_review_full': 3_000_000, 'imagenet2012': 1_281_167}

# The reference's `svp.cifar` CLI (svp/cifar/__main__.py, svp/common/cli.py,
# release 0.1.0): every long option of `train`, `active` and `coreset`, and
# the default used when it is absent. `--proxy-X` options default to `--X`;
# options without an entry here default to another option or to the machine.
TRAIN_FLAGS = (
    '--run-dir', '--datasets-dir', '--dataset', '--augmentation',
    '--validation', '--shuffle', '--arch', '--optimizer', '--epochs',
    '--learning-rate', '--momentum', '--weight-decay', '--batch-size',
    '--eval-batch-size', '--cuda', '--device', '--num-workers',
    '--eval-num-workers', '--seed', '--checkpoint', '--track-test-acc')
ACTIVE_FLAGS = TRAIN_FLAGS + (
    '--proxy-arch', '--proxy-optimizer', '--proxy-epochs',
    '--proxy-learning-rate', '--proxy-momentum', '--proxy-weight-decay',
    '--proxy-batch-size', '--proxy-eval-batch-size', '--initial-subset',
    '--round', '--selection-method', '--precomputed-selection',
    '--train-target', '--eval-target-at')
PROXY_FLAGS = tuple(f for f in ACTIVE_FLAGS if f.startswith('--proxy-'))
CORESET_FLAGS = TRAIN_FLAGS + PROXY_FLAGS + (
    '--subset', '--selection-method', '--precomputed-selection',
    '--train-target')
# A `--precomputed-selection` run of `active` or `coreset` uses the target's
# options and these; the proxy and selection options do nothing.
PRECOMPUTED_FLAGS = TRAIN_FLAGS + (
    '--precomputed-selection', '--train-target', '--eval-target-at')
SUBCOMMAND_FLAGS = {'train': TRAIN_FLAGS, 'active': ACTIVE_FLAGS,
                    'coreset': CORESET_FLAGS}
# The flags a table must list, by the mode of the config it is checked against.
MODE_FLAGS = {'train': TRAIN_FLAGS, 'active': ACTIVE_FLAGS,
              'coreset': CORESET_FLAGS, 'precomputed': PRECOMPUTED_FLAGS}
# The reference's k-centers core-set starts from this many random points and
# picks `--subset` minus them, so the subset counts its seeds
# (svp/cifar/coreset.py since its commit 348f90a, "Update budget after
# initial subset of points is selected").
REFERENCE_KCENTERS_SEEDS = 1000
REFERENCE_DEFAULTS = {
    '--run-dir': './run', '--datasets-dir': './data', '--dataset': 'cifar10',
    '--augmentation': True, '--validation': 0, '--shuffle': True,
    '--arch': 'preact20', '--optimizer': 'sgd', '--epochs': (1, 90, 45, 45),
    '--learning-rate': (0.01, 0.1, 0.01, 0.001), '--momentum': 0.9,
    '--weight-decay': 5e-4, '--batch-size': 128, '--cuda': True,
    '--num-workers': 0, '--seed': None, '--checkpoint': 'best',
    '--track-test-acc': True, '--initial-subset': 1000,
    '--round': (4000, 5000, 5000, 5000, 5000),
    '--selection-method': 'least_confidence',  # Also `coreset`'s default.
    '--precomputed-selection': None, '--train-target': True,
    '--eval-target-at': (), '--subset': 10_000,
}
BOOLEAN_FLAGS = ('--augmentation', '--shuffle', '--cuda', '--train-target',
                 '--track-test-acc')
REPEATED_FLAGS = ('--epochs', '--learning-rate', '--proxy-epochs',
                  '--proxy-learning-rate', '--round', '--eval-target-at',
                  '--device')
# Flags that only tune PyTorch's machinery or evaluation speed: a command
# pair may use them freely. Any flag neither here nor compared below (for
# example --validation or --optimizer) makes the pair fail.
IGNORED_FLAGS = ('--run-dir', '--datasets-dir', '--num-workers',
                 '--eval-num-workers', '--device', '--checkpoint',
                 '--eval-batch-size', '--proxy-eval-batch-size', '--cuda',
                 '--track-test-acc')
COMPARED_FLAGS = (
    '--dataset', '--augmentation', '--arch', '--epochs', '--learning-rate',
    '--momentum', '--weight-decay', '--batch-size', '--seed',
    '--proxy-arch', '--proxy-epochs', '--proxy-learning-rate',
    '--proxy-momentum', '--proxy-weight-decay', '--proxy-batch-size',
    '--initial-subset', '--round', '--selection-method', '--eval-target-at',
    '--subset', '--precomputed-selection', '--train-target')

# The reference's `svp.amazon` CLI (svp/amazon/__main__.py, release 0.1.0):
# `train`, `active` and `coreset` take svp.cifar's options but
# --augmentation (text is never augmented), with these defaults (recipe and
# schedule as in docs/reference.md: 15 epochs halving the rate every 3, weight
# decay 1e-4; 72,000 then +288,000, +360,000 x 4).
AMAZON_SUBCOMMAND_FLAGS = {
    name: tuple(f for f in options if f != '--augmentation')
    for name, options in SUBCOMMAND_FLAGS.items()}
AMAZON_DEFAULTS = {
    **REFERENCE_DEFAULTS,
    '--dataset': 'amazon_review_polarity', '--arch': 'vdcnn9-maxpool',
    '--epochs': (3, 3, 3, 3, 3),
    '--learning-rate': (0.01, 0.005, 0.0025, 0.00125, 0.000625),
    '--weight-decay': 1e-4, '--initial-subset': 72_000,
    '--round': (288_000, 360_000, 360_000, 360_000, 360_000),
    '--subset': 1_800_000,
    '--augmentation': False,  # Not an option: VDCNN's input is never augmented.
}
# VDCNN reads this many characters of each review (docs/reference.md).
REFERENCE_DOCUMENT_LENGTH = 1014
# `svp.amazon fasttext EXECUTABLE ...` runs the fastText v0.1.0 program to
# select (svp/amazon/fasttext.py): increasing --size values are an active
# learning schedule, two decreasing ones (the pool, then the subset) a
# core-set. A `--precomputed-selection` run of `active` or `coreset` then
# trains the target on what it stored.
FASTTEXT_FLAGS = (
    '--run-dir', '--datasets-dir', '--dataset', '--dim', '--ngrams',
    '--min-count', '--bucket', '--learning-rate', '--epochs', '--size',
    '--selection-method', '--threads', '--seed', '--track-test-acc')
FASTTEXT_DEFAULTS = {
    '--run-dir': './run', '--datasets-dir': './data',
    '--dataset': 'amazon_review_polarity', '--dim': 10, '--ngrams': 2,
    '--min-count': 1, '--bucket': 10_000_000, '--learning-rate': 0.05,
    '--epochs': 5,
    '--size': (72_000, 360_000, 720_000, 1_080_000, 1_440_000, 1_800_000),
    '--selection-method': 'entropy', '--threads': 4, '--seed': None,
    '--track-test-acc': True,
}
# --threads: the fastText program's lock-free threads, svp_jax's batch of 16
# (the page, section 4); the rest as IGNORED_FLAGS.
FASTTEXT_IGNORED = ('--run-dir', '--datasets-dir', '--threads',
                    '--track-test-acc')
FASTTEXT_COMPARED = tuple(f for f in FASTTEXT_FLAGS
                          if f not in FASTTEXT_IGNORED)
# The README's shell variable for the newest fasttext run directory.
FASTTEXT_RUN_DIR = '$fasttext_path'
FASTTEXT_CONFIG = 'configs/amazon_review_polarity_fasttext_proxy.py'


# The reference's `svp.imagenet` CLI (svp/imagenet/__main__.py, release
# 0.1.0): svp.cifar's options, plus --scale-learning-rates (every rate x
# batch / 256, on by default), --label-smoothing and mixed precision
# (--fp16, --loss-scale), each with its --proxy- twin; the recipe of
# docs/reference.md (100 epochs with 5 of warm-up, batch 256, wd 1e-4, label
# smoothing 0.1) and the paper's schedule (25,623 then +102,493,
# +128,117 x 4) as defaults.
IMAGENET_RECIPE_FLAGS = ('--scale-learning-rates', '--label-smoothing',
                         '--fp16', '--loss-scale')
IMAGENET_PROXY_FLAGS = tuple('--proxy-' + f[2:] for f in IMAGENET_RECIPE_FLAGS)
IMAGENET_SUBCOMMAND_FLAGS = {
    'train': TRAIN_FLAGS + IMAGENET_RECIPE_FLAGS,
    'active': ACTIVE_FLAGS + IMAGENET_RECIPE_FLAGS + IMAGENET_PROXY_FLAGS,
    'coreset': CORESET_FLAGS + IMAGENET_RECIPE_FLAGS + IMAGENET_PROXY_FLAGS,
}
IMAGENET_DEFAULTS = {
    **REFERENCE_DEFAULTS,
    '--dataset': 'imagenet', '--arch': 'resnet18',
    '--epochs': (1, 1, 1, 1, 1, 25, 30, 20, 20),
    '--learning-rate': (0.0167, 0.0333, 0.05, 0.0667, 0.0833, 0.1, 0.01,
                        0.001, 0.0001),
    '--scale-learning-rates': True, '--weight-decay': 1e-4,
    '--batch-size': 256, '--label-smoothing': 0.1, '--fp16': False,
    '--loss-scale': 256.0, '--initial-subset': 25_623,
    '--round': (102_493, 128_117, 128_117, 128_117, 128_117),
    '--subset': 512_466,
    # Their own defaults, not --scale-learning-rates' and --fp16's.
    '--proxy-scale-learning-rates': True, '--proxy-fp16': False,
}
# The reference's batch size its ImageNet learning rates are written for.
REFERENCE_IMAGENET_LR_BATCH = 256
# Its crops (random-resized for training, center for testing) are 224 pixels.
REFERENCE_IMAGENET_CROP = 224
# Mixed precision has no counterpart: svp_jax trains in float32 (the page
# says so), so a pair may use these as it may --num-workers.
IMAGENET_IGNORED = IGNORED_FLAGS + ('--fp16', '--proxy-fp16', '--loss-scale',
                                    '--proxy-loss-scale')
IMAGENET_COMPARED = COMPARED_FLAGS + (
    '--scale-learning-rates', '--label-smoothing',
    '--proxy-scale-learning-rates', '--proxy-label-smoothing')
IMAGENET_BOOLEANS = BOOLEAN_FLAGS + (
    '--scale-learning-rates', '--fp16', '--proxy-scale-learning-rates',
    '--proxy-fp16')
# svp_jax's names for the reference's datasets, where they differ.
SVP_JAX_DATASETS = {'imagenet': 'imagenet2012'}


@dataclasses.dataclass(frozen=True)
class Cli:
  """One reference subcommand: its options and how to read them."""
  flags: tuple[str, ...]
  defaults: dict[str, object]
  booleans: tuple[str, ...]
  repeated: tuple[str, ...]
  compared: tuple[str, ...]
  ignored: tuple[str, ...]


CLIS = {
    **{('svp.cifar', name): Cli(options, REFERENCE_DEFAULTS, BOOLEAN_FLAGS,
                                REPEATED_FLAGS, COMPARED_FLAGS, IGNORED_FLAGS)
       for name, options in SUBCOMMAND_FLAGS.items()},
    **{('svp.amazon', name): Cli(options, AMAZON_DEFAULTS, BOOLEAN_FLAGS,
                                 REPEATED_FLAGS, COMPARED_FLAGS, IGNORED_FLAGS)
       for name, options in AMAZON_SUBCOMMAND_FLAGS.items()},
    ('svp.amazon', 'fasttext'): Cli(
        FASTTEXT_FLAGS, FASTTEXT_DEFAULTS, ('--track-test-acc',),
        ('--size',), FASTTEXT_COMPARED, FASTTEXT_IGNORED),
    **{('svp.imagenet', name): Cli(options, IMAGENET_DEFAULTS,
                                   IMAGENET_BOOLEANS, REPEATED_FLAGS,
                                   IMAGENET_COMPARED, IMAGENET_IGNORED)
       for name, options in IMAGENET_SUBCOMMAND_FLAGS.items()},
}
PORTED_MODULES = ('svp.cifar', 'svp.amazon', 'svp.imagenet')

# ml_collections loads config files with importlib's deprecated load_module.
pytestmark = pytest.mark.filterwarnings(
    'ignore:the load_module:DeprecationWarning')
KEY_RE = re.compile(r'^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$')
IDENTIFIER_RE = re.compile(r'^[A-Za-z_]\w*$')
PATH_RE = re.compile(r'^[\w./-]+$')


# ----------------------------------------------------------------------------
# Reading the page.


def fenced_blocks(language):
  return re.findall(r'^```' + language + r'\n(.*?)^```', DOC, re.M | re.S)


def logical_lines(block):
  """Lines of a shell block with `\\` continuations joined."""
  lines, current = [], ''
  for raw in block.splitlines():
    line = raw.rstrip()
    if line.endswith('\\'):
      current += line[:-1] + ' '
      continue
    current = (current + line).strip()
    if current:
      lines.append(' '.join(current.split()))
    current = ''
  return lines


@dataclasses.dataclass
class CommandBlock:
  reference: list[str]
  svp_jax: list[str]
  not_yet: tuple[int, ...] | None  # Issue numbers, if marked "not yet".


def command_blocks():
  blocks = []
  for block in fenced_blocks('bash'):
    refs, ours, not_yet = [], [], None
    for line in logical_lines(block):
      if line.startswith('python -m svp.'):
        refs.append(line)
      elif line.startswith('python main.py'):
        ours.append(line)
      elif match := re.match(r'# svp_jax: not yet \((issues? [^)]*)\)', line):
        not_yet = tuple(int(n) for n in re.findall(r'\d+', match.group(1)))
    if refs or ours:
      blocks.append(CommandBlock(refs, ours, not_yet))
  return blocks


BLOCKS = command_blocks()
SVP_COMMANDS = [c for b in BLOCKS for c in b.svp_jax]
# (the block's reference commands, one svp_jax command), for every svp_jax
# command of a block with reference commands.
PAIRS = [(tuple(b.reference), c) for b in BLOCKS
         if b.reference and b.svp_jax for c in b.svp_jax]


def backticked(cell):
  return re.findall(r'`([^`]+)`', cell)


def literal(text):
  try:
    return True, ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return False, None


def marked_tables():
  """{marker: [row cells, ...]} for every table after `<!-- check: X -->`."""
  tables = {}
  for match in re.finditer(r'<!-- check: (\S+) -->\n((?:\|.*\n)+)', DOC):
    lines = match.group(2).strip().splitlines()[2:]  # Skip header, rule.
    rows = [[c.strip() for c in line.strip().strip('|').split('|')]
            for line in lines]
    tables.setdefault(match.group(1), []).extend(rows)
  return tables


TABLES = marked_tables()
CONFIG_TABLES = {k: v for k, v in TABLES.items() if k.startswith('configs/')}


@dataclasses.dataclass
class FlagRow:
  flags: list[str]
  reference_defaults: list[str]
  keys: list[str]
  default: str | None


def flag_rows(marker):
  rows = []
  for cells in CONFIG_TABLES[marker]:
    flag_cell, ref_cell, key_cell, default_cell = cells[:4]
    defaults = backticked(default_cell)
    rows.append(FlagRow(
        flags=[t for t in backticked(flag_cell)
               if t.startswith('--') and not t.startswith('--no-')],
        reference_defaults=backticked(ref_cell),
        keys=[t for t in backticked(key_cell) if KEY_RE.match(t)],
        default=defaults[0] if len(defaults) == 1 else None))
  return rows


# ----------------------------------------------------------------------------
# Loading configs the way main.py does.


def load_command(command):
  """The config of a `python main.py ...` line, as main.py sees it."""
  argv = shlex.split(command)
  assert argv[:2] == ['python', 'main.py'], command
  argv = ['main.py'] + [
      '--config=' + os.path.join(REPO, a[len('--config='):])
      if a.startswith('--config=') else a for a in argv[2:]]
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, 'config file',
                                  flag_values=flag_values, lock_config=True,
                                  sys_argv=argv)
  flags.DEFINE_string('workdir', None, 'workdir', flag_values=flag_values)
  flag_values(argv)
  return flag_values.config


@functools.cache
def load_config(spec):
  return load_command(f'python main.py --config={spec}')


def normalise(value):
  if isinstance(value, (list, tuple)):
    return tuple(normalise(v) for v in value)
  return value


def get_key(config, key):
  return functools.reduce(lambda c, part: c[part], key.split('.'), config)


def leaf_keys(tree, prefix=''):
  for name, value in tree.items():
    key = f'{prefix}{name}'
    if isinstance(value, dict):
      yield from leaf_keys(value, key + '.')
    else:
      yield key


VALIDATORS = {
    'train': validation.validate_train_config,
    'active': validation.validate_active_config,
    'coreset': validation.validate_coreset_config,
    'precomputed': validation.validate_precomputed_config,
}


def validate(config):
  VALIDATORS[config.mode](config)


# ----------------------------------------------------------------------------
# What an experiment is, on either side.


def learner(model, lr_schedule, batch_size, momentum, weight_decay, augment,
            label_smoothing, **model_options):
  """A model and its recipe; `model_options`: a text model's input size."""
  return {'model': model,
          'lr_schedule': tuple((int(e), float(lr)) for e, lr in lr_schedule),
          'batch_size': int(batch_size), 'momentum': float(momentum),
          'weight_decay': float(weight_decay), 'augment': bool(augment),
          'label_smoothing': float(label_smoothing), **model_options}


def fasttext_learner(lr_schedule, momentum, weight_decay, augment, *,
                     num_buckets, dim, ngrams, min_count, every_ngram):
  """fastText and its recipe.

  No batch size: the fastText program updates after each document, svp_jax
  after 16 whose losses it sums, so that each document moves the weights by
  the learning rate as in the program (a difference the page states).
  """
  return {'model': 'fasttext',
          'lr_schedule': tuple((int(e), float(lr)) for e, lr in lr_schedule),
          'momentum': float(momentum), 'weight_decay': float(weight_decay),
          'augment': bool(augment), 'num_buckets': int(num_buckets),
          'dim': int(dim), 'ngrams': int(ngrams), 'min_count': int(min_count),
          'every_ngram': bool(every_ngram)}


@dataclasses.dataclass
class Reference:
  """A parsed `python -m svp.X SUBCOMMAND ...` line."""
  module: str
  subcommand: str
  options: dict[str, object]
  arguments: list[str]  # Positional: `fasttext`'s EXECUTABLE.

  @property
  def cli(self):
    return CLIS[self.module, self.subcommand]

  def get(self, flag, cast):
    """The flag's value as the reference resolves it, defaults included."""
    if flag in self.options:
      value = self.options[flag]
      if flag in self.cli.repeated:
        return tuple(cast(v) for v in value)
      return cast(value) if cast is not bool else value
    if flag.startswith('--proxy-') and flag not in self.cli.defaults:
      return self.get('--' + flag[len('--proxy-'):], cast)
    return self.cli.defaults[flag]


def parse_reference(command):
  """The Reference of a `python -m svp.cifar|amazon|imagenet ...` line."""
  argv = shlex.split(command)
  assert argv[:2] == ['python', '-m'], command
  module, subcommand, args = argv[2], argv[3], argv[4:]
  assert module in PORTED_MODULES, f'{command!r}: not in svp_jax yet'
  assert (module, subcommand) in CLIS, command
  cli = CLIS[module, subcommand]
  options, arguments, i = {}, [], 0
  while i < len(args):
    arg = args[i]
    if not arg.startswith('-'):
      assert subcommand == 'fasttext' and not arguments, (
          f'{arg} in {command!r}: an argument the reference does not take')
      arguments.append(arg)
      i += 1
      continue
    name = '--' + arg[5:] if arg.startswith('--no-') else arg
    assert name in cli.flags, (
        f'{arg} in {command!r}: not an option of the reference\'s '
        f'`{module} {subcommand}`')
    if name in cli.booleans:
      options[name] = not arg.startswith('--no-')
      i += 1
      continue
    assert arg in cli.compared + cli.ignored, (
        f'{arg} in {command!r}: svp_jax has no counterpart, so this command '
        f'cannot be paired with an svp_jax command')
    if arg in cli.repeated:
      options.setdefault(arg, []).append(args[i + 1])
    else:
      options[arg] = args[i + 1]
    i += 2
  assert (subcommand == 'fasttext') == bool(arguments), (
      f'{command!r}: `fasttext` takes the program\'s path, nothing else does')
  return Reference(module, subcommand, options, arguments)


def reference_role(ref, prefix):
  """The target (prefix '--') or proxy ('--proxy-') of a reference command."""
  model_options = ({'document_length': REFERENCE_DOCUMENT_LENGTH}
                   if ref.module == 'svp.amazon' else {})
  batch_size = ref.get(prefix + 'batch-size', int)
  rates = ref.get(prefix + 'learning-rate', float)
  epochs = ref.get(prefix + 'epochs', int)
  assert len(epochs) == len(rates), (
      f'{prefix}epochs and {prefix}learning-rate differ in length')
  label_smoothing = 0.0  # svp.cifar and svp.amazon have none.
  if ref.module == 'svp.imagenet':
    label_smoothing = ref.get(prefix + 'label-smoothing', float)
    if ref.get(prefix + 'scale-learning-rates', bool):
      # As the reference: the rates times (batch size / 256).
      rates = tuple((np.array(rates) * (
          batch_size / REFERENCE_IMAGENET_LR_BATCH)).tolist())
  return learner(ref.get(prefix + 'arch', str), zip(epochs, rates),
                 batch_size, ref.get(prefix + 'momentum', float),
                 ref.get(prefix + 'weight-decay', float),
                 ref.get('--augmentation', bool), label_smoothing,
                 **model_options)


def reference_experiment(ref):
  """What the reference runs for one command, from its CLI defaults."""
  assert ref.subcommand != 'fasttext', (
      'a fasttext run pairs only with the run that trains its target')
  seed = ref.get('--seed', int)
  dataset = ref.get('--dataset', str)
  dataset = SVP_JAX_DATASETS.get(dataset, dataset)
  train_target = ref.get('--train-target', bool)
  if ref.subcommand == 'train':
    return {'mode': 'train', 'dataset': dataset,
            'model': reference_role(ref, '--'), 'seed': seed}
  target = reference_role(ref, '--')
  run_dir = ref.get('--precomputed-selection', str)
  if run_dir is not None:
    # Both commands then train only the target, on the stored selections
    # (`coreset`: its one subset; `active`: those at --eval-target-at).
    assert train_target, (
        f'{ref}: the reference refuses --no-train-target with '
        '--precomputed-selection')
    sizes = (ref.get('--eval-target-at', int) if ref.subcommand == 'active'
             else ())
    return {'mode': 'precomputed', 'dataset': dataset, 'target': target,
            'run_dir': run_dir, 'sizes': frozenset(sizes) or None,
            'seed': seed}
  selector = reference_role(ref, '--proxy-')
  method = ref.get('--selection-method', str)
  if ref.subcommand == 'coreset':
    seeds = REFERENCE_KCENTERS_SEEDS if method == 'kcenters' else 0
    return {'mode': 'coreset', 'dataset': dataset, 'selector': selector,
            'target': target, 'method': method,
            'kept': ref.get('--subset', int), 'seeds': seeds,
            'train_target': train_target, 'seed': seed}
  sizes = (ref.get('--initial-subset', int),) + ref.get('--round', int)
  different = target != selector
  cumulative = tuple(np.cumsum(sizes)[1:].tolist())
  # The reference trains the target only when the models differ; otherwise
  # its target is the proxy, trained at every size.
  if not train_target:
    target_sizes = frozenset()
  elif different:
    target_sizes = frozenset(ref.get('--eval-target-at', int) or cumulative)
  else:
    target_sizes = None
  return {'mode': 'active', 'dataset': dataset,
          'selector': selector, 'target': target, 'different': different,
          'method': method, 'sizes': sizes, 'train_target': train_target,
          'target_sizes': target_sizes, 'seed': seed}


def fasttext_pipeline(fasttext, then):
  """What `fasttext ...` then `active|coreset --precomputed-selection` run.

  The fastText program selects (active learning for increasing --size
  values, a core-set for two decreasing ones) and stores its selections; the
  second command trains the target on them. svp_jax does both in one run.
  """
  assert fasttext.subcommand == 'fasttext', 'a fasttext run comes first'
  assert then.get('--precomputed-selection', str) == FASTTEXT_RUN_DIR, (
      'the second command trains the target on the fasttext run\'s '
      f'selections: --precomputed-selection {FASTTEXT_RUN_DIR}')
  assert then.get('--train-target', bool)
  dataset = fasttext.get('--dataset', str)
  assert then.get('--dataset', str) == dataset
  # svp_jax has one seed for the selection and the target.
  seeds = {fasttext.get('--seed', int), then.get('--seed', int)} - {None}
  assert len(seeds) <= 1, 'different seeds for fastText and the target'
  seed = seeds.pop() if seeds else None
  schedule = ((fasttext.get('--epochs', int),
               fasttext.get('--learning-rate', float)),)
  # The program: plain SGD, no augmentation, every n-gram of a document.
  selector = fasttext_learner(
      schedule, momentum=0.0, weight_decay=0.0, augment=False,
      num_buckets=fasttext.get('--bucket', int),
      dim=fasttext.get('--dim', int), ngrams=fasttext.get('--ngrams', int),
      min_count=fasttext.get('--min-count', int), every_ngram=True)
  target = reference_role(then, '--')
  method = fasttext.get('--selection-method', str)
  sizes = fasttext.get('--size', int)
  steps = np.diff(sizes)
  if (steps > 0).all():
    assert then.subcommand == 'active', 'increasing sizes: active learning'
    # Without --eval-target-at, a target on every stored labeled set.
    return {'mode': 'active', 'dataset': dataset, 'selector': selector,
            'target': target, 'different': True, 'method': method,
            'sizes': (sizes[0],) + tuple(steps.tolist()),
            'train_target': True,
            'target_sizes': frozenset(then.get('--eval-target-at', int)
                                      or sizes),
            'seed': seed}
  # A core-set: fastText trains on a random sizes[0] of the pool (so all of
  # it only if sizes[0] is the pool) and keeps the best sizes[1].
  assert then.subcommand == 'coreset', 'decreasing sizes: a core-set'
  assert len(sizes) == 2 and sizes[0] == POOL_SIZES[dataset], (
      f'--size {sizes}: svp_jax\'s core-set proxy trains on the whole pool '
      f'({POOL_SIZES[dataset]}), then keeps one subset')
  return {'mode': 'coreset', 'dataset': dataset, 'selector': selector,
          'target': target, 'method': method, 'kept': sizes[1], 'seeds': 0,
          'train_target': True, 'seed': seed}


def reference_pipeline(commands):
  """What the reference runs for a block's commands (one, or two: fasttext)."""
  refs = [parse_reference(c) for c in commands]
  if len(refs) == 1:
    experiment = reference_experiment(refs[0])
  else:
    assert len(refs) == 2, 'pair one reference command at a time'
    experiment = fasttext_pipeline(*refs)
  if experiment['dataset'] == 'imagenet2012':
    experiment['image_size'] = REFERENCE_IMAGENET_CROP
  return experiment


@functools.cache
def svp_jax_fasttext_ngrams():
  """The longest word n-gram svp_jax's fastText reads, from its ids.

  A document of four words and EOS has 5 unigrams, 4 bigrams, 3 trigrams...
  """
  ids = text_models.fasttext_ids(['w x y z'], num_buckets=1_000_003)
  count, tokens, n, total = int((ids >= 0).sum()), 5, 0, 0
  while total < count:
    n += 1
    total += tokens - n + 1
  assert total == count, count
  return n


def svp_jax_role(section, info):
  """The learner of an svp_jax `selector`, `target` or train config."""
  t = section.train
  if info.modality == 'text' and section.model.name == 'fasttext':
    return fasttext_learner(
        t.lr_schedule, t.momentum, t.weight_decay, t.augment,
        num_buckets=section.model.num_buckets,
        dim=model_registry.create_model(section.model, info).dim,
        ngrams=svp_jax_fasttext_ngrams(),
        # Every word gets a (hashed) row, as at fastText's min count 1.
        min_count=1,
        every_ngram=section.model.max_ids == 0)
  model_options = ({'document_length': section.model.document_length}
                   if info.modality == 'text' else {})
  return learner(section.model.name, t.lr_schedule, t.batch_size,
                 t.momentum, t.weight_decay, t.augment, t.label_smoothing,
                 **model_options)


def svp_experiment(config, reference_seed):
  """The same description of an svp_jax config."""
  experiment = svp_jax_experiment(config, reference_seed)
  if config.data.name == 'imagenet2012':
    # Streamed: every image is cropped to this size.
    experiment['image_size'] = config.data.image_size
  return experiment


def svp_jax_experiment(config, reference_seed):
  """svp_experiment without the streamed datasets' crop size."""
  # The reference drew a random seed when none was given: compare only given.
  seed = config.seed if reference_seed is not None else None
  dataset = config.data.name
  info = data.dataset_info(dataset)
  pool_size = POOL_SIZES[dataset]
  if config.mode == 'train':
    return {'mode': 'train', 'dataset': dataset,
            'model': svp_jax_role(config, info), 'seed': seed}
  target = svp_jax_role(config.target, info)
  if config.mode == 'precomputed':
    return {'mode': 'precomputed', 'dataset': dataset, 'target': target,
            'run_dir': config.precomputed.run_dir,
            'sizes': frozenset(config.precomputed.sizes) or None,
            'seed': seed}
  selector = svp_jax_role(config.selector, info)
  if config.mode == 'coreset':
    # The reference ranks by one method per run; several never match it.
    methods = tuple(config.coreset.methods)
    method = methods[0] if len(methods) == 1 else methods
    return {'mode': 'coreset', 'dataset': dataset, 'selector': selector,
            'target': target, 'method': method,
            'kept': experiment.resolve_size('coreset.subset_size',
                                        config.coreset.subset_size,
                                        pool_size),
            'seeds': (config.coreset.kcenters_seeds if method == 'kcenters'
                      else 0),
            # The core-set job always trains the target.
            'train_target': True, 'seed': seed}
  assert config.mode == 'active', config.mode
  different = selector != target
  sizes = active.resolve_schedule(config.selection.initial_subset,
                                  config.selection.rounds, pool_size)
  cumulative = tuple(np.cumsum(sizes)[1:].tolist())
  train_target = config.selection.train_target
  if not train_target:
    target_sizes = frozenset()
  elif different:
    target_sizes = frozenset(config.selection.eval_target_at or cumulative)
  else:
    target_sizes = None
  return {'mode': 'active', 'dataset': dataset,
          'selector': selector, 'target': target, 'different': different,
          'method': config.selection.method, 'sizes': sizes,
          'train_target': train_target, 'target_sizes': target_sizes,
          'seed': seed}


# ----------------------------------------------------------------------------
# Commands.


def test_the_page_has_commands_and_tables():
  assert len(BLOCKS) >= 25
  assert len(PAIRS) >= 20
  assert set(CONFIG_TABLES) == {
      'configs/cifar10_resnet20_proxy.py', 'configs/cifar10_train.py',
      'configs/cifar10_resnet20_coreset.py',
      'configs/precomputed_selection.py:cifar10'}
  assert {'columns', 'modules', 'precomputed_files', 'amazon_defaults',
          'fasttext'} <= set(TABLES)
  # Every mode has commands paired with the reference's, and so does the
  # reference's --no-train-target.
  paired = [load_command(c) for _, c in PAIRS]
  assert {c.mode for c in paired} == set(VALIDATORS)
  assert any(c.mode == 'active' and not c.selection.train_target
             for c in paired)
  assert any(c.mode == 'coreset' and c.coreset.methods == ('kcenters',)
             for c in paired)
  # Amazon: training, active learning and core-sets, each with a VDCNN or
  # fastText selector, fastText's two-command pipelines included.
  amazon = [(refs, load_command(c)) for refs, c in PAIRS
            if refs[0].startswith('python -m svp.amazon ')]
  assert {c.mode for _, c in amazon} == {'train', 'active', 'coreset'}
  pipelines = [c for refs, c in amazon if len(refs) == 2]
  assert {c.mode for c in pipelines} == {'active', 'coreset'}
  assert all(c.selector.model.name == 'fasttext' for c in pipelines)
  assert any(c.mode == 'coreset' and c.selector.model.name.startswith('vdcnn')
             for _, c in amazon)
  # ImageNet: training, active learning and core-sets, at batch 256 and at
  # the README's larger batches, whose rates are scaled; a pair may drop
  # --fp16 only because the page says svp_jax trains in float32.
  imagenet = [(refs, load_command(c)) for refs, c in PAIRS
              if refs[0].startswith('python -m svp.imagenet ')]
  assert {c.mode for _, c in imagenet} == {'train', 'active', 'coreset'}
  batches = {(c.train if c.mode == 'train' else c.selector.train).batch_size
             for _, c in imagenet}
  assert {256, 1028, 1048} <= batches
  if any('--fp16' in shlex.split(r) for refs, _ in imagenet for r in refs):
    assert re.search(r'`--fp16`[^.]*\bfloat32\b', DOC), (
        'a command drops --fp16: the page must say svp_jax has no mixed '
        'precision')


@pytest.mark.parametrize('command', SVP_COMMANDS)
def test_svp_jax_command_loads_and_validates(command):
  config = load_command(command)
  validate(config)
  pool_size = POOL_SIZES[config.data.name]
  if config.mode == 'active':
    sizes = active.resolve_schedule(config.selection.initial_subset,
                                    config.selection.rounds, pool_size)
    reached = set(np.cumsum(sizes).tolist())
    assert set(config.selection.eval_target_at) <= reached
  elif config.mode == 'coreset':
    kept = experiment.resolve_size('coreset.subset_size',
                               config.coreset.subset_size, pool_size)
    assert kept <= pool_size
    if 'kcenters' in config.coreset.methods:
      assert config.coreset.kcenters_seeds <= kept
  elif config.mode == 'precomputed':
    assert all(size <= pool_size for size in config.precomputed.sizes)


@pytest.mark.parametrize('block', BLOCKS, ids=lambda b: (b.reference or
                                                         b.svp_jax)[0][:60])
def test_reference_command_has_an_equivalent(block):
  if not block.reference:
    return  # svp_jax-only examples are checked by the test above.
  # CIFAR, ImageNet and Amazon reviews are in svp_jax, core-sets and
  # --precomputed-selection too (issues 4 and 7): no README command may be
  # "not yet" any more.
  assert block.not_yet is None, (
      f'{block.reference!r} is marked "not yet" but svp_jax has it')
  assert block.svp_jax, f'{block.reference!r}: no svp_jax command'
  refs = [parse_reference(c) for c in block.reference]
  assert len(refs) == 1 or (
      len(refs) == 2 and refs[0].subcommand == 'fasttext'), (
          'pair one reference command at a time, or a fasttext run and '
          'the run that trains the target on its selections')


@pytest.mark.parametrize('reference,command', PAIRS)
def test_svp_jax_command_runs_the_reference_experiment(reference, command):
  expected = reference_pipeline(reference)
  got = svp_experiment(load_command(command), expected['seed'])
  assert got == expected


# ----------------------------------------------------------------------------
# Flag tables.


@pytest.mark.parametrize('marker', sorted(CONFIG_TABLES))
def test_table_gives_each_key_its_default(marker):
  config = load_config(marker)
  checked = 0
  for row in flag_rows(marker):
    if not row.keys:
      continue
    assert row.default is not None, f'{row.keys}: no single default given'
    ok, value = literal(row.default)
    assert ok, f'{row.keys}: default {row.default!r} is not a Python literal'
    for key in row.keys:
      assert normalise(get_key(config, key)) == normalise(value), key
      checked += 1
  assert checked >= 15


@pytest.mark.parametrize('marker', sorted(CONFIG_TABLES))
def test_table_gives_the_reference_defaults(marker):
  checked = 0
  for row in flag_rows(marker):
    parsed = [literal(t) for t in row.reference_defaults]
    if not parsed or not all(ok for ok, _ in parsed):
      continue  # "same as `--X`" and the like.
    assert len(parsed) == len(row.flags), row
    for flag, (_, value) in zip(row.flags, parsed):
      assert normalise(value) == normalise(REFERENCE_DEFAULTS[flag]), flag
      checked += 1
  assert checked >= 15


@pytest.mark.parametrize('marker', sorted(CONFIG_TABLES))
def test_table_lists_every_reference_flag_once(marker):
  flags_listed = [f for row in flag_rows(marker) for f in row.flags]
  expected = MODE_FLAGS[load_config(marker).mode]
  assert sorted(flags_listed) == sorted(expected)


@pytest.mark.parametrize('marker', sorted(CONFIG_TABLES))
def test_table_maps_every_config_key(marker):
  listed = {k for row in flag_rows(marker) for k in row.keys}
  config_keys = set(leaf_keys(load_config(marker).to_dict()))
  assert config_keys - listed == set(), 'config keys missing from the page'
  assert listed - config_keys == set(), 'keys on the page not in the config'


def check_reference_defaults(flags, cell, defaults):
  """The cell's literals are the flags' defaults; 0 if it has none."""
  parsed = [literal(t) for t in backticked(cell)]
  if not parsed or not all(ok for ok, _ in parsed):
    return 0  # "same as `--arch`" and the like.
  assert len(parsed) == len(flags), (flags, cell)
  for flag, (_, value) in zip(flags, parsed):
    assert normalise(value) == normalise(defaults[flag]), flag
  return len(flags)


def check_svp_jax_defaults(keys, cell, config):
  """One literal for all keys or one per key, in order; keys checked."""
  if not keys:
    return 0
  parsed = [literal(t) for t in backticked(cell)]
  assert parsed and all(ok for ok, _ in parsed), (keys, cell)
  values = [v for _, v in parsed]
  if len(values) == 1:
    values *= len(keys)
  assert len(values) == len(keys), (keys, cell)
  for key, value in zip(keys, values):
    assert normalise(get_key(config, key)) == normalise(value), key
  return len(keys)


def option_cells(cells):
  """(flags, keys) named in a row of the Amazon or fastText table."""
  flags = [t for t in backticked(cells[0])
           if t.startswith('--') and not t.startswith('--no-')]
  keys = [t for t in backticked(cells[2]) if KEY_RE.match(t)]
  return flags, keys


def test_amazon_defaults_table():
  """Each svp.amazon default that differs from svp.cifar's, both sides right."""
  listed, checked = set(), 0
  for cells in TABLES['amazon_defaults']:
    flags, keys = option_cells(cells)
    listed.update(flags)
    checked += check_reference_defaults(flags, cells[1], AMAZON_DEFAULTS)
    [spec] = [t for t in backticked(cells[4]) if t.startswith('configs/')]
    checked += check_svp_jax_defaults(keys, cells[3], load_config(spec))
  amazon_flags = {f for name in ('train', 'active', 'coreset')
                  for f in AMAZON_SUBCOMMAND_FLAGS[name]}
  differing = {f for f in amazon_flags
               if AMAZON_DEFAULTS.get(f) != REFERENCE_DEFAULTS.get(f)}
  assert differing <= listed <= amazon_flags
  assert checked >= 15


def test_fasttext_table():
  """Every option of `svp.amazon fasttext`, once; the fastText config's."""
  config = load_config(FASTTEXT_CONFIG)
  listed, checked = [], 0
  for cells in TABLES['fasttext']:
    flags, keys = option_cells(cells)
    listed.extend(flags)
    checked += check_reference_defaults(flags, cells[1], FASTTEXT_DEFAULTS)
    checked += check_svp_jax_defaults(keys, cells[3], config)
  assert sorted(listed) == sorted(FASTTEXT_FLAGS)
  assert checked >= 15


# ----------------------------------------------------------------------------
# Run files.


def test_csv_columns_are_svp_jax_columns():
  columns = {}
  for cells in TABLES['columns']:
    for name in backticked(cells[0]):
      columns[name] = tuple(backticked(cells[1]))
  assert columns == {'proxy.csv': run_files.MODEL_COLUMNS,
                     'target.csv': run_files.MODEL_COLUMNS,
                     'selection.csv': run_files.SELECTION_COLUMNS}


def precomputed_file_rows():
  rows = []
  for cells in TABLES['precomputed_files']:
    for path in backticked(cells[0]):
      rows.append((path, cells[2].startswith('yes')))
  return rows


@pytest.mark.parametrize('path,read', precomputed_file_rows())
def test_precomputed_runs_read_the_index_files_the_page_names(path, read,
                                                              tmp_path):
  size = 7
  file = tmp_path / path.replace('<n>', str(size))
  file.parent.mkdir(parents=True, exist_ok=True)
  np.savetxt(file, np.arange(size), fmt='%d')
  assert coreset.find_selections(str(tmp_path)) == (
      {size: str(file)} if read else {})


def test_page_lists_every_index_file_precomputed_runs_read():
  # The page's table names every pattern svp_jax reads (<n> for the size).
  listed = {p.replace('<n>', '*') for p, read in precomputed_file_rows()
            if read}
  patterns = run_files.INDEX_PATTERNS
  assert listed == set(patterns)


def test_baseline_rule_is_svp_jax_rule():
  """The baseline ignores the evaluation-only keys the page names, only them."""
  match = re.search(r'ignores the\s+evaluation-only keys `(\w+)` and `(\w+)`',
                    DOC)
  assert match, 'the page no longer states the baseline rule'
  baseline = 'configs/cifar10_resnet164_baseline.py'
  config = load_config(baseline)
  assert run_files.same_training(config.selector, config.target)
  for key in match.groups():
    other = load_command(f'python main.py --config={baseline} '
                         f'--config.target.train.{key}=7')
    assert run_files.same_training(other.selector, other.target), key
  for key, value in (('weight_decay', 1e-4), ('batch_size', 64),
                     ('augment', False), ('label_smoothing', 0.1)):
    other = load_command(f'python main.py --config={baseline} '
                         f'--config.target.train.{key}={value}')
    assert not run_files.same_training(other.selector, other.target), key
  other = load_command(f'python main.py --config={baseline} '
                       '--config.target.model.name=preact110')
  assert not run_files.same_training(other.selector, other.target)


def test_reading_snippets_compile():
  blocks = fenced_blocks('python')
  assert blocks
  for block in blocks:
    compile(block, DOC_PATH, 'exec')


# ----------------------------------------------------------------------------
# Names.


def test_named_config_files_exist():
  named = set(re.findall(r'\bconfigs/[a-z0-9_]+\.py\b', DOC))
  assert len(named) >= 8
  missing = [p for p in named if not os.path.exists(os.path.join(REPO, p))]
  assert not missing


def test_named_repository_paths_exist():
  prefixes = ('configs/', 'svp_jax/', 'scripts/', 'tests/', 'benchmarks/',
              'docs/')
  named = {t for t in re.findall(r'`([^`\s]+)`', DOC)
           if t.startswith(prefixes) and PATH_RE.match(t)}
  missing = [p for p in named if not os.path.exists(os.path.join(REPO, p))]
  assert not missing


def test_module_table_names_exist():
  checked = 0
  for cells in TABLES['modules']:
    module = None
    for token in backticked(cells[2]):
      if PATH_RE.match(token) and ('/' in token or '.' in token):
        assert os.path.exists(os.path.join(REPO, token)), token
        module = (token[:-3].replace('/', '.')
                  if token.endswith('.py') and token.startswith(
                      ('svp_jax/', 'configs/')) else None)
      elif module and IDENTIFIER_RE.match(token):
        assert hasattr(importlib.import_module(module), token), (
            f'{module}.{token}')
        checked += 1
  assert checked >= 25


def slug(heading):
  """GitHub's anchor for a Markdown heading."""
  text = heading.strip().lower().replace('`', '')
  text = re.sub(r'[^\w\- ]', '', text)
  return text.replace(' ', '-')


def anchors(path):
  with open(path) as f:
    return {slug(h) for h in re.findall(r'^#+ (.*)$', f.read(), re.M)}


def test_links_resolve():
  links = re.findall(r'\]\(([^)\s]+)\)', DOC)
  assert links
  for link in links:
    if link.startswith(('http://', 'https://')):
      continue
    path, _, anchor = link.partition('#')
    target = (os.path.normpath(os.path.join(os.path.dirname(DOC_PATH), path))
              if path else DOC_PATH)
    assert os.path.exists(target), link
    if anchor:
      assert anchor in anchors(target), link
