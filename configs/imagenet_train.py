"""Trains one ResNet on ImageNet with the reference recipe.

  python main.py --config=configs/imagenet_train.py:resnet50[,batch=B][,quick] \
      --config.data.data_dir=DIR [--config.data.manual_dir=DIR_WITH_TARS]

MODEL: resnet18 (default, the reference's --arch default) or resnet50.
Recipe (docs/reference.md): 100 epochs, 5 warm-up epochs rising to 0.1, then
0.1, 0.01, 0.001, 0.0001 for 25, 30, 20, 20; batch 256; SGD momentum 0.9;
wd 1e-4; label smoothing 0.1; random-resized crops and flips.
`batch=B`: batch B with every rate scaled by B / 256 (the reference's
--batch-size B with its default --scale-learning-rates). Images are
streamed from TFDS's imagenet2012, prepared once from the ILSVRC2012 tars
(BUILD.md, "ImageNet"). `quick`: a plumbing run (64-pixel crops, 2,000
images, 2 epochs).
"""

from configs import imagenet

ARGUMENTS = imagenet.TRAIN_ARGUMENTS


def get_config(arg=None):
  return imagenet.train_config(arg)
