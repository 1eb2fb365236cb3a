"""Building blocks of every config: sections, job builders, the argument parser.

Not a config itself (no `get_config`). The dataset families add their
recipes in configs/cifar.py, configs/fashion_mnist.py, configs/imagenet.py
and configs/text.py; each config file declares its `ARGUMENTS` with
`Arguments` below and builds its ConfigDict from these pieces.
"""

from collections.abc import Callable
import dataclasses
import types
from typing import Any

import ml_collections

from svp_jax import data
from svp_jax import methods as method_registry  # 'methods' names tuples here

_LOAD_DEFAULTS = data.LoadOptions()

# The paper's schedule: 2% of the pool at random, then +8%, then +10% per
# round up to 50% (CIFAR: 1,000 then +4,000, +5,000 x 4).
PAPER_INITIAL_SUBSET = 0.02
PAPER_ROUNDS = (0.08, 0.1, 0.1, 0.1, 0.1)


def train_recipe(lr_schedule, *, batch_size=128, weight_decay=5e-4,
                 augment=True, label_smoothing=0.0, momentum=0.9):
  """SGD with momentum 0.9 and coupled L2, as the reference trains."""
  return ml_collections.ConfigDict(dict(
      batch_size=batch_size,
      eval_batch_size=512,
      lr_schedule=lr_schedule,
      momentum=momentum,
      weight_decay=weight_decay,
      label_smoothing=label_smoothing,
      augment=augment,
      # Evaluate on the test split every N epochs (0: after the last only).
      # Train jobs only: active learning tests each model once, at the end.
      eval_every=0,
  ))


def data_config(name):
  """The data section of dataset `name` (a name of svp_jax.data)."""
  return ml_collections.ConfigDict(dict(
      name=name,
      # '' means TFDS's default (TFDS_DATA_DIR or ~/tensorflow_datasets).
      data_dir='',
      # '' means the dataset's default place for local files (BUILD.md).
      manual_dir='',
      # Let TFDS download and prepare: True, False, or 'auto' (when the
      # dataset's download host answers at once; a machine without internet
      # then fails at once instead of after minutes of retries).
      download=_LOAD_DEFAULTS.download,
      # Split names, for datasets named by their TFDS name ('': train and
      # test; some datasets call theirs validation).
      train_split=_LOAD_DEFAULTS.train_split,
      test_split=_LOAD_DEFAULTS.test_split,
      # Use only the first N examples of a split (0: all); for quick runs.
      max_train_examples=0,
      max_test_examples=0,
      # Decode every image into host memory at the start (fast for small
      # datasets). False: decode each batch's images when it is fed, so each
      # process of a multi-host run reads only the rows it feeds.
      in_memory=_LOAD_DEFAULTS.in_memory,
  ))


def own_files_data_config():
  """The data section of a user's own files (svp_jax.data.own_files)."""
  config = data_config(data.files.NAME)
  _load = data.LoadOptions()
  config.update(dict(
      # The files: a folder of images (ROOT/<class>/..., optionally under
      # ROOT/train and ROOT/test), a .csv/.tsv/.jsonl table of texts, or an
      # .npz (x_train, y_train[, x_test, y_test, class_names]). Required.
      path='',
      # Images are resized to this square side (0: keep their own size,
      # which must then be the same for all).
      image_size=0,
      # A table's columns (two different ones): the text, and its class
      # (empty, null, NaN or -1: unlabeled).
      text_column=_load.text_column,
      label_column=_load.label_column,
      # Without a test split in the files, this share of each class's
      # labeled examples is held out as one, drawn with config.seed. None
      # is held out (the test split is empty, and the labeling loop asks for
      # test labels) when the pool has no label, or when some examples are
      # unlabeled and the labeled ones are too few to carve any.
      test_fraction=_load.test_fraction,
      # The class names, in class order, e.g. ('cat', 'dog'); () takes the
      # files' (folder names, label values) or a classes.txt beside them
      # (ROOT/classes.txt, or in the table's folder; one name a line). Needed
      # (at least 2) by a pool with no label at all. When given, every label
      # in the files must be one of them.
      class_names=_load.class_names,
  ))
  return config


