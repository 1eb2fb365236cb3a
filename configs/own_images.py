"""SVP on your own images: a folder of images or an .npz of arrays.

  python main.py --config=configs/own_images.py[:METHOD][,baseline][,quick] \
      --config.data.path=ROOT

ROOT is a folder `ROOT/<class name>/*.png|jpg|jpeg|bmp|gif|webp` (optionally
`ROOT/train/...` and `ROOT/test/...`; else 20% of each class is held out as
the test split with config.seed), or an .npz with x_train, y_train (and
x_test, y_test, class_names); README, "On your own data". Images of another
size: --config.data.image_size=32 resizes them all.

A pre-activation ResNet8 (15 epochs) selects by least confidence (or
METHOD) for a pre-activation ResNet20 (15 epochs) on the paper's schedule:
2% labeled at random, then +8% and +10% per round up to 50%. `baseline`:
the ResNet20 selects for itself. No augmentation by default: a flip changes
what a digit or a letter is; --config.selector.train.augment=True and
--config.target.train.augment=True add CIFAR's crop and flip for photos.
"""

from configs import common
from configs import fashion_mnist

SELECTORS = {'proxy': 'preact8', 'baseline': fashion_mnist.TARGET}
ARGUMENTS = common.Arguments(
    method=common.active_method(),
    selector=common.Choice(tuple(SELECTORS), 'proxy', 'SELECTOR'),
    label=common.FLAG, quick=common.FLAG)


def get_config(arg=None):
  args = ARGUMENTS.parse(arg)
  sections = [common.model_section(model, fashion_mnist.SVP_LR_SCHEDULE,
                                   augment=False)
              for model in (SELECTORS[args.selector], fashion_mnist.TARGET)]
  config = common.own_files_active_config(*sections, args.method)
  if args.quick:
    common.make_active_quick(config)
  return common.make_labeling(config) if args.label else config
