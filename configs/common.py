"""Building blocks shared by the experiment configs (recipes from REFERENCE.md)."""

import ml_collections

from svp_jax import methods as method_registry  # 'methods' names tuples here

# Piecewise-constant learning rates as ((epochs, lr), ...), set per epoch.
CIFAR_LR_SCHEDULE = ((1, 0.01), (90, 0.1), (45, 0.01), (45, 0.001))  # 181 ep.


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
  return ml_collections.ConfigDict(dict(
      name=name,
      # '' means TFDS's default (TFDS_DATA_DIR or ~/tensorflow_datasets).
      data_dir='',
      # '' means the dataset's default place for local files (BUILD.md).
      manual_dir='',
      # Let TFDS download and prepare (needs internet; off so that a missing
      # dataset fails at once instead of after minutes of retries).
      download=False,
      # Use only the first N examples of a split (0: all); for quick runs.
      max_train_examples=0,
      max_test_examples=0,
      # Decode every image into host memory at the start (fast for small
      # datasets). False: decode each batch's images when it is fed, so each
      # process of a multi-host run reads only the rows it feeds.
      in_memory=True,
  ))


def base_config(dataset, model, lr_schedule, **recipe):
  """A single-model training run: the foundation's main job."""
  config = ml_collections.ConfigDict()
  config.mode = 'train'
  config.seed = 0
  config.data = data_config(dataset)
  config.model = ml_collections.ConfigDict(dict(name=model))
  config.train = train_recipe(lr_schedule, **recipe)
  return config


def parse_arg(arg, allowed, default):
  """Splits a 'NAME[,quick]' config argument; returns (name, quick).

  NAME (a model or a selection method) must be one of `allowed`; it defaults
  to `default`.
  """
  parts = [p for p in (arg or '').split(',') if p]
  quick = 'quick' in parts
  names = [p for p in parts if p != 'quick']
  if len(names) > 1 or (names and names[0] not in allowed):
    raise ValueError(f'config argument {arg!r}: expected NAME[,quick] with '
                     f'NAME one of {allowed}')
  return (names[0] if names else default), quick


def make_quick(config, epochs=2, train_examples=2000, test_examples=1000):
  """Shrinks a config to a CPU-sized plumbing run (numbers not meaningful)."""
  config.train.lr_schedule = ((epochs, 0.05),)
  config.data.max_train_examples = train_examples
  config.data.max_test_examples = test_examples
  return config


CIFAR_MODELS = ('preact20', 'preact56', 'preact110', 'preact164')


def cifar_train_config(dataset, arg):
  """Config for training one CIFAR model; `arg` is 'MODEL[,quick]'."""
  model, quick = parse_arg(arg, CIFAR_MODELS, 'preact20')
  config = base_config(dataset, model, CIFAR_LR_SCHEDULE)
  return make_quick(config) if quick else config


def model_section(model, lr_schedule, **recipe):
  """A selector or target: the model and its full training recipe."""
  return ml_collections.ConfigDict(dict(
      model=dict(name=model), train=train_recipe(lr_schedule, **recipe)))


# The paper's schedule: 2% of the pool at random, then +8%, then +10% per
# round up to 50% (CIFAR: 1,000 then +4,000, +5,000 x 4).
PAPER_INITIAL_SUBSET = 0.02
PAPER_ROUNDS = (0.08, 0.1, 0.1, 0.1, 0.1)

# The fewer-epochs CIFAR proxy of the paper (50 epochs).
CIFAR_FEWER_EPOCHS_LR_SCHEDULE = ((1, 0.01), (45, 0.1), (4, 0.01))


def active_config(dataset, selector, target, method,
                  initial_subset=PAPER_INITIAL_SUBSET, rounds=PAPER_ROUNDS):
  """An active-learning run; `selector`/`target` come from model_section."""
  config = ml_collections.ConfigDict()
  config.mode = 'active'
  config.seed = 0
  config.data = data_config(dataset)
  config.selector = selector
  config.target = target
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


