"""Config checks that fail early, naming the key, the value and what is allowed."""

from collections.abc import Sequence
from typing import Any

from svp_jax import data
from svp_jax import methods
from svp_jax import model_registry
from svp_jax import train

MODES = ('train', 'active', 'coreset', 'precomputed', 'label')
# What a labeling-loop command does (svp_jax.labeling).
LABELING_ACTIONS = ('query', 'train_target', 'export')


class ConfigError(ValueError):
  """A config value is not allowed; the message says which and why."""


def _fail(key: str, value: Any, allowed: str):
  raise ConfigError(f'config.{key}={value!r} is not allowed: {allowed}')


def check_choice(key: str, value: Any, allowed: Sequence[Any]):
  if value not in allowed:
    _fail(key, value, f'expected one of {tuple(allowed)}')


def check_int(key: str, value: Any, minimum: int):
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    _fail(key, value, f'expected an integer >= {minimum}')


def check_float(key: str, value: Any, low: float, high: float | None = None,
                high_inclusive: bool = False):
  ok = isinstance(value, (int, float)) and not isinstance(value, bool)
  ok = ok and value >= low
  if ok and high is not None:
    ok = value <= high if high_inclusive else value < high
  if not ok:
    bound = '' if high is None else (
        f' and {"<=" if high_inclusive else "<"} {high}')
    _fail(key, value, f'expected a number >= {low}{bound}')


def check_lr_schedule(key: str, schedule: Any):
  """((epochs, lr), ...) with at least one pair, epochs >= 1, lr >= 0."""
  allowed = 'expected a non-empty sequence of (epochs >= 1, lr >= 0) pairs'
  if not isinstance(schedule, (list, tuple)) or not schedule:
    _fail(key, schedule, allowed)
  for pair in schedule:
    if (not isinstance(pair, (list, tuple)) or len(pair) != 2
        or isinstance(pair[0], bool) or not isinstance(pair[0], int)
        or pair[0] < 1 or isinstance(pair[1], bool)
        or not isinstance(pair[1], (int, float)) or pair[1] < 0):
      _fail(key, schedule, allowed + f'; bad pair {pair!r}')


def check_data(section, prefix: str = 'data'):
  if not data.registry.known_dataset(section.name):
    _fail(f'{prefix}.name', section.name,
          f'expected one of {data.supported_datasets()} or the name of a '
          'TFDS classification dataset')
  if 'download' in section:
    check_choice(f'{prefix}.download', section.download,
                 data.tfds_util.DOWNLOAD_CHOICES)
  check_int(f'{prefix}.max_train_examples', section.max_train_examples, 0)
  check_int(f'{prefix}.max_test_examples', section.max_test_examples, 0)
  if 'image_size' in section:  # Streamed ImageNet's crop size; own images'.
    check_int(f'{prefix}.image_size', section.image_size,
              0 if 'path' in section else 32)
  if section.name == data.files.NAME:
    check_own_files(section, prefix)


def check_own_files(section, prefix: str = 'data'):
  """The keys of a user's own files (svp_jax.data.files)."""
  for key in ('path', 'text_column', 'label_column'):
    value = section.get(key)
    if not isinstance(value, str) or not value:
      _fail(f'{prefix}.{key}', value,
            'expected a folder of images, a .csv/.tsv/.jsonl table of texts '
            'or an .npz file' if key == 'path' else 'expected a column name')
  check_float(f'{prefix}.test_fraction', section.test_fraction, 0.0, 1.0)
  if not section.test_fraction:
    _fail(f'{prefix}.test_fraction', section.test_fraction,
          'expected a number > 0 and < 1')


def check_train(section, prefix: str = 'train'):
  check_int(f'{prefix}.batch_size', section.batch_size, 1)
  check_int(f'{prefix}.eval_batch_size', section.eval_batch_size, 1)
  check_int(f'{prefix}.eval_every', section.eval_every, 0)
  check_lr_schedule(f'{prefix}.lr_schedule', section.lr_schedule)
  check_float(f'{prefix}.momentum', section.momentum, 0.0, 1.0)
  check_float(f'{prefix}.weight_decay', section.weight_decay, 0.0)
  check_float(f'{prefix}.label_smoothing', section.label_smoothing, 0.0, 1.0)


def validate_train_config(config):
  """Checks a single-model training config (mode 'train')."""
  check_choice('mode', config.mode, MODES)
  check_int('seed', config.seed, 0)
  check_data(config.data)
  check_model(config, '', data.configured_info(config.data, config.seed))
  check_preemption(config)


def check_sizes(key: str, values: Any):
  if not isinstance(values, (list, tuple)):
    _fail(key, values, 'expected a sequence')


def check_learner(config, role: str):
  check_model(config[role], f'{role}.',
              data.configured_info(config.data, config.seed))


