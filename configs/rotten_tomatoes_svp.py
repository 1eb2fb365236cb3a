"""SVP on real Rotten Tomatoes snippets: fastText selects for VDCNN9 (CPU size).

  python -m svp_jax.data.rotten_tomatoes --out_dir=DIR    # once: the CSVs
  python main.py --config=configs/rotten_tomatoes_svp.py[:METHOD][,fasttext_target][,quick] \
      --config.data.manual_dir=DIR

The offline stand-in for Amazon Review Polarity (docs/data.md), read by the same
builder. Pool: the 10,246 training snippets; test: 2,562. 1,000 labeled at
random, then +1,000 and +2,000 (9.8% -> 19.5% -> 39% of the pool); the
target is trained from scratch and tested at 2,000 and 4,000 labels.
Selector: fastText with the reference's settings (dim 10, 10M buckets, word
bigrams, linear decay, plain SGD) but lr 0.5 for 10 epochs instead of 0.05
for 5, which is sized for millions of documents and underfits thousands.
Measured on this split (test accuracy, 2 seeds): 1,000 random labels 0.675
(lr 0.05 x 25 epochs: 0.591), 4,000 labels 0.736 (0.720). Target: VDCNN9
(max-pool) with the reference's VDCNN recipe (15 epochs, halved every 3,
batch 128, wd 1e-4) on 256 characters, the longest snippet (1014 would be
three quarters padding). `fasttext_target`: fastText selects for itself
(the same recipe as target), a model that does learn from a few thousand
snippets. Study: scripts/study_rotten_tomatoes_svp.sh.
"""

from configs import common
from configs import text

FASTTEXT_LR_SCHEDULE = ((10, 0.5),)
TARGET = text.SELECTORS['vdcnn9']
DOCUMENT_LENGTH = 256
ARGUMENTS = common.Arguments(method=common.active_method(),
                             fasttext_target=common.FLAG, quick=common.FLAG)


def get_config(arg=None):
  args = ARGUMENTS.parse(arg)
  selector = text.model_section('fasttext', FASTTEXT_LR_SCHEDULE)
  if args.fasttext_target:
    target = text.model_section('fasttext', FASTTEXT_LR_SCHEDULE)
  else:
    target = text.model_section(TARGET)
    target.model.document_length = DOCUMENT_LENGTH
  config = common.active_config('rotten_tomatoes', selector, target,
                                args.method, initial_subset=1000.0,
                                rounds=(1000.0, 2000.0))
  return text.make_active_quick(config) if args.quick else config
