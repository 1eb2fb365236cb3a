"""ImageNet, SVP: ResNet50 selects for itself (the baseline).

  python main.py --config=configs/imagenet_resnet50_baseline.py[:ARG] \
      --config.data.data_dir=DIR [--config.data.manual_dir=DIR_WITH_TARS]

ARG: [METHOD][,selector_batch=B][,target_batch=B][,quick].
METHOD: least_confidence (default), kcenters, entropy, margin or random.
The paper's schedule (2% of the 1,281,167 images at random, then +8% and
+10% per round); the recipe, `ROLE_batch=B` and `quick`: configs/imagenet.py.
"""

from configs import imagenet

ARGUMENTS = imagenet.ACTIVE_ARGUMENTS


def get_config(arg=None):
  return imagenet.active_config('resnet50', arg)
