"""Building blocks of the CIFAR10/100 configs (not a config: no get_config).

The reference recipe (docs/reference.md): 181 epochs at 1@0.01, 90@0.1,
45@0.01, 45@0.001; batch 128; SGD momentum 0.9; weight decay 5e-4; crop +
flip. Paper rows (`*_proxy.py`, `*_baseline.py`): the paper's schedule,
2% of the 50,000-image pool at random (1,000), then +8% (4,000) and +10%
(5,000) per round up to 50%; the selector is retrained from scratch each
round, the target (a ResNet164 with the full recipe) trained at every
budget. `quick` makes any of them a CPU plumbing run (preact8 / preact20).
"""

from configs import common
from svp_jax import model_registry

# Piecewise-constant learning rates as ((epochs, lr), ...), set per epoch.
LR_SCHEDULE = ((1, 0.01), (90, 0.1), (45, 0.01), (45, 0.001))  # 181 ep.
# The fewer-epochs proxy of the paper (50 epochs).
FEWER_EPOCHS_LR_SCHEDULE = ((1, 0.01), (45, 0.1), (4, 0.01))
# The pre-activation ResNets of the paper (preact8 is for tests only).
MODELS = tuple(m for m in model_registry.names('image')
               if m.startswith('preact') and m != 'preact8')
TARGET = 'preact164'

TRAIN_ARGUMENTS = common.Arguments(
    model=common.Choice(MODELS, 'preact20', 'MODEL'), quick=common.FLAG)
ACTIVE_ARGUMENTS = common.Arguments(method=common.active_method(),
                                    quick=common.FLAG)
CORESET_ARGUMENTS = common.Arguments(method=common.coreset_method(),
                                     quick=common.FLAG)


def target_section():
  """The paper's target: ResNet164 with the full recipe."""
  return common.model_section(TARGET, LR_SCHEDULE)


def train_config(dataset, arg):
  """Config for training one CIFAR model; `arg` as TRAIN_ARGUMENTS."""
  args = TRAIN_ARGUMENTS.parse(arg)
  config = common.base_config(dataset, args.model, LR_SCHEDULE)
  return common.make_quick(config) if args.quick else config


def active_config(dataset, selector_model, arg, *,
                  selector_lr_schedule=LR_SCHEDULE):
  """A paper row: `selector_model` selecting for a ResNet164 target."""
  args = ACTIVE_ARGUMENTS.parse(arg)
  config = common.active_config(
      dataset, common.model_section(selector_model, selector_lr_schedule),
      target_section(), args.method)
  return common.make_active_quick(config) if args.quick else config


def coreset_config(dataset, arg):
  """A ResNet20 proxy keeps 50% for a ResNet164; `arg` as CORESET_ARGUMENTS."""
  args = CORESET_ARGUMENTS.parse(arg)
  config = common.coreset_config(
      dataset, common.model_section('preact20', LR_SCHEDULE),
      target_section(), common.coreset_methods(args.method), subset_size=0.5)
  return common.make_coreset_quick(config) if args.quick else config
