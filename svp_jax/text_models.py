"""Text models of the SVP reference (Amazon reviews), in Flax Linen.

* VDCNN (Conneau et al. 2017) on quantised characters: the target, and a
  cheaper proxy (VDCNN9). Architecture, init and BatchNorm settings follow
  the PyTorch reference (docs/reference.md), so parameter counts match
  it exactly: vdcnn29 has 16,635,730 trainable parameters for 2 classes.
* fastText (Joulin et al. 2016) as a JAX model: the reference shelled out to
  the fastText binary; here it is an embedding bag over hashed word uni- and
  bigrams, trained by `fasttext_update`, a sparse SGD step whose cost does
  not grow with the number of hash buckets. `FastText.training_hooks` hands
  that step, its replicated batches and fastText's learning-rate decay to
  the generic trainer, `svp_jax.train`.

Like `svp_jax.models`, every model maps `(inputs, train, mask)` to
`(logits, features)`, `features` being the input of the final linear layer
(what greedy k-centers uses). Inputs are host-prepared integer arrays:
`quantize` (characters, VDCNN) and `fasttext_ids` (hashed n-grams, fastText),
each model's `Encoding` of a text dataset's documents. A proxy and a target
of different kinds therefore see the same examples, in the same order,
encoded twice.

Each model is declared to the model registry (svp_jax.model_registry) by
its spec in SPECS, with the keys its `model` config section may set:
  document_length  VDCNN: characters kept per document (default 1014, the
                   reference's; at least MIN_DOCUMENT_LENGTH).
  num_buckets      fastText: rows of the hashed n-gram table (default 10M).
  max_ids          fastText: n-gram ids kept per document (default 0: as
                   many as the longest document has).
"""

from collections.abc import Sequence
import re
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from svp_jax.model_spec import Encoding
from svp_jax.model_spec import IntOption
from svp_jax.model_spec import ModelSpec
from svp_jax.models import MaskedBatchNorm
# Aliased: `train` is the models' training-mode flag here.
from svp_jax import train as trainer
from svp_jax.models import TorchDense

# --------------------------------------------------------------------------
# Character quantisation (VDCNN input).

# The reference's 67 characters, '^' where its list has U+02C6 (a typo there:
# '^' in a review became "unknown"). Index = position + 2.
ALPHABET = ('abcdefghijklmnopqrstuvwxyz0123456789'
            '-,;.!?:\'"/|_#$%^&*~`+=<>()[]{} ')
PAD_INDEX = 0
UNKNOWN_INDEX = 1
CHAR_VOCAB_SIZE = len(ALPHABET) + 2  # 69
DOCUMENT_LENGTH = 1014
# The shortest document VDCNN can read: 3 halvings still leave k-max
# pooling (k = 8) its 8 positions.
MIN_DOCUMENT_LENGTH = 64


def _char_table() -> np.ndarray:
  # The alphabet is ASCII, so a 128-entry table covers every known character.
  table = np.full(128, UNKNOWN_INDEX, np.uint8)
  for index, char in enumerate(ALPHABET, start=2):
    table[ord(char)] = index
  return table


_CHAR_TABLE = _char_table()


def quantize(texts: Sequence[str], length: int = DOCUMENT_LENGTH,
             dtype: Any = np.uint8) -> np.ndarray:
  """Character indices of each text, (len(texts), length), as the reference.

  Lower-cased, then each character mapped to its alphabet index (2..68),
  anything else to 1; truncated or padded with 0 to `length`. uint8 by
  default: Amazon polarity's 3.6M training documents take 3.7 GB so, 14.6 GB
  as int32.
  """
  out = np.zeros((len(texts), length), dtype)
  for row, text in enumerate(texts):
    # Lower-case before truncating: lower() can change the length, and the
    # reference truncates the mapped lower-cased text.
    chars = text.lower()[:length]
    codes = np.frombuffer(chars.encode('utf-32-le', 'surrogatepass'),
                          np.uint32)
    out[row, :len(codes)] = np.where(
        codes < 128, _CHAR_TABLE[np.minimum(codes, 127)], UNKNOWN_INDEX)
  return out


