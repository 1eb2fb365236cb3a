"""Configs load and validate; bad values fail naming key, value and choices."""

import glob
import hashlib
import importlib
import json
import os
import re
import subprocess
import sys

import pytest

from configs import common
from svp_jax import data
from svp_jax import experiment
from svp_jax import jobs
from svp_jax import methods
from svp_jax import results
from svp_jax import validation

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Runnable configs define get_config; the family modules (configs/common.py,
# cifar.py, ...) are building blocks and define none.
CONFIG_MODULES = sorted(
    name for name in (os.path.splitext(os.path.basename(p))[0]
                      for p in glob.glob(os.path.join(REPO, 'configs', '*.py')))
    if hasattr(importlib.import_module(f'configs.{name}'), 'get_config'))


def load(name, arg=None):
  return importlib.import_module(f'configs.{name}').get_config(arg)


VALIDATORS = {
    'train': validation.validate_train_config,
    'active': validation.validate_active_config,
    'coreset': validation.validate_coreset_config,
    'precomputed': validation.validate_precomputed_config,
}


def validate(config):
  VALIDATORS.get(config.mode, validation.validate_train_config)(config)


@pytest.mark.parametrize('name', CONFIG_MODULES)
@pytest.mark.parametrize('arg', [None, 'quick'])
def test_every_config_validates(name, arg, own_files, tmp_path):
  if name == 'precomputed_selection':
    config = load(name, None if arg == 'quick' else 'cifar10')
    config.precomputed.run_dir = 'workdirs/some_run'
  else:
    config = load(name, arg)
  if config.data.name == data.files.NAME:  # Needs the user's files.
    kind = 'texts' if config.selector.model.name == 'fasttext' else 'images'
    config.data.path = own_files[kind]
    config.data.data_dir = str(tmp_path)
  validate(config)


def test_paper_rows_use_the_reference_recipe_and_schedule():
  config = load('cifar10_resnet20_proxy')
  assert config.selector.model.name == 'preact20'
  assert config.target.model.name == 'preact164'
  for role in (config.selector, config.target):
    assert role.train.lr_schedule == ((1, 0.01), (90, 0.1), (45, 0.01),
                                      (45, 0.001))
    assert role.train.batch_size == 128
    assert role.train.momentum == 0.9 and role.train.weight_decay == 5e-4
  assert config.selection.initial_subset == 0.02
  assert config.selection.rounds == (0.08, 0.1, 0.1, 0.1, 0.1)
  fewer = load('cifar100_resnet164_fewer_epochs_proxy')
  assert fewer.selector.train.lr_schedule == ((1, 0.01), (45, 0.1), (4, 0.01))
  assert load('cifar10_resnet20_proxy', 'kcenters').selection.method == (
      'kcenters')


@pytest.mark.parametrize('key,value,match', [
    ('data.name', 'no_such_set', r"config.data.name='no_such_set'.*'cifar10'"),
    ('model.name', 'resnet9', r"config.model.name='resnet9'.*'preact20'"),
    ('train.batch_size', 0, r'config.train.batch_size=0 .*integer >= 1'),
    ('train.batch_size', 12.5, r'config.train.batch_size=12.5 '),
    ('train.lr_schedule', ((0, 0.1),), r'lr_schedule=.*bad pair \(0, 0.1\)'),
    ('train.lr_schedule', (), r'lr_schedule=\(\) .*non-empty'),
    ('train.momentum', 1.5, r'config.train.momentum=1.5 '),
    ('train.weight_decay', -1.0, r'config.train.weight_decay=-1.0 '),
    ('data.max_train_examples', -5, r'max_train_examples=-5 '),
    ('mode', 'finetune', r"config.mode='finetune'.*'train'"),
])
def test_bad_train_values_are_named(key, value, match):
  config = load('fashion_mnist_resnet20')
  section, _, leaf = key.rpartition('.')
  target = config[section] if section else config
  with target.ignore_type():
    target[leaf] = value
  with pytest.raises(validation.ConfigError, match=match):
    validate(config)


@pytest.mark.parametrize('key,value,match', [
    ('selection.method', 'bald', r"config.selection.method='bald'.*kcenters"),
    ('selector.model.name', 'vgg', r"config.selector.model.name='vgg'"),
    ('target.train.batch_size', -1, r'config.target.train.batch_size=-1 '),
    ('selection.eval_target_at', (0,), r'eval_target_at\[0\]=0 '),
])
def test_bad_active_values_are_named(key, value, match):
  config = load('fashion_mnist_svp')
  *path, leaf = key.split('.')
  target = config
  for part in path:
    target = target[part]
  with target.ignore_type():
    target[leaf] = value
  with pytest.raises(validation.ConfigError, match=match):
    validate(config)


def test_unknown_mode_is_refused_by_the_dispatcher(tmp_path):
  config = load('fashion_mnist_resnet20')
  config.mode = 'finetune'
  with pytest.raises(validation.ConfigError, match=r"config.mode='finetune'"):
    jobs.run(config, str(tmp_path))


def run_main(*flags):
  return subprocess.run(
      [sys.executable, os.path.join(REPO, 'main.py'), *flags],
      capture_output=True, text=True, timeout=300, cwd=REPO)


_FMNIST = '--config=configs/fashion_mnist_resnet20.py:quick'
_ACTIVE = '--config=configs/fashion_mnist_svp.py:quick'


@pytest.mark.parametrize('flags,status,expected', [
    (('--config=configs/nope.py',), 2,
     "--config=configs/nope.py: no config file 'configs/nope.py'"),
    ((_FMNIST, '--config.train.batch_sise=3'), 2,
     "--config.train.batch_sise=3: configs/fashion_mnist_resnet20.py has no "
     "key 'train.batch_sise' (did you mean 'batch_size'?)"),
    ((_FMNIST, '--config.colour=red'), 2,
     "--config.colour=red: configs/fashion_mnist_resnet20.py has no key "
     "'colour'"),
    ((_FMNIST, '--config.train.batch_size=many'), 2,
     "--config.train.batch_size=many: invalid literal for int() with base 10: "
     "'many'"),
    (('--config=configs/fashion_mnist_svp.py:bogus',), 2,
     "--config=configs/fashion_mnist_svp.py:bogus: ValueError: config "
     "argument 'bogus': 'bogus' is not a known name"),
    (('--config=CONFIG_FILE',), 2, 'does not load: invalid syntax at '),
    ((_FMNIST, '--colour=red'), 2, 'unknown flag --colour'),
    ((_FMNIST, '--config.mode=finetune'), 1,
     "config.mode='finetune' is not allowed: expected one of"),
    ((_ACTIVE, '--config.selection.rounds=(0.9, 0.9)'), 1,
     'add up to 5600 examples, more than the pool of 3000'),
    ((_ACTIVE, '--config.preemption.hang_minutes=-1'), 1,
     "config.preemption.hang_minutes=-1.0 is not allowed: expected a number "
     ">= 0.0"),
])
def test_bad_command_lines_are_one_error_line(tmp_path, flags, status,
                                              expected):
  broken = tmp_path / 'broken.py'
  broken.write_text('def get_config(:\n')
  flags = [f.replace('CONFIG_FILE', str(broken)) for f in flags]
  workdir = tmp_path / 'w'
  result = run_main(*flags, f'--workdir={workdir}')
  assert result.returncode == status, result.stderr
  assert 'Traceback' not in result.stderr
  errors = [line for line in result.stderr.splitlines()
            if line.startswith('error: ')]
  assert len(errors) == 1 and expected in errors[0], result.stderr
  assert result.stderr.strip().splitlines()[-1] == errors[0]
  assert not workdir.exists()


def test_main_fails_fast_on_missing_data(tmp_path):
  result = run_main('--config=configs/cifar10_train.py:quick',
                    f'--workdir={tmp_path / "w"}',
                    f'--config.data.data_dir={tmp_path / "tfds"}')
  assert result.returncode == 1
  last_line = result.stderr.strip().splitlines()[-1]
  assert 'Traceback' not in result.stderr
  assert last_line.startswith('error: ')
  assert 'cifar10' in result.stderr and str(tmp_path / 'tfds') in result.stderr
  assert 'cifar-10-binary.tar.gz' in result.stderr


@pytest.mark.parametrize('value,match', [
    (('bald',), r"config.coreset.methods\[0\]='bald' is not allowed: "
     r"expected one of \('random', .*'kcenters'\)"),
    (('random', 'kcenters', 'random'),
     r"config.coreset.methods=\('random', 'kcenters', 'random'\) is not "
     r"allowed: expected each method once; \['random'\] repeat"),
    ((), r'config.coreset.methods=\(\) is not allowed: expected a non-empty '
     r'tuple of names from \(.*\)'),
    ('random', r"config.coreset.methods='random' is not allowed: expected a "
     r'non-empty tuple'),
])
def test_bad_coreset_methods_are_named(value, match):
  config = load('fashion_mnist_coreset')
  with config.coreset.ignore_type():
    config.coreset.methods = value
  with pytest.raises(validation.ConfigError, match=match):
    validate(config)


def test_coreset_argument_picks_one_method_or_all():
  assert load('fashion_mnist_coreset').coreset.methods == (
      'forgetting_events',)
  assert load('cifar10_resnet20_coreset', 'kcenters,quick').coreset.methods == (
      'kcenters',)
  every = load('cifar100_resnet20_coreset', 'all').coreset.methods
  assert every == ('random', 'least_confidence', 'entropy', 'margin',
                   'forgetting_events', 'kcenters')
  # The configs' list is the validator's, in `:all`'s order.
  assert every == methods.names('coreset')
  with pytest.raises(ValueError, match=r"'bald'.*METHOD one of .*'all'"):
    load('fashion_mnist_coreset', 'bald')


def test_coreset_sizes_and_the_full_data_recipe():
  fmnist = load('fashion_mnist_coreset')
  assert fmnist.coreset.subset_size == 0.1  # 6,000 of 60,000.
  for name in ('cifar10_resnet20_coreset', 'cifar100_resnet20_coreset'):
    assert load(name).coreset.subset_size == 0.5
  # The study's full-data run trains the core-set target's model and recipe
  # (evaluation frequency aside) on all the data.
  full = load('fashion_mnist_resnet20')
  assert full.model.name == fmnist.target.model.name == 'preact20'
  assert ({**full.train.to_dict(), 'eval_every': 0}
          == fmnist.target.train.to_dict())
  assert full.data.to_dict() == fmnist.data.to_dict()


def test_fashion_mnist_svp_selectors():
  proxy, baseline, fewer = (load('fashion_mnist_svp', arg) for arg in
                            (None, 'baseline', 'kcenters,fewer_epochs'))
  for config in (proxy, baseline, fewer):
    assert config.target.model.name == 'preact20'
    assert config.target.train.lr_schedule == ((1, 0.01), (9, 0.1), (5, 0.01))
  assert proxy.selector.model.name == 'preact8'
  assert baseline.selector.to_dict() == baseline.target.to_dict()
  assert fewer.selector.model.name == 'preact20'
  assert fewer.selector.train.lr_schedule == ((1, 0.01), (3, 0.1), (1, 0.01))
  assert fewer.selection.method == 'kcenters'
  with pytest.raises(ValueError, match="'baseline' and 'fewer_epochs' both "
                     'give SELECTOR; choose one of proxy, baseline, '
                     'fewer_epochs'):
    load('fashion_mnist_svp', 'baseline,fewer_epochs')


def test_imagenet_train_and_coreset_configs():
  # pylint: disable-next=g-import-not-at-top
  from configs import imagenet
  train = load('imagenet_train')
  assert (train.model.name, train.data.name) == ('resnet18', 'imagenet2012')
  assert train.train.to_dict() == imagenet.model_section(
      'resnet18').train.to_dict()
  assert not train.data.in_memory and train.data.image_size == 224
  assert load('imagenet_train', 'resnet50').model.name == 'resnet50'
  coreset_config = load('imagenet_coreset')
  assert coreset_config.coreset.methods == ('forgetting_events',)
  assert coreset_config.coreset.subset_size == 0.6  # 768,700 of 1,281,167.
  assert (coreset_config.selector.model.name,
          coreset_config.target.model.name) == ('resnet18', 'resnet50')
  assert load('imagenet_coreset', 'all').coreset.methods == (
      methods.names('coreset'))


@pytest.mark.parametrize('name,arg,role', [
    ('imagenet_train', 'resnet50,batch=1048', 'train'),
    ('imagenet_resnet18_proxy', 'selector_batch=1028', 'selector.train'),
    ('imagenet_resnet18_fewer_epochs_proxy', 'kcenters,selector_batch=1028',
     'selector.train'),
    ('imagenet_resnet50_baseline', 'target_batch=512', 'target.train'),
    ('imagenet_coreset', 'entropy,selector_batch=1028', 'selector.train'),
])
def test_imagenet_batch_argument_scales_every_rate(name, arg, role):
  """`NAME=B`: batch B, every rate x B / 256 (--scale-learning-rates)."""
  batch = int(arg.rpartition('=')[2])
  plain = load(name, arg.rpartition(',')[0] if ',' in arg else None)
  config = load(name, arg)
  validate(config)
  section, base = config, plain
  for part in role.split('.'):
    section, base = section[part], base[part]
  assert section.batch_size == batch and base.batch_size == 256
  assert section.lr_schedule == tuple(
      (epochs, lr * batch / 256) for epochs, lr in base.lr_schedule)
  # Everything else as without the argument, the other model included.
  section.batch_size, section.lr_schedule = base.batch_size, base.lr_schedule
  assert config.to_dict() == plain.to_dict()


@pytest.mark.parametrize('arg,problem', [
    ('batch=1048', "'batch' is not an option"),
    ('selector_batch=0', "'0' is not an integer >= 1"),
    ('selector_batch=1e3', "'1e3' is not an integer >= 1"),
    ('kcenters,target=512', "'target' is not an option")])
def test_imagenet_batch_argument_is_checked(arg, problem):
  with pytest.raises(ValueError, match=re.escape(
      f"config argument '{arg}': '{arg.rpartition(',')[2]}': {problem}; "
      'expected [METHOD][,selector_batch=B][,target_batch=B][,quick]')):
    load('imagenet_resnet18_proxy', arg)


# sha256 (first 16 hex digits) of the config.json a run of each writes
# (svp_jax.results.to_jsonable of the ConfigDict, sorted keys), taken before
# configs/common.py was split by family. A workdir refuses to resume under a
# config that differs from its config.json, so a change here must be meant.
# Keys that only say how a run operates (experiment.RUN_OPERATION_KEYS, added
# later) are left out, as the workdir check leaves them out, and so are keys
# added later at the value that keeps what the runs did
# (experiment.ADDED_KEY_DEFAULTS). Re-recorded once, when data.download became
# such a key: each earlier digest was checked to equal the old one with
# data.download=False put back and the split keys left out.
RESOLVED = [
    ('fashion_mnist_resnet20', None, 'e3e6ce6d3d1d2a0d'),
    ('fashion_mnist_svp', 'kcenters,fewer_epochs', 'd0ce59105367a284'),
    ('fashion_mnist_coreset', 'all,quick', '395ea42e0718cd01'),
    ('cifar10_resnet20_proxy', None, 'e400531c71cd6787'),
    ('cifar100_resnet164_fewer_epochs_proxy', 'quick', 'cad71fb66252b44e'),
    ('cifar10_train', 'preact164', 'dfae46555e7f7ce8'),
    ('imagenet_resnet18_proxy', 'margin,selector_batch=1028',
     '71d1b3f0bea5c01c'),
    ('imagenet_coreset', 'quick', '13afd0ac94a57250'),
    ('imagenet_train', 'resnet50,batch=1048', 'dd0b24a6377c0b5c'),
    ('amazon_review_polarity_coreset', 'vdcnn9,kcenters', '10db76710e9cb3e5'),
    ('amazon_review_full_fasttext_proxy', 'quick', '8922ff455057c2ed'),
    ('amazon_review_polarity_train', 'fasttext', 'b72833f7adfad0c0'),
    ('rotten_tomatoes_svp', 'fasttext_target', 'fad4ee70e32fb251'),
    ('precomputed_selection', 'amazon_review_full', '3e77ad8e7d1407ab'),
]


def _get(config, dotted):
  for key in dotted.split('.'):
    config = config.get(key, {}) if isinstance(config, dict) else {}
  return config


@pytest.mark.parametrize('name,arg,digest', RESOLVED)
def test_configs_resolve_as_recorded(name, arg, digest):
  config = results.to_jsonable(load(name, arg).to_dict())
  added = {k for k, v in experiment.ADDED_KEY_DEFAULTS.items()
           if _get(config, k) == v}
  for key in (*experiment.RUN_OPERATION_KEYS, *added):
    *sections, last = key.split('.')
    parent = config
    for section in sections:
      parent = parent.get(section, {})
    parent.pop(last, None)
  recorded = json.dumps(config, sort_keys=True)
  assert hashlib.sha256(recorded.encode()).hexdigest()[:16] == digest


@pytest.mark.parametrize('name', CONFIG_MODULES)
def test_every_config_declares_and_parses_its_argument(name):
  module = importlib.import_module(f'configs.{name}')
  arguments = module.ARGUMENTS
  assert module.get_config().to_dict() == load(name, '').to_dict()
  # Each choice group by key=value is its bare name; every name resolves.
  for key, kind in arguments.spec.items():
    if isinstance(kind, common.Choice):
      for value in kind.allowed():
        assert (load(name, f'{key}={value}').to_dict()
                == load(name, value).to_dict())
  usage = re.escape(arguments.usage())
  with pytest.raises(ValueError, match=(
      rf"^config argument 'nonsense': 'nonsense' is not a known name; "
      rf'expected {usage}$')):
    load(name, 'nonsense')


def test_argument_grammar():
  arguments = common.Arguments(
      model=common.Choice(('a', 'b'), 'a', 'MODEL'),
      size=common.batch_option(8), quick=common.FLAG)
  assert arguments.usage() == (
      "[MODEL][,size=B][,quick]; MODEL one of ('a', 'b'); size=B with B an "
      'integer >= 1 (default 8)')
  assert vars(arguments.parse(None)) == dict(model='a', size=8, quick=False)
  assert vars(arguments.parse(',quick,size=3,b,quick,')) == dict(
      model='b', size=3, quick=True)
  assert arguments.parse('model=b').model == 'b'
  for arg, problem in [
      ('a,b', "'a' and 'b' both give MODEL; choose one of a, b"),
      ('model=c', "'model=c': 'c' is not a MODEL"),
      ('size=3,size=4', "size given twice (3, 4)"),
      ('size=-1', "'size=-1': '-1' is not an integer >= 1"),
      ('quick=1', "'quick=1': 'quick' is not an option"),
      ('c', "'c' is not a known name")]:
    with pytest.raises(ValueError, match=re.escape(
        f'config argument {arg!r}: {problem}; expected [MODEL]')):
      arguments.parse(arg)


def test_a_workdir_resumes_under_other_preemption_settings(tmp_path):
  config = load('fashion_mnist_svp', 'quick')
  experiment.claim_workdir(str(tmp_path), config)
  config.preemption.checkpoint_minutes = 1.0
  config.preemption.hang_minutes = 5.0
  experiment.claim_workdir(str(tmp_path), config)  # How it survives: fine.
  config.seed = 1
  with pytest.raises(validation.ConfigError, match=r"differs at \['seed'\]"):
    experiment.claim_workdir(str(tmp_path), config)
