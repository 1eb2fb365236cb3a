"""Amazon Review Polarity, SVP: a VDCNN9 proxy selects for a VDCNN29 target.

  python main.py --config=configs/amazon_review_polarity_vdcnn9_proxy.py[:METHOD][,quick] \
      --config.data.manual_dir=DIR

DIR holds Zhang et al.'s amazon_review_polarity_csv.tar.gz or its CSVs.

METHOD: least_confidence (default), kcenters, entropy, margin or random.
Schedule (the paper's): 2% of the pool at random, then +8% and +10% per round
up to 50%; every selector is retrained from scratch each round. Models and
recipes: configs/text.py (model_section); the data: BUILD.md
("Text datasets"). `quick`: a CPU plumbing run (3,000 documents, 1 epoch).
"""

from configs import text

ARGUMENTS = text.ACTIVE_ARGUMENTS


def get_config(arg=None):
  return text.amazon_active_config('amazon_review_polarity', 'vdcnn9', arg)
