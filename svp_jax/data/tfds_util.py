"""What every TFDS-backed dataset family shares: folders, preparing, reading.

A split is prepared once as array_record in `data_dir` and then read with
TFDS's random-access data source, which needs neither TensorFlow nor network.
TFDS itself is imported on first use only (`tfds()`): it takes a second to
import, and `svp_jax.data` is imported by code (and tests) that never read a
dataset.
"""

from collections.abc import Iterator, Sequence
import hashlib
import os
import shutil
import socket
import time
from typing import Any
import urllib.parse
import urllib.request

from absl import logging

from svp_jax.data.errors import DataError

# Examples decoded per data-source call: large enough to amortise the call,
# small enough that the decoded Python objects stay a few MB.
READ_CHUNK = 4096
# What to install to prepare datasets whose builders need TensorFlow.
PREPARE_HINT = 'pip install -r requirements-prepare.txt'
# config.data.download: True, False, or 'auto': download when the dataset's
# download host answers within PROBE_SECONDS (a TPU VM: yes; a machine
# without internet: no, at once, where TFDS itself retries for minutes).
DOWNLOAD_CHOICES = (True, False, 'auto')
PROBE_SECONDS = 3.0


def default_data_dir() -> str:
  """TFDS's default: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
  return os.environ.get('TFDS_DATA_DIR') or os.path.join(
      os.path.expanduser('~'), 'tensorflow_datasets')


def resolve_dirs(data_dir: str | None, manual_dir: str | None
                 ) -> tuple[str, str | None]:
  """(data_dir or the default, manual_dir or None), with '~' expanded."""
  data_dir = os.path.expanduser(data_dir or default_data_dir())
  return data_dir, os.path.expanduser(manual_dir) if manual_dir else None


def default_manual_dir(data_dir: str) -> str:
  """TFDS's default manual_dir: <data_dir>/downloads/manual."""
  return os.path.join(data_dir, 'downloads', 'manual')


def download_hosts(builder: Any) -> list[str]:
  """The hosts a builder (class or instance) downloads from, per TFDS."""
  try:
    urls = builder.url_infos
  except Exception:  # pylint: disable=broad-except
    urls = None  # No checksums registered.
  return sorted({urllib.parse.urlparse(u).hostname for u in urls or {}}
                - {None})


def reachable(host: str) -> bool:
  """Whether `host` accepts a connection on port 443 within PROBE_SECONDS."""
  try:
    socket.create_connection((host, 443), timeout=PROBE_SECONDS).close()
  except OSError:
    return False
  return True


def may_download(builder: Any, download: bool | str) -> bool:
  """Whether to let TFDS prepare `builder` from the internet.

  'auto': yes when its first download host answers, or when TFDS lists no
  download for it (a builder that generates its data, or reads manual files,
  which fails at once when they are missing).
  """
  if download in (True, False):
    return download
  hosts = download_hosts(builder)
  return not hosts or reachable(hosts[0])


def download_refusal(builder: Any, download: bool | str) -> str:
  """Why `may_download` said no, for an error message."""
  if download is False:
    return ('downloading is off (config.data.download=False; True or '
            "'auto' lets TFDS download it)")
  host = download_hosts(builder)[0]
  return (f'its download host {host} cannot be reached from here (checked '
          f"in {PROBE_SECONDS:.0f} s, config.data.download='auto'; True "
          'makes TFDS try anyway)')


def registered_files(builder: Any) -> dict[str, tuple[str, Any]]:
  """{file name: (url, TFDS's UrlInfo: size, sha256)} a builder downloads."""
  return {os.path.basename(urllib.parse.urlparse(url).path): (url, info)
          for url, info in (builder.url_infos or {}).items()}