def parse_active_arg(arg):
  """'[METHOD][,quick]' -> (method, quick); method defaults to least confidence."""
  return parse_arg(arg, method_registry.names('active'), 'least_confidence')


def cifar_active_config(dataset, selector_model, arg, *,
                        selector_lr_schedule=CIFAR_LR_SCHEDULE):
  """A paper row: `selector_model` selecting for a preact164 target."""
  method, quick = parse_active_arg(arg)
  config = active_config(
      dataset, model_section(selector_model, selector_lr_schedule),
      model_section('preact164', CIFAR_LR_SCHEDULE), method)
  if quick:
    make_active_quick(config)
  return config


def make_active_quick(config):
  """CPU plumbing size: 3,000-image pool, 200 then +200, +200; 1 epoch each."""
  config.data.max_train_examples = 3000
  config.data.max_test_examples = 500
  config.selection.initial_subset = 200.0
  config.selection.rounds = (200.0, 200.0)
  for role in ('selector', 'target'):
    config[role].train.lr_schedule = ((1, 0.05),)
  baseline = config.selector.model.name == config.target.model.name
  config.selector.model.name = 'preact8'
  config.target.model.name = 'preact8' if baseline else 'preact20'
  return config


def coreset_config(dataset, proxy, target, methods, subset_size):
  """Core-set selection: one proxy on all data keeps a subset per method."""
  config = ml_collections.ConfigDict()
  config.mode = 'coreset'
  config.seed = 0
  config.data = data_config(dataset)
  config.selector = proxy
  config.target = target
  config.coreset = ml_collections.ConfigDict(dict(
      # One or more core-set methods of svp_jax.methods. All rank from one trained proxy, and
      # the target trains on each method's subset: one run compares them.
      methods=tuple(methods),
      # A fraction of the pool in (0, 1) or a whole number of examples.
      subset_size=subset_size,
      # k-centers starts from this many random points (part of the subset).
      kcenters_seeds=1000,
  ))
  return config


def parse_coreset_arg(arg, default='forgetting_events'):
  """'[METHOD|all][,quick]' -> (methods, quick); METHOD defaults to `default`.

  `all` compares every core-set method of svp_jax.methods in one run, in
  the registry's order.
  """
  every = method_registry.names('coreset')
  name, quick = parse_arg(arg, every + ('all',), default)
  return (every if name == 'all' else (name,)), quick


def make_coreset_quick(config):
  """CPU plumbing size: 2,000-image pool, keep 500, 1 epoch per model."""
  config.data.max_train_examples = 2000
  config.data.max_test_examples = 500
  config.coreset.subset_size = 500.0
  config.coreset.kcenters_seeds = 100
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
  return config


# ----------------------------------------------------------------------------
# Text (Amazon reviews; Rotten Tomatoes offline).

# VDCNN's recipe: 15 epochs, halving the rate every 3; batch 128, wd 1e-4.
AMAZON_LR_SCHEDULE = ((3, 0.01), (3, 0.005), (3, 0.0025), (3, 0.00125),
                      (3, 0.000625))
# fastText's: 5 epochs at 0.05, decayed linearly to 0 step by step
# (svp_jax.train does the decay for fastText).
FASTTEXT_LR_SCHEDULE = ((5, 0.05),)
# The VDCNN variant of the configs: Conneau et al.'s best downsampling.
VDCNN_DOWNSAMPLING = 'maxpool'


def text_model_section(model, lr_schedule=None):
  """`model` ('fasttext' or 'vdcnn<depth>-<variant>') with its own recipe.

  fastText: plain SGD (no momentum, weight decay or smoothing), batch 16
  (the step sums the examples' losses, so each example moves the weights
  as in fastText's one-at-a-time SGD), 10M hash buckets, dim 10. VDCNN: the
  reference's recipe on 1014 characters. No augmentation for text.
  """
  if model == 'fasttext':
    section = model_section(model, lr_schedule or FASTTEXT_LR_SCHEDULE,
                            batch_size=16, weight_decay=0.0, momentum=0.0,
                            augment=False)
    section.model.num_buckets = 10_000_000
    # n-gram ids kept per document (0: as many as the longest has).
    section.model.max_ids = 0
  else:
    section = model_section(model, lr_schedule or AMAZON_LR_SCHEDULE,
                            weight_decay=1e-4, augment=False)
    section.model.document_length = 1014
  return section


