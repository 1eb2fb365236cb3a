"""Building blocks of the ImageNet configs (not a config: no get_config).

The reference recipe (docs/reference.md): 100 epochs, 5 warm-up epochs rising to
0.1, then 0.1, 0.01, 0.001, 0.0001 for 25, 30, 20, 20; batch 256; SGD
momentum 0.9; wd 1e-4; label smoothing 0.1; random-resized crops and flips.
`ROLE_batch=B` (`batch=B` for one model) trains at batch B with every rate
scaled by B / 256, as the reference's --batch-size B (--proxy-batch-size B)
with its default --scale-learning-rates; overriding train.batch_size on the
command line alone would not rescale the rates. Images are streamed from
TFDS's imagenet2012 (svp_jax/data/imagenet.py), decoded per batch at
data.image_size, prepared once from the ILSVRC2012 tars (BUILD.md,
"ImageNet"). `quick`: a plumbing run (64-pixel crops, 2,000 images).
"""

from configs import common
from svp_jax import data
from svp_jax import model_registry
from svp_jax.data import imagenet as imagenet_data

DATASET = imagenet_data.NAME
# 5 warm-up epochs rising linearly, then steps: 100 epochs at batch 256.
WARMUP = ((1, 0.0167), (1, 0.0333), (1, 0.05), (1, 0.0667), (1, 0.0833))
LR_SCHEDULE = WARMUP + ((25, 0.1), (30, 0.01), (20, 0.001), (20, 0.0001))
# The paper's fewer-epochs proxy schedule (45 epochs).
FEWER_EPOCHS_LR_SCHEDULE = WARMUP + ((25, 0.1), (15, 0.01))
BATCH_SIZE = 256
MODELS = tuple(m for m in model_registry.names('image')
               if m.startswith('resnet'))
# The README's ImageNet core-set keeps 60%: 768,700 of the 1,281,167 images.
CORESET_SUBSET = 0.6
QUICK_IMAGE_SIZE = 64
QUICK_BATCH_SIZE = 64

TRAIN_ARGUMENTS = common.Arguments(
    model=common.Choice(MODELS, 'resnet18', 'MODEL'),
    batch=common.batch_option(BATCH_SIZE), quick=common.FLAG)
_BATCHES = dict(selector_batch=common.batch_option(BATCH_SIZE),
                target_batch=common.batch_option(BATCH_SIZE), quick=common.FLAG)
ACTIVE_ARGUMENTS = common.Arguments(method=common.active_method(), **_BATCHES)
CORESET_ARGUMENTS = common.Arguments(method=common.coreset_method(),
                                     **_BATCHES)


def scale_lr(lr_schedule, batch_size):
  """The reference's --scale-learning-rates: every rate x batch / 256."""
  return tuple((epochs, lr * batch_size / 256) for epochs, lr in lr_schedule)


def model_section(model, lr_schedule=LR_SCHEDULE, batch_size=BATCH_SIZE):
  """The reference's ImageNet recipe: wd 1e-4, label smoothing 0.1, crops.

  The learning rates are scaled to `batch_size` here, once: overriding
  train.batch_size alone on the command line does not rescale them.
  """
  return common.model_section(model, scale_lr(lr_schedule, batch_size),
                              batch_size=batch_size, weight_decay=1e-4,
                              label_smoothing=0.1)


def stream(config):
  """Streams imagenet2012: each batch decoded at data.image_size."""
  config.data.in_memory = False
  # Crop size (the dataset's, 224); smaller only for plumbing runs.
  config.data.image_size = data.dataset_info(DATASET).image_shape[0]
  return config


def shrink(config, roles):
  """Plumbing size for the models of `roles`: 64-pixel crops, batch 64."""
  config.data.image_size = QUICK_IMAGE_SIZE
  for role in roles:
    config[role].train.batch_size = QUICK_BATCH_SIZE
    config[role].model.name = 'resnet18'
  return config


def active_config(selector, arg, *, selector_lr_schedule=LR_SCHEDULE):
  """A paper row: `selector` selecting for a ResNet50 target.

  The paper's schedule: 25,623 at random, then +102,493 and +128,117 per
  round. `arg` as ACTIVE_ARGUMENTS.
  """
  args = ACTIVE_ARGUMENTS.parse(arg)
  config = stream(common.active_config(
      DATASET,
      model_section(selector, selector_lr_schedule, args.selector_batch),
      model_section('resnet50', batch_size=args.target_batch), args.method))
  if args.quick:
    common.shrink_active(config)
    config.data.max_train_examples = 2000
    for role in ('selector', 'target'):
      config[role].train.lr_schedule = ((1, 0.05),)
    shrink(config, ('selector', 'target'))
  return config


def train_config(arg):
  """One model with the reference's recipe; `arg` as TRAIN_ARGUMENTS.

  MODEL defaults to resnet18 (the reference's --arch default). `quick`:
  64-pixel crops, 2,000 / 500 images, 2 epochs at batch 64.
  """
  args = TRAIN_ARGUMENTS.parse(arg)
  config = stream(common.base_config(DATASET, args.model, ()))
  config.train = model_section(args.model, batch_size=args.batch).train
  if args.quick:
    common.make_quick(config, train_examples=2000, test_examples=500)
    config.data.image_size = QUICK_IMAGE_SIZE
    config.train.batch_size = QUICK_BATCH_SIZE
  return config


def coreset_config(arg):
  """ResNet18 keeps 60% for ResNet50; `arg` as CORESET_ARGUMENTS.

  The proxy trains the reference's 100 epochs on the whole training split.
  `quick`: 2,000 images, keep 500, 1 epoch per model at batch 64, ResNet18
  both.
  """
  args = CORESET_ARGUMENTS.parse(arg)
  config = stream(common.coreset_config(
      DATASET, model_section('resnet18', batch_size=args.selector_batch),
      model_section('resnet50', batch_size=args.target_batch),
      common.coreset_methods(args.method), subset_size=CORESET_SUBSET))
  if args.quick:
    common.make_coreset_quick(config)
    shrink(config, ('selector', 'target'))
  return config