def sha256_of(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def check_registered(builder: Any, path: str, name: str | None = None):
  """DataError unless `path` is the file TFDS registers for `builder`.

  The size and sha256 of the file named `name` (default: `path`'s name) in
  the builder's checksums: a local copy (manual_dir) or a download is used
  only if both match.
  """
  name = name or os.path.basename(path)
  _, info = registered_files(builder)[name]
  size = os.path.getsize(path)
  if size != int(info.size) or sha256_of(path) != info.checksum:
    raise DataError(
        f'{path} is not the official {name} TFDS registers '
        f'({int(info.size):,} bytes, sha256 {info.checksum}); it has '
        f'{size:,} bytes. Get the original file, or remove it and let it '
        'download (--config.data.download=True).')


def download_registered(builder: Any, folder: str) -> str:
  """Downloads the one file `builder` registers into `folder`; its path.

  Written under a temporary name, checked (check_registered) and renamed
  once complete; a complete copy already there is reused.
  """
  (name, (url, info)), = registered_files(builder).items()
  path = os.path.join(folder, name)
  if os.path.isfile(path) and os.path.getsize(path) == int(info.size):
    return path
  os.makedirs(folder, exist_ok=True)
  partial = f'{path}.{os.getpid()}.part'
  logging.info('Downloading %s (%d bytes) to %s.', url, int(info.size), path)
  start = time.perf_counter()
  try:
    try:
      with urllib.request.urlopen(url, timeout=60) as response, open(
          partial, 'wb') as out:
        shutil.copyfileobj(response, out, 1 << 20)
    except OSError as e:
      raise DataError(f'downloading {url} failed ({e}); put {name} in '
                      'manual_dir instead') from e
    check_registered(builder, partial, name)
    os.replace(partial, path)
  finally:
    if os.path.exists(partial):
      os.remove(partial)
  logging.info('Downloaded %s in %.0f s.', name, time.perf_counter() - start)
  return path


def tfds() -> Any:
  """The `tensorflow_datasets` module, imported on first use."""
  import tensorflow_datasets  # pylint: disable=g-import-not-at-top
  return tensorflow_datasets


def prepared(builder_cls: Any, data_dir: str, *, config: str | None = None,
             remedy: str | None = None) -> Any | None:
  """The builder if its current version is prepared as array_record.

  Args:
    builder_cls: a TFDS builder class.
    data_dir: TFDS data folder.
    config: the builder config's name, for builders with configs.
    remedy: what to do about data prepared in other formats only (default:
      convert it with `tfds convert_format`).

  Raises:
    DataError: prepared, but not as array_record (unreadable without TF).
  """
  version_dir = os.path.join(data_dir, builder_cls.name,
                             *([config] if config else []),
                             str(builder_cls.VERSION))
  # Checked before constructing the builder, which otherwise logs warnings
  # about a missing folder.
  if not os.path.isfile(os.path.join(version_dir, 'dataset_info.json')):
    return None
  kwargs = {'config': config} if config else {}
  builder = builder_cls(data_dir=data_dir, **kwargs)
  if not builder.is_prepared():
    return None
  formats = sorted(f.value for f in builder.info.available_file_formats())
  if 'array_record' not in formats:
    remedy = remedy or (
        'Convert it (tfds convert_format --dataset_version_dir='
        f'{version_dir} --out_file_format=array_record) or use another '
        'data_dir.')
    raise DataError(
        f'{config or builder_cls.name} is prepared in {version_dir} only as '
        f'{formats}, which cannot be read without TensorFlow. {remedy}')
  return builder


def require_tensorflow(name: str, why: str):
  """DataError saying what to install, unless TensorFlow is importable."""
  try:
    import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise DataError(
        f'{name}: {why} needs TensorFlow, which is not installed: '
        f'{PREPARE_HINT} (reading the prepared data later does not).'
    ) from e


def prepare(builder: Any, manual_dir: str | None):
  """Prepares `builder` as array_record, from manual_dir if given."""
  logging.info('Preparing %s as array_record in %s (once).',
               builder.info.full_name, builder.data_dir)
  start = time.perf_counter()
  config = (tfds().download.DownloadConfig(manual_dir=manual_dir)
            if manual_dir else None)
  builder.download_and_prepare(download_config=config,
                               file_format='array_record')
  logging.info('Prepared %s in %.1f s.', builder.info.full_name,
               time.perf_counter() - start)


def read_chunks(source: Sequence[Any]) -> Iterator[tuple[int, list[Any]]]:
  """(start, records start, start + 1, ...) over all of a data source.

  Records come `READ_CHUNK` at a time, through the source's batched
  `__getitems__`, in order.
  """
  num = len(source)
  for start in range(0, num, READ_CHUNK):
    yield start, source.__getitems__(
        list(range(start, min(start + READ_CHUNK, num))))