def own_files_active_config(selector, target, method):
  """An active-learning run on a user's own files, on the paper's schedule."""
  config = active_config(data.files.NAME, selector, target, method)
  config.data = own_files_data_config()
  return config


def make_labeling(config):
  """An active config made a labeling loop: people answer (svp_jax.labeling).

  The same selector, target, method and schedule; each command asks one
  round's queries, trains the target or exports the labels.
  """
  config.mode = 'label'
  config.labeling = ml_collections.ConfigDict(dict(
      # Each action first merges every answer not merged yet, in any round's
      # query file (a changed one: a correction, kept in the store's
      # history) and in `answers`. Then query: ask the next round's
      # queries; train_target: train and test the target on the labels so
      # far; export: write every labeled example, its label and where it
      # came from (labeled.csv).
      action='query',
      # Ask about every pool example as if the files had no labels, and
      # keep the files' labels for the checks that answer from them (a
      # simulated person: scripts/answer_queries.py).
      ignore_file_labels=False,
      # When the files bring no test split: this many random pool examples
      # asked with the first round and kept out of training and selection,
      # to test the selector and the target on (0: no test, no accuracy).
      test_examples=0,
      # A file of answers to merge too (columns id and answer, as a query
      # file; or a Label Studio export), copied into the workdir
      # (queries/answers_<n>.<ext>); each id counts for the last round that
      # asked it. '': none.
      answers='',
  ))
  return config


def base_config(dataset, model, lr_schedule, **recipe):
  """A single-model training run: the foundation's main job."""
  config = ml_collections.ConfigDict()
  config.mode = 'train'
  config.seed = 0
  config.data = data_config(dataset)
  config.model = ml_collections.ConfigDict(dict(name=model))
  config.train = train_recipe(lr_schedule, **recipe)
  config.preemption = preemption_section()
  return config


def model_section(model, lr_schedule, **recipe):
  """A selector or target: the model and its full training recipe."""
  return ml_collections.ConfigDict(dict(
      model=dict(name=model), train=train_recipe(lr_schedule, **recipe)))


def make_quick(config, epochs=2, train_examples=2000, test_examples=1000):
  """Shrinks a config to a CPU-sized plumbing run (numbers not meaningful)."""
  config.train.lr_schedule = ((epochs, 0.05),)
  config.data.max_train_examples = train_examples
  config.data.max_test_examples = test_examples
  return config


def preemption_section():
  """Surviving preemption (svp_jax.preemption; BUILD.md, "Resuming and
  preemption"). Not part of the experiment: a run may be resumed with other
  values."""
  return ml_collections.ConfigDict(dict(
      # Trainings save their progress every this many minutes of training
      # and every this many epochs (0: never by that measure), and also at a
      # stop request (SIGTERM, SIGINT) and when done.
      checkpoint_minutes=10.0,
      checkpoint_epochs=0,
      # A run that makes no progress for this long (a collective that never
      # completes) aborts, to be resumed from its last checkpoint; 0: never.
      hang_minutes=30.0,
  ))


def _job_config(mode, dataset, selector, target):
  """The sections a selection job starts from: mode, seed, data, learners."""
  config = ml_collections.ConfigDict()
  config.mode = mode
  config.seed = 0
  config.data = data_config(dataset)
  config.selector = selector
  config.target = target
  config.preemption = preemption_section()
  return config


def active_config(dataset, selector, target, method,
                  initial_subset=PAPER_INITIAL_SUBSET, rounds=PAPER_ROUNDS):
  """An active-learning run; `selector`/`target` come from model_section."""
  config = _job_config('active', dataset, selector, target)
  config.selection = ml_collections.ConfigDict(dict(
      # A name of svp_jax.methods usable in 'active' mode: random,
      # least_confidence, entropy, margin or kcenters.
      method=method,
      # Sizes: a fraction of the pool in (0, 1) or a whole number of examples.
      initial_subset=initial_subset,
      rounds=rounds,
      # Train the target at all (False: selection only, like the
      # reference's --no-train-target).
      train_target=True,
      # Labeled-set sizes at which the target is trained and tested
      # (empty: after every round).
      eval_target_at=(),
      # Also score the pool each round with a target trained on the same
      # labels and save both scores (agreement/), for the proxy-target
      # agreement report. Uncertainty methods only; costs target scoring
      # (and a target training where none exists at that size).
      compare_with_target=False,
  ))
  return config