AMAZON_SELECTORS = {'fasttext': 'fasttext',
                    'vdcnn9': f'vdcnn9-{VDCNN_DOWNSAMPLING}',
                    'vdcnn29': f'vdcnn29-{VDCNN_DOWNSAMPLING}'}


def amazon_active_config(dataset, selector, arg):
  """A paper row on Amazon reviews: `selector` selecting for VDCNN29.

  `selector` is a key of AMAZON_SELECTORS ('vdcnn29' is the baseline); the
  schedule is the paper's (polarity: 72,000, then +288,000, +360,000 x 4).
  """
  method, quick = parse_active_arg(arg)
  config = active_config(
      dataset, text_model_section(AMAZON_SELECTORS[selector]),
      text_model_section(AMAZON_SELECTORS['vdcnn29']), method)
  if quick:
    make_text_active_quick(config)
  return config


def make_text_active_quick(config):
  """CPU plumbing size: 3,000 documents, 200 then +200, +200; tiny models.

  1 epoch per model, 256 characters, a 100k-bucket fastText table.
  """
  config.data.max_train_examples = 3000
  config.data.max_test_examples = 500
  config.selection.initial_subset = 200.0
  config.selection.rounds = (200.0, 200.0)
  for role in ('selector', 'target'):
    shrink_text_section(config[role], epochs=1)
  return config


def shrink_text_section(section, epochs, rename=True):
  """A text selector/target at CPU plumbing size, at its recipe's first lr.

  fastText gets a 100k-bucket table; VDCNN reads 256 characters and, with
  `rename`, becomes VDCNN9.
  """
  section.train.lr_schedule = ((epochs, section.train.lr_schedule[0][1]),)
  if section.model.name == 'fasttext':
    section.model.num_buckets = 100_000
  else:
    if rename:
      section.model.name = f'vdcnn9-{VDCNN_DOWNSAMPLING}'
    section.model.document_length = 256


TEXT_MODELS = tuple(f'vdcnn{depth}-{variant}' for depth in (9, 17, 29)
                    for variant in ('conv', 'maxpool')) + ('fasttext',)


def amazon_train_config(dataset, arg):
  """Config for training one text model; `arg` is 'MODEL[,quick]'.

  MODEL is one of TEXT_MODELS, default vdcnn9-maxpool (the reference's
  `--arch` default), trained with its recipe from text_model_section.
  `quick`: 2,000 / 1,000 documents, 2 epochs, 256 characters or 100k buckets.
  """
  model, quick = parse_arg(arg, TEXT_MODELS, 'vdcnn9-maxpool')
  section = text_model_section(model)
  config = base_config(dataset, model, section.train.lr_schedule)
  config.model = section.model
  config.train = section.train
  if quick:
    config.data.max_train_examples = 2000
    config.data.max_test_examples = 1000
    shrink_text_section(config, epochs=2, rename=False)
  return config


# The README's Amazon core-set keeps 2,160,000 of polarity's 3,600,000.
AMAZON_CORESET_SUBSET = 0.6


def parse_amazon_coreset_arg(arg):
  """'[PROXY][,METHOD|all][,quick]' -> (proxy, methods, quick).

  PROXY is a key of AMAZON_SELECTORS (default fasttext); METHOD defaults to
  entropy, the README's Amazon core-set method.
  """
  parts = [p for p in (arg or '').split(',') if p]
  proxies = [p for p in parts if p in AMAZON_SELECTORS]
  every = method_registry.names('coreset')
  known = tuple(AMAZON_SELECTORS) + every + ('all', 'quick')
  if len(proxies) > 1 or any(p not in known for p in parts):
    raise ValueError(f'config argument {arg!r}: expected '
                     f'[PROXY][,METHOD|all][,quick] with PROXY one of '
                     f'{tuple(AMAZON_SELECTORS)} and METHOD one of '
                     f'{every}')
  methods, quick = parse_coreset_arg(
      ','.join(p for p in parts if p not in AMAZON_SELECTORS), 'entropy')
  return (proxies[0] if proxies else 'fasttext'), methods, quick


