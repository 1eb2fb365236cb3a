"""ImageNet core-set via proxy: ResNet18 keeps 60% for a ResNet50 target.

  python main.py --config=configs/imagenet_coreset.py[:ARG] \
      --config.data.data_dir=DIR [--config.data.manual_dir=DIR_WITH_TARS]

ARG: [METHOD|all][,selector_batch=B][,target_batch=B][,quick]. METHOD:
forgetting_events (default, the README's), least_confidence, entropy,
margin, kcenters (seeded with 1,000 random points, counted in the subset)
or random; `all` ranks by all six from one trained proxy (a target per
method). The proxy trains the reference's 100 epochs on the whole training
split and keeps 768,700 of the 1,281,167 images (the README's
`--subset 768700`); a ResNet50 trains from scratch on them. Both use the
reference recipe (configs/imagenet.py, model_section); `ROLE_batch=B`
trains that model at batch B with every rate scaled by B / 256 (the
reference's --proxy-batch-size B, --batch-size B). Images are streamed from
TFDS's imagenet2012 (BUILD.md, "ImageNet"). `quick`: a plumbing run
(64-pixel crops, 2,000-image pool, keep 500, 1 epoch per model).
"""

from configs import imagenet

ARGUMENTS = imagenet.CORESET_ARGUMENTS


def get_config(arg=None):
  return imagenet.coreset_config(arg)