# --------------------------------------------------------------------------
# VDCNN.

# kaiming_normal_(mode='fan_in'), untruncated, as the reference's VDCNN.
_vdcnn_conv_init = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')


def _conv1d(features: int, stride: int = 1) -> nn.Conv:
  return nn.Conv(features, (3,), strides=(stride,), padding=((1, 1),),
                 use_bias=False, kernel_init=_vdcnn_conv_init)


def kmax_pool(x: jax.Array, k: int) -> jax.Array:
  """The k largest values of each channel over length, in their order.

  x: (batch, length, channels) -> (batch, channels, k).
  """
  x = jnp.swapaxes(x, 1, 2)
  _, indices = jax.lax.top_k(x, k)
  return jnp.take_along_axis(x, jnp.sort(indices, axis=-1), axis=-1)


class VdcnnBlock(nn.Module):
  """conv3-BN-ReLU-conv3-BN-ReLU, halving the length first if `downsample`.

  The reference halves the length where the width grows: variant 'conv' by
  giving the first conv stride 2, variant 'maxpool' by a max-pool (k=3, s=2)
  before it. Neither adds parameters. No shortcut (the reference's default).
  """

  features: int
  downsample: str | None  # None, 'conv' or 'maxpool'.
  train: bool

  @nn.compact
  def __call__(self, x, mask):
    if self.downsample == 'maxpool':
      x = nn.max_pool(x, (3,), strides=(2,), padding=((1, 1),))
    x = _conv1d(self.features, 2 if self.downsample == 'conv' else 1)(x)
    x = nn.relu(MaskedBatchNorm(self.train)(x, mask))
    x = _conv1d(self.features)(x)
    return nn.relu(MaskedBatchNorm(self.train)(x, mask))