def amazon_coreset_config(dataset, arg):
  """Core-set selection on Amazon reviews: a proxy keeps 60% for VDCNN29.

  `arg` as parse_amazon_coreset_arg; 'vdcnn29' is VDCNN29 selecting for
  itself. `quick`: 2,000 documents, keep 500, 1 epoch per model, tiny models.
  """
  proxy, methods, quick = parse_amazon_coreset_arg(arg)
  config = coreset_config(
      dataset, text_model_section(AMAZON_SELECTORS[proxy]),
      text_model_section(AMAZON_SELECTORS['vdcnn29']), methods,
      subset_size=AMAZON_CORESET_SUBSET)
  if quick:
    config.data.max_train_examples = 2000
    config.data.max_test_examples = 500
    config.coreset.subset_size = 500.0
    config.coreset.kcenters_seeds = 100
    for role in ('selector', 'target'):
      shrink_text_section(config[role], epochs=1)
  return config


# ----------------------------------------------------------------------------
# ImageNet (streamed; svp_jax/data/imagenet.py).

# 5 warm-up epochs rising linearly, then steps: 100 epochs at batch 256.
IMAGENET_WARMUP = ((1, 0.0167), (1, 0.0333), (1, 0.05), (1, 0.0667),
                   (1, 0.0833))
IMAGENET_LR_SCHEDULE = IMAGENET_WARMUP + ((25, 0.1), (30, 0.01), (20, 0.001),
                                          (20, 0.0001))
# The paper's fewer-epochs proxy schedule (45 epochs).
IMAGENET_FEWER_EPOCHS_LR_SCHEDULE = IMAGENET_WARMUP + ((25, 0.1), (15, 0.01))
IMAGENET_BATCH_SIZE = 256


def scale_lr(lr_schedule, batch_size):
  """The reference's --scale-learning-rates: every rate x batch / 256."""
  return tuple((epochs, lr * batch_size / 256) for epochs, lr in lr_schedule)


def imagenet_model_section(model, lr_schedule=IMAGENET_LR_SCHEDULE,
                           batch_size=IMAGENET_BATCH_SIZE):
  """The reference's ImageNet recipe: wd 1e-4, label smoothing 0.1, crops.

  The learning rates are scaled to `batch_size` here, once: overriding
  train.batch_size alone on the command line does not rescale them.
  """
  return model_section(model, scale_lr(lr_schedule, batch_size),
                       batch_size=batch_size, weight_decay=1e-4,
                       label_smoothing=0.1)


def split_batch_sizes(arg, names):
  """'...,NAME=B,...' -> (the argument without them, {NAME: B}).

  NAME is one of `names` ('batch' for a single model; 'selector_batch',
  'target_batch'): a training batch size B with every learning rate scaled
  by B / 256, as the reference's --batch-size B (and --proxy-batch-size)
  with its default --scale-learning-rates. Overriding train.batch_size on
  the command line would not rescale the rates.
  """
  rest, sizes = [], {}
  for part in (arg or '').split(','):
    name, equals, value = part.partition('=')
    if not equals:
      rest.append(part)
    elif name in names and value.isdigit() and int(value) > 0:
      sizes[name] = int(value)
    else:
      raise ValueError(f'config argument {arg!r}: {part!r} is not NAME=B '
                       f'with NAME one of {tuple(names)} and B > 0')
  return ','.join(p for p in rest if p), sizes


def imagenet_data(config):
  """Streams imagenet2012: each batch decoded at data.image_size."""
  config.data.in_memory = False
  # Crop size (224); smaller only for plumbing runs.
  config.data.image_size = 224
  return config


