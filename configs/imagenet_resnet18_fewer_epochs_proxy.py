"""ImageNet, SVP: ResNet18 trained 45 epochs selects for ResNet50 (100).

  python main.py --config=configs/imagenet_resnet18_fewer_epochs_proxy.py[:ARG] \
      --config.data.data_dir=DIR [--config.data.manual_dir=DIR_WITH_TARS]

ARG: [METHOD][,selector_batch=B][,target_batch=B][,quick].
METHOD: least_confidence (default), kcenters, entropy, margin or random.
`selector_batch=B`, `target_batch=B`: that model trains at batch B with
every rate scaled by B / 256 (the reference's --proxy-batch-size B,
--batch-size B with its default --scale-learning-rates).
The paper's schedule (2% of the 1,281,167 images at random, then +8% and
+10% per round) and recipe (batch 256, 5 warm-up epochs, label smoothing
0.1, wd 1e-4, random-resized crops; configs/imagenet.py). Images are streamed
from TFDS's imagenet2012, prepared once from the ILSVRC2012 tars (BUILD.md,
"ImageNet"). `quick`: a plumbing run (64-pixel crops, 2,000 images).
"""

from configs import imagenet

ARGUMENTS = imagenet.ACTIVE_ARGUMENTS


def get_config(arg=None):
  return imagenet.active_config(
      'resnet18', arg, selector_lr_schedule=imagenet.FEWER_EPOCHS_LR_SCHEDULE)
