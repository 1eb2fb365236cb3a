"""host_memory.retain_freed_memory: a freed large buffer's pages are reused."""

import subprocess
import sys
import textwrap

import pytest

# Allocates and frees a 64 MiB buffer twice, writing every page, and reports
# the minor page faults of the second round.
_PROBE = textwrap.dedent('''
    import ctypes, resource, sys
    from svp_jax.cpu import host_memory
    if sys.argv[1] == 'retain':
      assert host_memory.retain_freed_memory()
    libc = ctypes.CDLL('libc.so.6')
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = (ctypes.c_void_p,)
    def touch():  # plain malloc, as XLA's buffers (numpy asks for huge pages)
      block = libc.malloc(64 << 20)
      ctypes.memset(block, 1, 64 << 20)
      libc.free(block)
    touch()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    touch()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
''')


def second_round_faults(mode: str) -> int:
  out = subprocess.run([sys.executable, '-c', _PROBE, mode], check=True,
                       capture_output=True, text=True, cwd='.')
  return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc only')
def test_freed_pages_are_reused_instead_of_faulted_in_again():
  pages = (64 << 20) // 4096
  # glibc's default unmaps a block this large on free: every page faults again.
  assert second_round_faults('default') > pages // 2
  assert second_round_faults('retain') < pages // 20