def shrink_active(config, initial_subset=200.0, rounds=(200.0, 200.0)):
  """An active config at plumbing size: a small pool and schedule."""
  config.data.max_train_examples = 3000
  config.data.max_test_examples = 500
  config.selection.initial_subset = initial_subset
  config.selection.rounds = rounds
  return config


def make_active_quick(config):
  """CPU plumbing size: 3,000-image pool, 200 then +200, +200; 1 epoch each."""
  shrink_active(config)
  for role in ('selector', 'target'):
    config[role].train.lr_schedule = ((1, 0.05),)
  baseline = config.selector.model.name == config.target.model.name
  config.selector.model.name = 'preact8'
  config.target.model.name = 'preact8' if baseline else 'preact20'
  return config


def coreset_config(dataset, proxy, target, methods, subset_size):
  """Core-set selection: one proxy on all data keeps a subset per method."""
  config = _job_config('coreset', dataset, proxy, target)
  config.coreset = ml_collections.ConfigDict(dict(
      # One or more core-set methods of svp_jax.methods. All rank from one
      # trained proxy, and the target trains on each method's subset: one
      # run compares them.
      methods=tuple(methods),
      # A fraction of the pool in (0, 1) or a whole number of examples.
      subset_size=subset_size,
      # k-centers starts from this many random points (part of the subset).
      kcenters_seeds=1000,
  ))
  return config


def shrink_coreset(config):
  """A core-set config at plumbing size: 2,000-example pool, keep 500."""
  config.data.max_train_examples = 2000
  config.data.max_test_examples = 500
  config.coreset.subset_size = 500.0
  config.coreset.kcenters_seeds = 100
  return config


def make_coreset_quick(config):
  """CPU plumbing size: 2,000-image pool, keep 500, 1 epoch per model."""
  shrink_coreset(config)
  for role in ('selector', 'target'):
    config[role].train.lr_schedule = ((1, 0.05),)
  config.selector.model.name = 'preact8'
  config.target.model.name = 'preact8'
  return config


def precomputed_config(dataset, target):
  """Trains `target` on the labeled-index files of an earlier run."""
  config = ml_collections.ConfigDict()
  config.mode = 'precomputed'
  config.seed = 0
  config.data = data_config(dataset)
  config.target = target
  config.precomputed = ml_collections.ConfigDict(dict(
      # The workdir of an earlier active/core-set run (or a reference run
      # directory); required.
      run_dir='',
      # Labeled-set sizes to train at (empty: every stored selection).
      sizes=(),
  ))
  config.preemption = preemption_section()
  return config


# ----------------------------------------------------------------------------
# The config argument: `--config=configs/FILE.py:ARG`.


@dataclasses.dataclass(frozen=True)
class Choice:
  """A group of bare names; an argument gives at most one (else `default`).

  `names` is a tuple or a function returning one, read when an argument is
  parsed (so names registered later, e.g. by a test, count). `label` names
  the group in messages and usage ('METHOD').
  """
  names: tuple[str, ...] | Callable[[], tuple[str, ...]]
  default: str
  label: str

  def allowed(self) -> tuple[str, ...]:
    return self.names() if callable(self.names) else tuple(self.names)


@dataclasses.dataclass(frozen=True)
class Option:
  """A `key=VALUE` option; `parse` returns the value or raises ValueError."""
  parse: Callable[[str], Any]
  default: Any
  label: str  # The value in usage ('B').
  meaning: str  # What a value must be ('an integer >= 1').


@dataclasses.dataclass(frozen=True)
class Flag:
  """A bare word that is True when present (e.g. `quick`)."""


FLAG = Flag()


def positive_int(text):
  if not text.isdigit() or int(text) < 1:
    raise ValueError(text)
  return int(text)


