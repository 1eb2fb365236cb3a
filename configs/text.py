"""Building blocks of the text configs (not a config: no get_config).

Amazon Review Polarity/Full (Zhang et al.'s CSVs) and the offline Rotten
Tomatoes stand-in; the data: BUILD.md ("Text datasets"). Models: VDCNN
(`vdcnn<depth>-<variant>`) and fastText, each with its own recipe
(`model_section`). Amazon paper rows (`amazon_review_*_proxy.py`,
`*_baseline.py`): METHOD least_confidence (default), kcenters, entropy,
margin or random; the paper's schedule, 2% of the pool at random, then +8%
and +10% per round up to 50% (polarity: 72,000, then +288,000, +360,000
x 4); every selector is retrained from scratch each round and selects for
a VDCNN29. `quick`: a CPU plumbing run (3,000 documents, 1 epoch).
"""

from configs import common
from svp_jax import model_registry

# VDCNN's recipe: 15 epochs, halving the rate every 3; batch 128, wd 1e-4.
AMAZON_LR_SCHEDULE = ((3, 0.01), (3, 0.005), (3, 0.0025), (3, 0.00125),
                      (3, 0.000625))
# fastText's: 5 epochs at 0.05, decayed linearly to 0 step by step
# (svp_jax.train does the decay for fastText).
FASTTEXT_LR_SCHEDULE = ((5, 0.05),)
# The VDCNN variant of the configs: Conneau et al.'s best downsampling.
VDCNN_DOWNSAMPLING = 'maxpool'
# Plumbing size (`quick`): characters read, fastText's table.
QUICK_DOCUMENT_LENGTH = 256
QUICK_NUM_BUCKETS = 100_000

SELECTORS = {'fasttext': 'fasttext',
             'vdcnn9': f'vdcnn9-{VDCNN_DOWNSAMPLING}',
             'vdcnn29': f'vdcnn29-{VDCNN_DOWNSAMPLING}'}
TARGET = SELECTORS['vdcnn29']
# The README's Amazon core-set keeps 2,160,000 of polarity's 3,600,000.
CORESET_SUBSET = 0.6

TRAIN_ARGUMENTS = common.Arguments(
    model=common.Choice(model_registry.names('text'),
                        f'vdcnn9-{VDCNN_DOWNSAMPLING}', 'MODEL'),
    quick=common.FLAG)
ACTIVE_ARGUMENTS = common.Arguments(method=common.active_method(),
                                    quick=common.FLAG)
CORESET_ARGUMENTS = common.Arguments(
    proxy=common.Choice(tuple(SELECTORS), 'fasttext', 'PROXY'),
    method=common.coreset_method('entropy'), quick=common.FLAG)


def model_section(model, lr_schedule=None):
  """`model` (a name of model_registry.names('text')) with its own recipe.

  fastText: plain SGD (no momentum, weight decay or smoothing), batch 16
  (the step sums the examples' losses, so each example moves the weights
  as in fastText's one-at-a-time SGD), the library's 10M hash buckets, dim
  10. VDCNN: the reference's recipe on the library's 1014 characters. No
  augmentation for text.
  """
  if model == 'fasttext':
    section = common.model_section(
        model, lr_schedule or FASTTEXT_LR_SCHEDULE, batch_size=16,
        weight_decay=0.0, momentum=0.0, augment=False)
  else:
    section = common.model_section(model, lr_schedule or AMAZON_LR_SCHEDULE,
                                   weight_decay=1e-4, augment=False)
  # Its options at their defaults, written out so a run records them
  # (fastText: num_buckets, max_ids; VDCNN: document_length; what each
  # means: svp_jax.text_models).
  for option in model_registry.get(model).options:
    section.model[option.key] = option.default
  return section


def shrink_section(section, epochs, rename=True):
  """A text selector/target at CPU plumbing size, at its recipe's first lr.

  fastText gets a 100k-bucket table; VDCNN reads 256 characters and, with
  `rename`, becomes VDCNN9.
  """
  section.train.lr_schedule = ((epochs, section.train.lr_schedule[0][1]),)
  if section.model.name == 'fasttext':
    section.model.num_buckets = QUICK_NUM_BUCKETS
  else:
    if rename:
      section.model.name = SELECTORS['vdcnn9']
    section.model.document_length = QUICK_DOCUMENT_LENGTH


def make_active_quick(config):
  """CPU plumbing size: 3,000 documents, 200 then +200, +200; tiny models.

  1 epoch per model, 256 characters, a 100k-bucket fastText table.
  """
  common.shrink_active(config)
  for role in ('selector', 'target'):
    shrink_section(config[role], epochs=1)
  return config


def amazon_active_config(dataset, selector, arg):
  """A paper row on Amazon reviews: `selector` selecting for VDCNN29.

  `selector` is a key of SELECTORS ('vdcnn29' is the baseline); `arg` as
  ACTIVE_ARGUMENTS.
  """
  args = ACTIVE_ARGUMENTS.parse(arg)
  config = common.active_config(
      dataset, model_section(SELECTORS[selector]), model_section(TARGET),
      args.method)
  return make_active_quick(config) if args.quick else config


def train_config(dataset, arg):
  """Config for training one text model; `arg` as TRAIN_ARGUMENTS.

  MODEL defaults to vdcnn9-maxpool (the reference's `--arch` default),
  trained with its recipe from model_section. `quick`: 2,000 / 1,000
  documents, 2 epochs, 256 characters or 100k buckets.
  """
  args = TRAIN_ARGUMENTS.parse(arg)
  section = model_section(args.model)
  config = common.base_config(dataset, args.model, section.train.lr_schedule)
  config.model = section.model
  config.train = section.train
  if args.quick:
    config.data.max_train_examples = 2000
    config.data.max_test_examples = 1000
    shrink_section(config, epochs=2, rename=False)
  return config


def amazon_coreset_config(dataset, arg):
  """Core-set selection on Amazon reviews: a proxy keeps 60% for VDCNN29.

  `arg` as CORESET_ARGUMENTS; PROXY 'vdcnn29' is VDCNN29 selecting for
  itself. `quick`: 2,000 documents, keep 500, 1 epoch per model, tiny
  models.
  """
  args = CORESET_ARGUMENTS.parse(arg)
  config = common.coreset_config(
      dataset, model_section(SELECTORS[args.proxy]), model_section(TARGET),
      common.coreset_methods(args.method), subset_size=CORESET_SUBSET)
  if args.quick:
    common.shrink_coreset(config)
    for role in ('selector', 'target'):
      shrink_section(config[role], epochs=1)
  return config
