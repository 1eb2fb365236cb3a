"""Text datasets through the jobs: fastText and VDCNN as selector and target.

The documents here are synthetic (a few label words among filler words):
plumbing only. Real-data evidence is docs/results/rotten_tomatoes_svp/.
"""

import importlib
import os

import jax
import numpy as np
import pytest

from configs import cifar
from configs import common
from configs import text
from svp_jax import active
from svp_jax import coreset
from svp_jax import jobs
from svp_jax import methods
from svp_jax import model_registry
from svp_jax import run_files
from svp_jax import sharding
from svp_jax import text_models
from svp_jax import train
from svp_jax import validation
from svp_jax.data import zhang_csv

_POSITIVE = 'good great fine lovely superb'.split()
_NEGATIVE = 'bad awful poor boring dull'.split()
_FILLER = 'the a movie film plot actor scene it was is'.split()


def _documents(rng, count):
  rows = []
  for _ in range(count):
    label = int(rng.integers(1, 3))
    words = list(rng.choice(_FILLER, 8)) + list(
        rng.choice(_POSITIVE if label == 2 else _NEGATIVE, 2))
    rng.shuffle(words)
    rows.append((label, 'title', ' '.join(words)))
  return rows


@pytest.fixture(scope='module')
def text_dirs(tmp_path_factory):
  """(data_dir, manual_dir) of a 400 + 100 document 'rotten_tomatoes'."""
  root = tmp_path_factory.mktemp('text')
  manual = root / 'manual'
  manual.mkdir()
  rng = np.random.default_rng(0)
  for split, count in (('train', 400), ('test', 100)):
    zhang_csv.write_split(str(manual / f'{split}.csv'), _documents(rng, count))
  return str(root / 'tfds'), str(manual)


def _tiny_active(text_dirs, selector, method):
  config = text.amazon_active_config('rotten_tomatoes', selector,
                                     f'{method},quick')
  config.data.data_dir, config.data.manual_dir = text_dirs
  config.data.max_train_examples = config.data.max_test_examples = 0
  config.selection.initial_subset = 50.0
  config.selection.rounds = (50.0, 50.0)
  config.selection.eval_target_at = (150,)
  config.target.model.document_length = 64
  return config


@pytest.mark.slow
def test_fasttext_selects_for_vdcnn_by_kcenters(text_dirs, tmp_path):
  config = _tiny_active(text_dirs, 'fasttext', 'kcenters')
  summary = active.run(config, str(tmp_path))
  assert summary['complete']
  assert (summary['selector'], summary['target']) == ('fasttext',
                                                      'vdcnn9-maxpool')
  labeled = np.loadtxt(tmp_path / 'proxy' / '150' / 'labeled_150.index', int)
  assert len(np.unique(labeled)) == 150
  accuracy = summary['rounds'][-1]['target_accuracy']
  assert 0.0 <= accuracy <= 1.0


def test_fasttext_baseline_reuses_its_target(text_dirs, tmp_path):
  config = _tiny_active(text_dirs, 'fasttext', 'margin')
  config.target = text.model_section('fasttext')
  config.target.model.num_buckets = config.selector.model.num_buckets
  config.selector.train.lr_schedule = config.target.train.lr_schedule = (
      (3, 0.05),)
  config.selection.eval_target_at = ()
  summary = active.run(config, str(tmp_path))
  assert [r['labeled'] for r in summary['rounds']] == [50, 100, 150]
  # Each round's selector is the previous round's target (same model, same
  # labels), so their test accuracies are the same numbers.
  rounds = summary['rounds']
  assert rounds[2]['selector_accuracy'] == rounds[1]['target_accuracy']
  # Hashing the pool's n-grams for the selector is data selection: charged
  # once, to the first selection that reads it, and in its seconds.
  assert [r['encoding_seconds'] > 0 for r in rounds] == [False, True, False]
  for r in rounds:
    assert r['selection_seconds'] == pytest.approx(
        sum(r[part] for part in run_files.SELECTION_PARTS))


def test_fasttext_train_job_learns_the_label_words(text_dirs, tmp_path):
  config = common.base_config('rotten_tomatoes', 'fasttext',
                              text.FASTTEXT_LR_SCHEDULE)
  config.model = text.model_section('fasttext').model
  config.model.num_buckets = 1000
  config.train = text.model_section('fasttext').train
  config.train.lr_schedule = ((20, 0.1),)
  config.data.data_dir, config.data.manual_dir = text_dirs
  summary = jobs.run(config, str(tmp_path))
  assert summary['parameters'] == 1000 * 10 + 10 * 2
  # Two of ten words decide the label; a bag of words must find them.
  assert summary['final_test_accuracy'] > 0.9