class VDCNN(nn.Module):
  """Character embedding, conv, 4 sections of blocks, k-max pool, 3 FC."""

  blocks_per_section: Sequence[int]
  downsample: str  # 'conv' or 'maxpool'.
  num_classes: int
  section_features: Sequence[int] = (64, 128, 256, 512)
  embedding_dim: int = 16
  k: int = 8
  hidden: int = 2048

  @nn.compact
  def __call__(self, chars: jax.Array, train: bool,
               mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    # PyTorch's nn.Embedding draws from N(0, 1); index 0 (padding) is a
    # trainable row there too.
    x = nn.Embed(CHAR_VOCAB_SIZE, self.embedding_dim,
                 embedding_init=nn.initializers.normal(1.0))(
                     chars.astype(jnp.int32))
    x = _conv1d(self.section_features[0])(x)
    width = self.section_features[0]
    for features, num_blocks in zip(self.section_features,
                                     self.blocks_per_section):
      for _ in range(num_blocks):
        downsample = self.downsample if features > width else None
        x = VdcnnBlock(features, downsample, train)(x, mask)
        width = features
    # Flattened channel-major, (channels, k), as the reference's view().
    x = kmax_pool(x, self.k).reshape(x.shape[0], -1)
    x = nn.relu(TorchDense(self.hidden)(x))
    features = nn.relu(TorchDense(self.hidden)(x))
    logits = TorchDense(self.num_classes)(features)
    return logits, features


# --------------------------------------------------------------------------
# fastText.

# The token fastText appends to every line. It is a word like any other, so
# its embedding acts as a learned bias, and it forms a bigram with the last
# word.
EOS = '</s>'
_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619
_BIGRAM_MULTIPLIER = 116049371  # fastText's word n-gram hash multiplier.
DEFAULT_NUM_BUCKETS = 10_000_000
# Punctuation the reference's sed script spaces out, and what it removes.
_SPACED = str.maketrans({c: f' {c} ' for c in '\'.,()!?'})
_BLANKED = str.maketrans({';': ' ', ':': ' '})
# fastText splits words at these bytes only (not at other Unicode spaces).
_FASTTEXT_SPACE = re.compile('[ \n\r\t\v\f\0]+')


def normalize(text: str) -> str:
  """The reference's fastText normalisation of a document.

  Its shell pipeline, in order: lower-case; "'" spaced out; '"' removed; '.'
  spaced out; '<br />' to a space; , ( ) ! ? spaced out; ; and : to spaces.
  (Squeezing repeated spaces is left to `tokenize`.)
  """
  text = text.lower().replace('"', '').replace('<br />', ' ')
  return text.translate(_BLANKED).translate(_SPACED)


def tokenize(text: str) -> list[str]:
  """Words of a normalised document as fastText reads them, then EOS.

  New lines separate words like spaces: in the reference one line was one
  document (its CSV escaped them).
  """
  return [w for w in _FASTTEXT_SPACE.split(normalize(text)) if w] + [EOS]


def fasttext_hash(token: str) -> int:
  """fastText's 32-bit FNV-1a of a token's UTF-8 bytes.

  fastText xors each byte as a *signed* char, so bytes >= 128 are
  sign-extended; kept so that ids match fastText's for non-ASCII words.
  """
  h = _FNV_OFFSET
  for byte in token.encode('utf-8'):
    h ^= byte if byte < 128 else byte | 0xFFFFFF00
    h = (h * _FNV_PRIME) & 0xFFFFFFFF
  return h


def fasttext_ids(texts: Sequence[str], num_buckets: int = DEFAULT_NUM_BUCKETS,
                 max_ids: int | None = None) -> np.ndarray:
  """Hashed word unigram and bigram ids of each document, padded with -1.

  Unigram id = hash(word) % num_buckets; bigram id = fastText's word-n-gram
  hash (64-bit, of the two words' signed 32-bit hashes) % num_buckets. Real
  fastText gives each word of the training vocabulary (min count 1) a row of
  its own and hashes only the bigrams; here both share one hashed table, so
  the table never depends on which examples are labelled (active learning
  retrains on a growing set) and a word unseen in training still has a row.

  Args:
    texts: documents (title + ' ' + body).
    num_buckets: rows of the embedding table.
    max_ids: columns of the result (default: the longest document's 2n-1
      ids). Longer documents lose their last bigrams first.

  Returns:
    int32 (len(texts), max_ids): each row the n unigram then n-1 bigram ids
    of a document of n tokens (EOS included), then -1.
  """
  if not len(texts):
    return np.full((0, max_ids or 1), -1, np.int32)
  cache = {}
  hashes, lengths = [], np.empty(len(texts), np.int64)
  for row, text in enumerate(texts):
    tokens = tokenize(text)
    lengths[row] = len(tokens)
    for token in tokens:
      h = cache.get(token)
      if h is None:
        h = cache[token] = fasttext_hash(token)
      hashes.append(h)
  hashes = np.asarray(hashes, np.uint32)
  starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
  rows = np.repeat(np.arange(len(texts)), lengths)
  positions = np.arange(len(hashes)) - starts[rows]

  # fastText keeps the hashes as int32 and widens them to uint64 with sign
  # extension before mixing; numpy's uint64 arithmetic wraps like C's.
  wide = hashes.view(np.int32).astype(np.int64).view(np.uint64)
  is_first = positions[1:] == 0  # Pairs that would straddle two documents.
  with np.errstate(over='ignore'):
    bigrams = wide[:-1] * np.uint64(_BIGRAM_MULTIPLIER) + wide[1:]
  bigram_rows = rows[:-1][~is_first]
  bigram_positions = positions[:-1][~is_first]
  bigrams = bigrams[~is_first]

  width = int(2 * lengths.max() - 1) if max_ids is None else max_ids
  out = np.full((len(texts), width), -1, np.int32)
  uni_keep = positions < width
  out[rows[uni_keep], positions[uni_keep]] = hashes[uni_keep] % num_buckets
  bi_columns = lengths[bigram_rows] + bigram_positions
  bi_keep = bi_columns < width
  out[bigram_rows[bi_keep], bi_columns[bi_keep]] = (
      bigrams[bi_keep] % np.uint64(num_buckets))
  return out


def _embedding_bag(rows: jax.Array, ids: jax.Array) -> jax.Array:
  """Mean of each document's rows over its real ids (ids >= 0)."""
  valid = (ids >= 0).astype(rows.dtype)
  count = jnp.maximum(valid.sum(axis=1, keepdims=True), 1.0)
  return jnp.einsum('bl,bld->bd', valid, rows) / count


def fasttext_update(params: dict[str, jax.Array], ids: jax.Array,
                    labels: jax.Array, weights: jax.Array, lr: jax.Array
                    ) -> tuple[dict[str, jax.Array], jax.Array, jax.Array]:
  """One SGD step of `FastText`, touching only the table rows in `ids`.

  The loss is the *sum* of the weighted examples' cross-entropies, so each
  example moves the weights as much as in fastText's one-example-at-a-time
  SGD at the same learning rate (fastText's threads likewise apply their
  updates without averaging). `weights` is 1 for real examples and 0 for
  padding rows of a last partial batch.

  The table's gradient is computed only for the gathered rows and added back
  with a scatter (repeated ids accumulate, as in the dense gradient). Under a
  jit that donates `params`, XLA updates the table in place: a step costs
  O(batch x ids x dim), independent of the number of buckets.

  Returns:
    new params, the batch's logits and its per-example losses (unweighted).
  """
  safe_ids = jnp.maximum(ids, 0)  # Padding (-1) gets zero gradient below.
  rows = jnp.take(params['embedding'], safe_ids, axis=0)

  def loss_fn(rows, head):
    logits = _embedding_bag(rows, ids) @ head
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.sum(losses * weights), (logits, losses)

  (_, (logits, losses)), (row_grads, head_grad) = jax.value_and_grad(
      loss_fn, argnums=(0, 1), has_aux=True)(rows, params['head'])
  new_params = {
      'embedding': params['embedding'].at[safe_ids].add(-lr * row_grads),
      'head': params['head'] - lr * head_grad,
  }
  return new_params, logits, losses


def fasttext_lr(step: int, total_steps: int, base_lr: float) -> float:
  """fastText's schedule: linear decay from base_lr to 0 over training."""
  return base_lr * (1.0 - step / total_steps)


def _fasttext_sgd_step(state: trainer.TrainState,
                       batch: dict[str, jax.Array], lr: jax.Array,
                       key: jax.Array, model: nn.Module,
                       cfg: trainer.StepConfig):
  """fastText's step in `train.train_model`: `fasttext_update` on a batch.

  The momentum, weight decay and label smoothing of the recipe do not apply
  (validation requires them off, from FASTTEXT_HOOKS): the reference's
  fastText had none. Nothing is random and no optimizer state is kept.
  """
  del key, model, cfg
  mask = batch['mask']
  params, logits, losses = fasttext_update(
      state.params, batch['image'], batch['label'], mask, lr)
  new_state = state.replace(step=state.step + 1, params=params)
  metrics = trainer.batch_metrics(logits, batch['label'], mask, losses)
  return new_state, metrics, jnp.argmax(logits, -1) == batch['label']


def _no_optimizer_state(params: Any, cfg: trainer.StepConfig) -> tuple[()]:
  del params, cfg  # Plain SGD.
  return ()


# Replicated batches: split over devices, XLA would sum the scattered table
# updates with an all-reduce of the whole table (`train.replicated_batch`).
FASTTEXT_HOOKS = trainer.TrainingHooks(
    step=_fasttext_sgd_step, make_batch=trainer.replicated_batch,
    step_lr=fasttext_lr, init_opt_state=_no_optimizer_state,
    zero_settings=('momentum', 'weight_decay', 'label_smoothing'),
    zero_reason='fastText trains by plain SGD')


class FastText(nn.Module):
  """Embedding bag (mean) of hashed n-grams, then a linear softmax layer.

  Parameters: `embedding` (num_buckets, dim), initialised uniform in
  +-1/dim, and `head` (dim, num_classes), zeros and no bias, as fastText's
  supervised mode (EOS's row plays the bias). It trains by its own
  `training_hooks`: `jax.grad` of this module would build a dense gradient
  of the whole table at every step.
  """

  training_hooks: ClassVar[trainer.TrainingHooks] = FASTTEXT_HOOKS
  num_classes: int
  num_buckets: int = DEFAULT_NUM_BUCKETS
  dim: int = 10

  @nn.compact
  def __call__(self, ids: jax.Array, train: bool = False,
               mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    del train, mask  # No BatchNorm or dropout.
    bound = 1.0 / self.dim
    table = self.param(
        'embedding',
        lambda key, shape: jax.random.uniform(key, shape, jnp.float32,
                                              -bound, bound),
        (self.num_buckets, self.dim))
    head = self.param('head', nn.initializers.zeros,
                      (self.dim, self.num_classes))
    features = _embedding_bag(jnp.take(table, jnp.maximum(ids, 0), axis=0),
                              ids)
    return features @ head, features


# --------------------------------------------------------------------------
# Registry.

# Name -> blocks per section, as in the reference (VDCNN 9/17/29).
VDCNN_DEPTHS = {9: (1, 1, 1, 1), 17: (2, 2, 2, 2), 29: (5, 5, 2, 2)}
DOWNSAMPLING = ('conv', 'maxpool')
TEXT_MODEL_NAMES = tuple(
    f'vdcnn{depth}-{variant}' for depth in VDCNN_DEPTHS
    for variant in DOWNSAMPLING) + ('fasttext',)


def create_text_model(name: str, num_classes: int,
                      num_buckets: int = DEFAULT_NUM_BUCKETS) -> nn.Module:
  """The model registered under `name` (see TEXT_MODEL_NAMES).

  `num_buckets` is fastText's table size; VDCNN ignores it.
  """
  if name == 'fasttext':
    return FastText(num_classes, num_buckets)
  depth, _, variant = name.removeprefix('vdcnn').partition('-')
  if (not name.startswith('vdcnn') or not depth.isdigit()
      or int(depth) not in VDCNN_DEPTHS or variant not in DOWNSAMPLING):
    raise ValueError(f'model.name={name!r} is not a known text model; '
                     f'allowed: {TEXT_MODEL_NAMES}')
  return VDCNN(VDCNN_DEPTHS[int(depth)], variant, num_classes)


def feature_dim(name: str, dim: int = 10) -> int:
  """Width of the `features` output of text model `name`."""
  return dim if name == 'fasttext' else VDCNN.hidden


# fastText's table is both the model's rows and the ids' hash modulus.
NUM_BUCKETS = IntOption('num_buckets', DEFAULT_NUM_BUCKETS, 1)
MAX_IDS = IntOption('max_ids', 0, 0)
LENGTH = IntOption('document_length', DOCUMENT_LENGTH, MIN_DOCUMENT_LENGTH)


def _fasttext_encoding(section: Any) -> Encoding:
  return Encoding(fasttext_ids,
                  (NUM_BUCKETS.value(section), MAX_IDS.value(section) or None))


def _character_encoding(section: Any) -> Encoding:
  return Encoding(quantize, (LENGTH.value(section),))


FASTTEXT_SPEC = ModelSpec(
    name='fasttext', modality='text', module=FastText,
    create=lambda section, num_classes, conv_general_dilated: (
        create_text_model('fasttext', num_classes,
                          NUM_BUCKETS.value(section))),
    feature_dim=lambda section: feature_dim('fasttext'),
    encoding=_fasttext_encoding, options=(NUM_BUCKETS, MAX_IDS))


def _vdcnn_spec(name: str) -> ModelSpec:
  return ModelSpec(
      name=name, modality='text', module=VDCNN,
      create=lambda section, num_classes, conv_general_dilated: (
          create_text_model(name, num_classes)),
      feature_dim=lambda section: feature_dim(name),
      encoding=_character_encoding, options=(LENGTH,))


SPECS = tuple(FASTTEXT_SPEC if name == 'fasttext' else _vdcnn_spec(name)
              for name in TEXT_MODEL_NAMES)