def active_method(default='least_confidence'):
  """METHOD: a selection method of svp_jax.methods usable in active mode."""
  return Choice(lambda: method_registry.names('active'), default, 'METHOD')


def coreset_method(default='forgetting_events'):
  """METHOD: a core-set method of svp_jax.methods, or `all` of them."""
  return Choice(lambda: method_registry.names('coreset') + ('all',), default,
                'METHOD')


def coreset_methods(name):
  """coreset_method's value as a tuple: `all` is the registry's order."""
  return method_registry.names('coreset') if name == 'all' else (name,)


def batch_option(default):
  return Option(positive_int, default, 'B', 'an integer >= 1')


class Arguments:
  """One config file's argument: comma-separated tokens, each one of

    NAME       a name of a Choice group (`kcenters`) or a Flag (`quick`)
    KEY=VALUE  a Choice group by its key (`method=kcenters`) or an Option
               (`selector_batch=512`)

  in any order; empty tokens are ignored, a token repeated counts once. A
  group or option given two different values, an unknown token or a bad
  value raises ValueError naming the argument, the token and what is
  allowed. `parse` returns a namespace with one attribute per key: the
  group's name, the option's value, or the flag's bool.
  """

  def __init__(self, **spec):
    self.spec = spec

  def _keys(self, kind):
    return [k for k, v in self.spec.items() if isinstance(v, kind)]

  def usage(self):
    """'[METHOD][,quick]; METHOD one of (...)', for messages and docs."""
    parts = [self.spec[k].label for k in self._keys(Choice)]
    parts += [f'{k}={self.spec[k].label}' for k in self._keys(Option)]
    parts += self._keys(Flag)
    details = [f'{self.spec[k].label} one of {self.spec[k].allowed()}'
               for k in self._keys(Choice)]
    details += [f'{k}={v.label} with {v.label} {v.meaning} (default '
                f'{v.default})' for k, v in self.spec.items()
                if isinstance(v, Option)]
    grammar = ''.join(f'[{"," if i else ""}{p}]' for i, p in enumerate(parts))
    return grammar + ''.join(f'; {d}' for d in details)

  def _value(self, key, value):
    """(the value of `key=value`, None) or (None, the problem with it)."""
    kind = self.spec.get(key)
    if isinstance(kind, Choice):
      if value in kind.allowed():
        return value, None
      return None, f'{value!r} is not a {kind.label}'
    if isinstance(kind, Option):
      try:
        return kind.parse(value), None
      except ValueError:
        return None, f'{value!r} is not {kind.meaning}'
    return None, f'{key!r} is not an option'

  def _key_of(self, name):
    """The key a bare `name` sets (a flag's own key), or None."""
    if isinstance(self.spec.get(name), Flag):
      return name
    for key in self._keys(Choice):
      if name in self.spec[key].allowed():
        return key
    return None

  def _token(self, token):
    """(key, value, None) of one token, or (None, None, the problem)."""
    key, equals, value = token.partition('=')
    if equals:
      value, problem = self._value(key, value)
      return (None, None, f'{token!r}: {problem}') if problem else (
          key, value, None)
    key = self._key_of(token)
    if key is None:
      return None, None, f'{token!r} is not a known name'
    return key, (True if isinstance(self.spec[key], Flag) else token), None

  def _conflict(self, key, first, second):
    kind = self.spec[key]
    if isinstance(kind, Choice):
      return (f'{first!r} and {second!r} both give {kind.label}; choose one '
              f'of {", ".join(kind.allowed())}')
    return f'{key} given twice ({first!r}, {second!r})'

  def parse(self, arg):
    """The namespace of `arg` (None or '' gives every default)."""
    given = {}
    for token in (t for t in (arg or '').split(',') if t):
      key, value, problem = self._token(token)
      if problem:
        raise self.error(arg, problem)
      if given.setdefault(key, value) != value:
        raise self.error(arg, self._conflict(key, given[key], value))
    return types.SimpleNamespace(**{
        k: given.get(k, False if isinstance(v, Flag) else v.default)
        for k, v in self.spec.items()})

  def error(self, arg, problem):
    return ValueError(f'config argument {arg!r}: {problem}; expected '
                      f'{self.usage()}')