def test_sparse_step_is_the_same_on_8_devices_as_on_1():
  cfg = train.StepConfig(num_classes=3, mean=(), std=(), momentum=0.0,
                         weight_decay=0.0, inputs='tokens')
  rng = np.random.default_rng(0)
  ids = rng.integers(-1, 500, (24, 7)).astype(np.int32)
  labels = rng.integers(0, 3, 24).astype(np.int32)
  model = text_models.FastText(3, num_buckets=500)
  finals = []
  for devices in (jax.devices()[:1], jax.devices()[:8]):
    mesh = sharding.make_mesh(devices)
    state = train.init_state(jax.random.key(0), model, (7,), cfg, mesh)
    for idx, mask in train.padded_batches(np.arange(20), 8, mesh):
      batch = train.replicated_batch(mesh, ids, labels, idx, mask)
      state, _ = train.train_step(state, batch, np.float32(0.5),
                                  jax.random.key(1), model=model, cfg=cfg)
    finals.append(jax.device_get(state.params))
  # Every device applies the whole batch's update to its replica: equal up
  # to float rounding (programs compiled for 1 and 8 devices fuse apart).
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-7),
               *finals)


def test_text_models_read_their_own_encoding():
  documents = np.array(['A fine film.', 'Dull, dull, dull!'], object)
  chars = text.model_section('vdcnn9-conv').model
  chars.document_length = 80
  ngrams = text.model_section('fasttext').model
  ngrams.num_buckets = 1000
  encoded_chars, encoded_ngrams, same_chars = model_registry.encode_each(
      [chars, ngrams, chars], documents)
  assert encoded_chars.shape == (2, 80) and encoded_chars.dtype == np.uint8
  assert encoded_ngrams.dtype == np.int32
  assert encoded_ngrams.max() < 1000
  assert same_chars is encoded_chars  # Encoded once, shared.
  timed = model_registry.encode_each_timed([chars, ngrams, chars], documents)
  assert [seconds > 0 for _, seconds in timed] == [True, True, True]
  assert timed[0][1] == timed[2][1]  # One encoding, its seconds to each.
  # An image model reads the arrays as loaded: nothing made, 0 seconds.
  pixels = common.model_section('preact8', ((1, 0.1),)).model
  images = np.zeros((2, 28, 28, 1), np.uint8)
  (as_loaded, seconds), = model_registry.encode_each_timed([pixels], images)
  assert as_loaded is images and seconds == 0.0


def _valid_text_config():
  return text.amazon_active_config('rotten_tomatoes', 'fasttext', None)


@pytest.mark.parametrize('change, key', [
    (lambda c: setattr(c.target.model, 'name', 'preact20'),
     'target.model.name'),
    (lambda c: setattr(c.selector.train, 'momentum', 0.9),
     'selector.train.momentum'),
    (lambda c: setattr(c.selector.train, 'weight_decay', 1e-4),
     'selector.train.weight_decay'),
    (lambda c: setattr(c.target.train, 'augment', True),
     'target.train.augment'),
    (lambda c: setattr(c.target.model, 'document_length', 32),
     'target.model.document_length'),
    (lambda c: setattr(c.selector.model, 'num_buckets', 0),
     'selector.model.num_buckets'),
])
def test_bad_text_configs_name_the_key(change, key):
  config = _valid_text_config()
  change(config)
  with pytest.raises(validation.ConfigError, match=key.replace('.', r'\.')):
    validation.validate_active_config(config)


def test_text_models_are_refused_for_images():
  config = cifar.active_config('cifar10', 'preact20', None)
  config.selector.model.name = 'fasttext'
  with pytest.raises(validation.ConfigError,
                     match=r"selector\.model\.name='fasttext'.*preact20"):
    validation.validate_active_config(config)


@pytest.mark.parametrize('dataset', ['amazon_review_polarity',
                                     'amazon_review_full'])
@pytest.mark.parametrize('selector, expected', [
    ('fasttext_proxy', 'fasttext'), ('vdcnn9_proxy', 'vdcnn9-maxpool'),
    ('vdcnn29_baseline', 'vdcnn29-maxpool')])