def check_job(config, roles: Sequence[str]):
  """What every job with learners in `roles` has: mode, seed, data, models."""
  check_choice('mode', config.mode, MODES)
  check_int('seed', config.seed, 0)
  check_data(config.data)
  for role in roles:
    check_learner(config, role)
  check_preemption(config)


def check_preemption(config):
  """config.preemption, where a config has one (svp_jax.preemption)."""
  if 'preemption' in config:
    check_float('preemption.checkpoint_minutes',
                config.preemption.checkpoint_minutes, 0.0)
    check_int('preemption.checkpoint_epochs',
              config.preemption.checkpoint_epochs, 0)
    check_float('preemption.hang_minutes', config.preemption.hang_minutes,
                0.0)


def check_model(section, prefix: str, info: data.DatasetInfo):
  """A `model` and its `train` recipe, for the dataset they will see.

  `section` holds both (the config itself, or its selector/target section);
  `info` is the dataset's (data.configured_info). Call after check_data.
  What a model takes and checks is its registry entry's
  (svp_jax.model_registry).
  """
  name = section.model.name
  check_choice(f'{prefix}model.name', name,
               model_registry.names(info.modality))
  spec = model_registry.get(name)
  check_train(section.train, f'{prefix}train')
  if info.modality == 'text' and section.train.augment:
    _fail(f'{prefix}train.augment', section.train.augment,
          f'{info.name} is text, which has no augmentation: expected False')
  # A model's own training step may ignore recipe settings (fastText's is
  # plain SGD, as the reference's fastText program): those must be 0.
  hooks = train.hooks_for(spec.module)
  for key in hooks.zero_settings:
    if section.train[key]:
      _fail(f'{prefix}train.{key}', section.train[key],
            f'{hooks.zero_reason}: expected 0')
  for option in spec.options:
    check_int(f'{prefix}model.{option.key}', option.value(section.model),
              option.minimum)


def validate_active_config(config):
  """Checks an active-learning config (mode 'active').

  Sizes in `selection` are checked against the pool once it is loaded
  (active.resolve_schedule).
  """
  check_job(config, ('selector', 'target'))
  check_choice('selection.method', config.selection.method,
               methods.names('active'))
  check_choice('selection.train_target', config.selection.train_target,
               (True, False))
  check_choice('selection.compare_with_target',
               config.selection.compare_with_target, (True, False))
  if config.selection.compare_with_target:
    check_choice('selection.method (with compare_with_target)',
                 config.selection.method,
                 tuple(n for n in methods.names('active')
                       if methods.get(n).scores_compare))
  check_sizes('selection.rounds', config.selection.rounds)
  check_sizes('selection.eval_target_at', config.selection.eval_target_at)
  for i, size in enumerate(config.selection.eval_target_at):
    check_int(f'selection.eval_target_at[{i}]', size, 1)


def validate_label_config(config):
  """Checks a labeling-loop config (mode 'label', svp_jax.labeling)."""
  check_job(config, ('selector', 'target'))
  check_choice('selection.method', config.selection.method,
               methods.names('active'))
  check_sizes('selection.rounds', config.selection.rounds)
  check_choice('labeling.action', config.labeling.action, LABELING_ACTIONS)
  check_choice('labeling.ignore_file_labels',
               config.labeling.ignore_file_labels, (True, False))
  check_int('labeling.test_examples', config.labeling.get('test_examples', 0),
            0)
  if not isinstance(config.labeling.get('answers', ''), str):
    _fail('labeling.answers', config.labeling.answers,
          "expected a file's path, or '' for none")


def check_methods(key: str, methods: Any, allowed: Sequence[str]):
  """A non-empty tuple of distinct names, each one of `allowed`."""
  if isinstance(methods, str) or not isinstance(methods, (list, tuple)) or (
      not methods):
    _fail(key, methods, f'expected a non-empty tuple of names from '
          f'{tuple(allowed)}')
  for i, method in enumerate(methods):
    check_choice(f'{key}[{i}]', method, allowed)
  repeated = sorted({m for m in methods if list(methods).count(m) > 1})
  if repeated:
    _fail(key, methods, f'expected each method once; {repeated} repeat')


def validate_coreset_config(config):
  """Checks a core-set config (mode 'coreset'); sizes are checked on load."""
  check_job(config, ('selector', 'target'))
  check_methods('coreset.methods', config.coreset.methods,
                methods.names('coreset'))
  check_int('coreset.kcenters_seeds', config.coreset.kcenters_seeds, 0)


def validate_precomputed_config(config):
  """Checks a config that trains targets on an earlier run's selections."""
  check_job(config, ('target',))
  if not config.precomputed.run_dir:
    _fail('precomputed.run_dir', config.precomputed.run_dir,
          'expected the run directory of an earlier active or core-set run')
  check_sizes('precomputed.sizes', config.precomputed.sizes)
  for i, size in enumerate(config.precomputed.sizes):
    check_int(f'precomputed.sizes[{i}]', size, 1)
