"""pyproject.toml declares exactly the distributions our code imports.

Walks every import (module level and inside functions) of our packages with
`ast`, maps each imported module to the installed distribution whose files
hold it (so `google.protobuf` is protobuf and `google.cloud.aiplatform` is
google-cloud-aiplatform), and compares with `[project] dependencies` (product
code) and the `test` extra (what only tests import).
"""

import ast
import collections
import importlib.metadata
import pathlib
import re
import sys
from typing import Dict, Iterator, Set

import tomli

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ('tfx_pipeline', 'trainer_module', 'transform_module', 'runners',
            'panoptic_data', 'schemas')
TEST_ROOTS = ('tests', 'conftest.py')
FIRST_PARTY = set(PACKAGES) | {'tests'}
_MODULE_SUFFIX = re.compile(r'(\.cpython[^/]*)?\.(py|so|pyd)$')


def _normalize(name: str) -> str:
  return re.sub(r'[-_.]+', '-', name).lower()


def _requirement_name(requirement: str) -> str:
  return _normalize(re.match(r'[A-Za-z0-9_.-]+', requirement).group(0))


def _is_test_file(path: pathlib.Path) -> bool:
  """Tests, their fixtures and the `testing` helper modules."""
  return (path.name.endswith('_test.py') or path.name.startswith('test_') or
          path.name in ('conftest.py', 'testing.py'))


def _imports(path: pathlib.Path) -> Iterator[str]:
  """Absolute module names imported by `path` (M.N for `from M import N`:
  N may be a submodule)."""
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and not node.level:
      yield from (f'{node.module}.{alias.name}' for alias in node.names)


def _module_index() -> Dict[str, Set[str]]:
  """Installed module name -> distributions whose files define it."""
  index = collections.defaultdict(set)
  for distribution in importlib.metadata.distributions():
    name = _normalize(distribution.metadata['Name'])
    for file in distribution.files or ():
      parts = str(file).replace('\\', '/')
      if not _MODULE_SUFFIX.search(parts) or parts.startswith('..'):
        continue
      module = _MODULE_SUFFIX.sub('', parts).split('/')
      if module[-1] == '__init__':
        module = module[:-1]
      for depth in range(1, len(module) + 1):
        index['.'.join(module[:depth])].add(name)
  return index


def _distributions(paths, index) -> Dict[str, Set[str]]:
  """Distribution -> the modules of `paths` that import it."""
  used = collections.defaultdict(set)
  for path in paths:
    for module in _imports(path):
      top = module.split('.')[0]
      if top in FIRST_PARTY or top in sys.stdlib_module_names:
        continue
      parts = module.split('.')
      # The deepest package or module that an installed file defines.
      owners = next((index[prefix] for prefix in (
          '.'.join(parts[:depth]) for depth in range(len(parts), 0, -1))
                     if prefix in index), None)
      if not owners:
        raise AssertionError(f'{path.relative_to(REPO_ROOT)} imports {module}, '
                             'which no installed distribution provides.')
      if len(owners) > 1:
        raise AssertionError(f'{module} (imported by {path}) is in several '
                             f'distributions: {sorted(owners)}')
      used[next(iter(owners))].add(str(path.relative_to(REPO_ROOT)))
  return used


def _python_files(roots) -> Iterator[pathlib.Path]:
  for root in roots:
    path = REPO_ROOT / root
    yield from ([path] if path.is_file() else sorted(path.rglob('*.py')))


def test_pyproject_declares_exactly_what_the_code_imports():
  project = tomli.loads((REPO_ROOT / 'pyproject.toml').read_text())['project']
  declared = {_requirement_name(r) for r in project['dependencies']}
  declared_test = {_requirement_name(r)
                   for r in project['optional-dependencies']['test']}
  index = _module_index()
  files = list(_python_files(PACKAGES))
  product = _distributions([f for f in files if not _is_test_file(f)], index)
  tests = _distributions([f for f in files if _is_test_file(f)] +
                         list(_python_files(TEST_ROOTS)), index)
  assert {d: sorted(product[d]) for d in set(product) - declared} == {}, (
      'imported by product code, missing from [project] dependencies')
  assert sorted(declared - set(product)) == [], (
      'declared in [project] dependencies, imported by no product code')
  test_only = set(tests) - set(product)
  assert {d: sorted(tests[d]) for d in test_only - declared_test} == {}, (
      'imported only by tests, missing from the test extra')
  # What no test imports: `make test` runs the linter and then pytest with
  # the xdist plugin (-n).
  makefile = (REPO_ROOT / 'Makefile').read_text()
  assert ' -n $(TEST_WORKERS)' in makefile
  assert '-m ruff check .' in makefile
  assert sorted(declared_test - test_only) == ['pytest-xdist', 'ruff'], (
      'in the test extra but not imported by tests only')
