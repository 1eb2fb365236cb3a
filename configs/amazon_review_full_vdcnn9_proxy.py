"""Amazon Review Full, SVP: a VDCNN9 proxy selects for a VDCNN29 target.

  python main.py --config=configs/amazon_review_full_vdcnn9_proxy.py[:METHOD][,quick] \
      --config.data.manual_dir=DIR

DIR holds Zhang et al.'s amazon_review_full_csv.tar.gz or its CSVs.

METHOD (least_confidence by default), the paper's schedule, the recipes
and `quick`: configs/text.py.
"""

from configs import text

ARGUMENTS = text.ACTIVE_ARGUMENTS


def get_config(arg=None):
  return text.amazon_active_config('amazon_review_full', 'vdcnn9', arg)
