"""The import graph of svp_jax has no cycle, and `svp_jax.data` imports lazily.

The graph is read from the source with `ast`, without importing anything:
a node per module of the package (`svp_jax/data/__init__.py` is
`svp_jax.data`), an edge from a module to each svp_jax module it imports.
`from P import N` is an edge to `P.N` where that is a module, else to `P`
(N is then a name defined in P's `__init__`). Importing `P.N` also runs P's
`__init__` first, but that is not an edge: a package that imports its own
submodules, which import their siblings, is the normal layout, not a cycle.

Two graphs are checked:

* module-level imports only (those that run when the module is imported),
  which must be acyclic or importing may fail or see half-built modules;
* all imports, including those inside functions, which must be acyclic
  too: an import deferred into a function to dodge a cycle (as
  `data.imagenet` <-> `data.loading` once did) is still a cycle of
  dependencies, and the design should not need it.
"""

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

PACKAGE = 'svp_jax'
ROOT = pathlib.Path(__file__).resolve().parent.parent


def module_names(package_dir: pathlib.Path, package: str) -> dict[str, str]:
  """{dotted module name: path} of every .py file under package_dir."""
  names = {}
  for path in sorted(package_dir.rglob('*.py')):
    parts = list(path.relative_to(package_dir).with_suffix('').parts)
    if parts[-1] == '__init__':
      parts.pop()
    names['.'.join([package, *parts])] = str(path)
  return names


def _is_package(path: str) -> bool:
  return os.path.basename(path) == '__init__.py'


def _imported(node: ast.AST, module: str, is_package: bool,
              modules: dict[str, str]) -> list[str]:
  """The package modules one import statement names."""
  if isinstance(node, ast.Import):
    targets = [alias.name for alias in node.names]
  else:
    base = node.module or ''
    if node.level:  # Relative: strip levels off the importing package.
      package = module if is_package else module.rpartition('.')[0]
      for _ in range(node.level - 1):
        package = package.rpartition('.')[0]
      base = f'{package}.{base}' if base else package
    targets = [f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules
               else base for alias in node.names]
  found = []
  for target in targets:
    # `import svp_jax.data.idx` names the module; trim attribute parts.
    while target and target not in modules:
      target = target.rpartition('.')[0]
    if target and target != module:
      found.append(target)
  return found


def _function_level(tree: ast.Module) -> set[int]:
  """ids of the import nodes inside a function (run on call, not import)."""
  inner = set()
  for node in ast.walk(tree):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
      inner.update(id(n) for n in ast.walk(node)
                   if isinstance(n, (ast.Import, ast.ImportFrom)))
  return inner


def import_graph(modules: dict[str, str], module_level_only: bool
                 ) -> dict[str, set[str]]:
  graph = {}
  for module, path in modules.items():
    tree = ast.parse(pathlib.Path(path).read_text(), filename=path)
    skip = _function_level(tree) if module_level_only else set()
    graph[module] = {
        target for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and id(node) not in skip
        for target in _imported(node, module, _is_package(path), modules)}
  return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """A cycle as [a, b, ..., a], or None; depth-first, deterministic."""
  state = {}  # Absent: unvisited; 1: on the current path; 2: done.
  path = []

  def visit(node):
    state[node] = 1
    path.append(node)
    for succ in sorted(graph.get(node, ())):
      if state.get(succ) == 1:
        return path[path.index(succ):] + [succ]
      if succ not in state:
        cycle = visit(succ)
        if cycle:
          return cycle
    path.pop()
    state[node] = 2
    return None

  for node in sorted(graph):
    if node not in state:
      cycle = visit(node)
      if cycle:
        return cycle
  return None


@pytest.mark.parametrize('module_level_only', [True, False],
                         ids=['module_level', 'all_imports'])
def test_no_import_cycle_in_the_package(module_level_only):
  modules = module_names(ROOT / PACKAGE, PACKAGE)
  assert 'svp_jax.data' in modules and 'svp_jax.data.imagenet' in modules
  cycle = find_cycle(import_graph(modules, module_level_only))
  assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)


def _write(folder: pathlib.Path, files: dict[str, str]):
  for name, source in files.items():
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


def test_the_checker_finds_cycles_of_either_kind(tmp_path):
  # The two shapes the package once had: a function-level import back
  # (data.imagenet <-> data.loading), and a relative module-level one.
  _write(tmp_path / 'pkg', {
      '__init__.py': 'from pkg.sub import a\n',
      'sub/__init__.py': '',
      'sub/a.py': 'def f():\n  from pkg.sub import b\n',
      'sub/b.py': 'from pkg.sub import a\nimport numpy\n',
      'sub/c.py': 'from . import d\n',
      'sub/d.py': 'from .c import X\nfrom pkg import sub\n',
  })
  modules = module_names(tmp_path / 'pkg', 'pkg')
  every = import_graph(modules, module_level_only=False)
  top = import_graph(modules, module_level_only=True)
  assert every['pkg.sub.a'] == {'pkg.sub.b'} and not top['pkg.sub.a']
  assert every['pkg.sub.b'] == {'pkg.sub.a'}  # numpy is not the package's.
  assert top['pkg.sub.d'] == {'pkg.sub.c', 'pkg.sub'}
  assert find_cycle(every) == ['pkg.sub.a', 'pkg.sub.b', 'pkg.sub.a']
  assert find_cycle(top) == ['pkg.sub.c', 'pkg.sub.d', 'pkg.sub.c']


def test_importing_data_reads_nothing_and_skips_tensorflow():
  # A fresh interpreter: this test session may have imported TF already.
  script = textwrap.dedent("""
      import builtins, sys
      opened = []
      real_open = builtins.open
      def spy(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)
      builtins.open = spy
      from svp_jax import data
      builtins.open = real_open
      assert data.dataset_info('cifar10').num_classes == 10
      print('modules:', sorted(m for m in ('tensorflow', 'tensorflow_datasets')
                               if m in sys.modules))
      print('opened:', [f for f in opened if 'tensorflow_datasets' in f
                        or 'fashion' in f or f.endswith('.csv')])
  """)
  result = subprocess.run([sys.executable, '-c', script], capture_output=True,
                          text=True, cwd=ROOT, check=False, timeout=120)
  assert result.returncode == 0, result.stderr
  assert 'modules: []' in result.stdout
  assert 'opened: []' in result.stdout