def imagenet_active_config(selector, arg, *,
                           selector_lr_schedule=IMAGENET_LR_SCHEDULE):
  """A paper row on ImageNet: `selector` selecting for a ResNet50 target.

  The paper's schedule: 25,623 at random, then +102,493 and +128,117 per
  round. Images are streamed: decoded per batch at data.image_size. `arg`:
  '[METHOD][,selector_batch=B][,target_batch=B][,quick]' (split_batch_sizes).
  """
  arg, batch = split_batch_sizes(arg, ('selector_batch', 'target_batch'))
  method, quick = parse_active_arg(arg)
  config = imagenet_data(active_config(
      'imagenet2012',
      imagenet_model_section(
          selector, selector_lr_schedule,
          batch.get('selector_batch', IMAGENET_BATCH_SIZE)),
      imagenet_model_section(
          'resnet50', batch_size=batch.get('target_batch',
                                           IMAGENET_BATCH_SIZE)),
      method))
  if quick:
    make_imagenet_quick(config)
  return config


def make_imagenet_quick(config):
  """Plumbing size: 64-pixel crops, 2,000 images, 200 then +200, +200."""
  config.data.image_size = 64
  config.data.max_train_examples = 2000
  config.data.max_test_examples = 500
  config.selection.initial_subset = 200.0
  config.selection.rounds = (200.0, 200.0)
  for role in ('selector', 'target'):
    config[role].train.lr_schedule = ((1, 0.05),)
    config[role].train.batch_size = 64
  config.selector.model.name = 'resnet18'
  config.target.model.name = 'resnet18'
  return config


IMAGENET_MODELS = ('resnet18', 'resnet50')


def imagenet_train_config(arg):
  """One ImageNet model with the reference's recipe (100 epochs, batch 256).

  `arg`: '[MODEL][,batch=B][,quick]'; MODEL one of IMAGENET_MODELS, default
  resnet18 (the reference's --arch default); `batch=B` as split_batch_sizes.
  `quick`: 64-pixel crops, 2,000 / 500 images, 2 epochs at batch 64.
  """
  arg, batch = split_batch_sizes(arg, ('batch',))
  model, quick = parse_arg(arg, IMAGENET_MODELS, 'resnet18')
  section = imagenet_model_section(
      model, batch_size=batch.get('batch', IMAGENET_BATCH_SIZE))
  config = imagenet_data(base_config('imagenet2012', model, ()))
  config.train = section.train
  if quick:
    make_quick(config, train_examples=2000, test_examples=500)
    config.data.image_size = 64
    config.train.batch_size = 64
  return config


# The README's ImageNet core-set keeps 60%: 768,700 of the 1,281,167 images.
IMAGENET_CORESET_SUBSET = 0.6


def imagenet_coreset_config(arg):
  """Core-set selection on ImageNet: ResNet18 keeps 60% for ResNet50.

  `arg`: '[METHOD|all][,selector_batch=B][,target_batch=B][,quick]'; METHOD
  defaults to forgetting events (the README's); batches as
  split_batch_sizes. The proxy trains the reference's 100 epochs on the
  whole training split. `quick`: 64-pixel crops, 2,000 images, keep 500,
  1 epoch per model at batch 64, ResNet18 both.
  """
  arg, batch = split_batch_sizes(arg, ('selector_batch', 'target_batch'))
  methods, quick = parse_coreset_arg(arg)
  config = imagenet_data(coreset_config(
      'imagenet2012',
      imagenet_model_section(
          'resnet18', batch_size=batch.get('selector_batch',
                                           IMAGENET_BATCH_SIZE)),
      imagenet_model_section(
          'resnet50', batch_size=batch.get('target_batch',
                                           IMAGENET_BATCH_SIZE)),
      methods, subset_size=IMAGENET_CORESET_SUBSET))
  if quick:
    make_coreset_quick(config)
    config.data.image_size = 64
    for role in ('selector', 'target'):
      config[role].train.batch_size = 64
      config[role].model.name = 'resnet18'
  return config