def test_amazon_configs(dataset, selector, expected):
  module = importlib.import_module(f'configs.{dataset}_{selector}')
  config = module.get_config(None)
  validation.validate_active_config(config)
  assert config.data.name == dataset
  assert config.selector.model.name == expected
  assert config.target.model.name == 'vdcnn29-maxpool'
  # The paper's polarity schedule: 72,000 then +288,000, +360,000 x 4.
  assert active.resolve_schedule(
      config.selection.initial_subset, config.selection.rounds,
      3_600_000) == (72_000, 288_000) + (360_000,) * 4
  quick = module.get_config('random,quick')
  validation.validate_active_config(quick)
  assert quick.selection.method == 'random'
  assert os.path.basename(module.__file__).startswith(dataset)


@pytest.mark.slow
def test_fasttext_keeps_a_core_set_for_vdcnn(text_dirs, tmp_path):
  config = text.amazon_coreset_config('rotten_tomatoes',
                                      'fasttext,entropy,quick')
  config.data.data_dir, config.data.manual_dir = text_dirs
  config.data.max_train_examples = config.data.max_test_examples = 0
  config.coreset.subset_size = 150.0
  config.target.model.document_length = 64
  [row] = coreset.run(config, str(tmp_path))['methods']
  assert (row['proxy'], row['target']) == ('fasttext', 'vdcnn9-maxpool')
  assert (row['pool_size'], row['subset_size']) == (400, 150)
  assert row['encoding_seconds'] > 0  # The proxy's n-gram hashing.
  kept = np.loadtxt(tmp_path / 'entropy' / 'coreset_150.index', int)
  assert len(np.unique(kept)) == 150
  assert 0.0 <= row['target_test_accuracy'] <= 1.0


@pytest.mark.slow
def test_vdcnn_train_job_from_the_train_config(text_dirs, tmp_path):
  config = text.train_config('rotten_tomatoes', 'vdcnn9-conv,quick')
  config.data.data_dir, config.data.manual_dir = text_dirs
  config.model.document_length = 64
  summary = jobs.run(config, str(tmp_path))
  assert (summary['model'], summary['train_examples']) == ('vdcnn9-conv', 400)
  assert summary['epochs'] == 2
  assert 0.0 <= summary['final_test_accuracy'] <= 1.0


def test_config_text_models_are_the_text_models():
  assert text.TRAIN_ARGUMENTS.spec['model'].allowed() == (
      model_registry.names('text')) == text_models.TEXT_MODEL_NAMES


@pytest.mark.parametrize('dataset', ['amazon_review_polarity',
                                     'amazon_review_full'])
@pytest.mark.parametrize('model', text_models.TEXT_MODEL_NAMES)
def test_amazon_train_configs(dataset, model):
  module = importlib.import_module(f'configs.{dataset}_train')
  config = module.get_config(model)
  validation.validate_train_config(config)
  assert (config.data.name, config.model.name) == (dataset, model)
  assert config.to_dict()['train'] == (
      text.model_section(model).train.to_dict())
  quick = module.get_config(f'{model},quick')
  validation.validate_train_config(quick)
  assert quick.model.name == model
  # The reference's default --arch.
  assert module.get_config(None).model.name == 'vdcnn9-maxpool'


@pytest.mark.parametrize('dataset, pool, kept', [
    ('amazon_review_polarity', 3_600_000, 2_160_000),
    ('amazon_review_full', 3_000_000, 1_800_000)])
@pytest.mark.parametrize('arg, proxy, methods', [
    (None, 'fasttext', ('entropy',)),
    ('vdcnn9', 'vdcnn9-maxpool', ('entropy',)),
    ('vdcnn29,kcenters', 'vdcnn29-maxpool', ('kcenters',)),
    ('margin,fasttext', 'fasttext', ('margin',)),
    ('all', 'fasttext', methods.names('coreset'))])
def test_amazon_coreset_configs(dataset, pool, kept, arg, proxy, methods):
  module = importlib.import_module(f'configs.{dataset}_coreset')
  config = module.get_config(arg)
  validation.validate_coreset_config(config)
  assert config.data.name == dataset
  assert (config.selector.model.name, config.target.model.name) == (
      proxy, 'vdcnn29-maxpool')
  assert config.coreset.methods == methods
  assert coreset.resolve_sizes(config, pool) == (
      kept, 1000 if 'kcenters' in methods else 0)
  quick = module.get_config(f'{arg},quick' if arg else 'quick')
  validation.validate_coreset_config(quick)
  assert quick.coreset.methods == methods


@pytest.mark.parametrize('arg', ['vdcnn9,fasttext', 'preact20', 'entropy,x'])
def test_amazon_coreset_config_refuses_bad_arguments(arg):
  with pytest.raises(ValueError, match='PROXY'):
    text.amazon_coreset_config('amazon_review_polarity', arg)
