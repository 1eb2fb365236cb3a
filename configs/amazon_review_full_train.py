"""Trains one text model on Amazon Review Full with its reference recipe.

  python main.py --config=configs/amazon_review_full_train.py:MODEL[,quick] \
      --config.data.manual_dir=DIR

DIR holds Zhang et al.'s amazon_review_full_csv.tar.gz or its CSVs.

MODEL: vdcnn{9,17,29}-{conv,maxpool} (default vdcnn9-maxpool, the reference's
default) or fasttext. VDCNN: 15 epochs halving the rate every 3 from 0.01,
batch 128, SGD momentum 0.9, weight decay 1e-4, 1014 characters. fastText:
5 epochs at 0.05 decayed linearly to 0, plain SGD, 10M hash buckets.
Models and recipes: configs/text.py (model_section); the data:
BUILD.md ("Text datasets"). `quick`: a CPU plumbing run (2,000 documents,
2 epochs, 256 characters or 100k buckets).
"""

from configs import text

ARGUMENTS = text.TRAIN_ARGUMENTS


def get_config(arg=None):
  return text.train_config('amazon_review_full', arg)
