"""main.py's flag parsing: a mistake on the command line is one `error:` line.

absl and ml_collections report a missing config file, a config file that does
not load, a bad `FILE:ARG`, an unknown `--config.*` key or a value of the
wrong type as a Python traceback or a multi-line message. `parse_flags`
parses as absl does and turns each of those into a single line that names the
flag, the value and what is wrong, then exits with status 2 (the usual status
of a command-line mistake); nothing has run yet, so nothing is written.
"""

import os
import re
import sys
import traceback

from absl import flags
import ml_collections

USAGE_STATUS = 2


def parse_flags(argv: list[str]) -> list[str]:
  """`flags.FLAGS(argv)`, or exit with one `error:` line."""
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    # Whatever fails while flags parse comes from the command line or the
    # config file it names: a user's to fix, not a traceback to read.
    fail(flag_error_message(e, argv))


def fail(message: str):
  """Exits with status 2 and `error: message` on stderr."""
  # The command's own answer to its user, not a log record.
  sys.stderr.write(f'error: {message}\n')
  sys.exit(USAGE_STATUS)


def config_flag(argv: list[str], name: str = 'config') -> str | None:
  """The value of `--name=VALUE` or `--name VALUE` in argv (the last one)."""
  value = None
  for i, arg in enumerate(argv):
    if arg.startswith(f'--{name}='):
      value = arg.split('=', 1)[1]
    elif arg == f'--{name}' and i + 1 < len(argv):
      value = argv[i + 1]
  return value


def _override_naming(argv: list[str], text: str) -> str | None:
  """The `--config.a.b=v` argument one of whose keys `text` quotes."""
  for arg in argv:
    name = arg.split('=', 1)[0]
    if not name.startswith('--config.'):
      continue
    if any(re.search(rf"""['"]{re.escape(key)}['"\\]""", text)
           for key in name[len('--config.'):].split('.')):
      return arg
  return None


def _last_line(text: str) -> str:
  lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
  return lines[-1] if lines else text.strip()


def _where(error: BaseException) -> str:
  """`file:line` of the innermost frame of the error (a config's bug)."""
  if isinstance(error, SyntaxError) and error.filename:
    return f'{error.filename}:{error.lineno}'
  frames = traceback.extract_tb(error.__traceback__)
  return f'{frames[-1].filename}:{frames[-1].lineno}' if frames else ''


def flag_error_message(error: BaseException, argv: list[str]) -> str:
  """One line saying which flag or config file is wrong, and how."""
  config = config_flag(argv)
  path = config.split(':', 1)[0] if config else None
  text = str(error)
  if config is not None and path and not os.path.isfile(path):
    return (f'--config={config}: no config file {path!r} (a Python file with '
            'get_config(), e.g. configs/fashion_mnist_svp.py)')
  unknown = re.match(r"Unknown command line flag '([^']+)'", text)
  if isinstance(error, flags.UnrecognizedFlagError) and unknown:
    name = unknown.group(1)
    if name.startswith('config.'):
      return (f'--{name}: {path} has no key {name[len("config."):]!r}')
    return f'unknown flag --{name} (python main.py --helpshort lists them)'
  if isinstance(error, (KeyError, AttributeError)):
    # ml_collections, overriding a key the config lacks: the message quotes
    # the key, maybe with a did-you-mean.
    argument = _override_naming(argv, text)
    if argument is not None:
      key = argument.split('=', 1)[0][len('--config.'):]
      hint = re.search(r'Did you mean "([^"]+)" instead of', text)
      return (f'{argument}: {path} has no key {key!r}'
              + (f' (did you mean {hint.group(1)!r}?)' if hint else ''))
  if isinstance(error, flags.IllegalFlagValueError):
    # "flag --config...=VALUE: why", where why may end a traceback of the
    # config file's get_config(ARG).
    flag, _, why = text.partition(': ')
    flag = flag.removeprefix('flag ')
    return f'{flag}: {_last_line(why)}'
  if isinstance(error, SyntaxError):
    return f'--config={config}: {path} does not load: {error.msg} at {_where(error)}'
  if isinstance(error, flags.Error):
    return _last_line(text)
  where = _where(error)
  return (f'--config={config}: loading {path} failed: '
          f'{type(error).__name__}: {_last_line(text)}'
          + (f' (at {where})' if where else ''))


def check_config(config, argv: list[str]):
  """Exits with one `error:` line unless --config loaded a ConfigDict.

  ml_collections defers some failures (a missing file) to the first use of
  the config; this is that first use.
  """
  if isinstance(config, ml_collections.ConfigDict):
    return
  try:
    getattr(config, 'mode', None)  # Raises what loading raised, if anything.
  except Exception as e:  # pylint: disable=broad-except
    fail(flag_error_message(e, argv))
  fail(f'--config={config_flag(argv)}: get_config() returned '
       f'{type(config).__name__}, not an ml_collections.ConfigDict')
