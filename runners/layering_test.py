"""Dependencies point one way: runners -> tfx_pipeline -> trainer_module /
transform_module -> schemas.

Every import statement of every non-test module (module level or inside a
function) is checked; tests may import the entry point (`runners.cli`) to
exercise a subcommand end to end.
"""

import ast
import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# A package may import packages of its own rank or lower, never higher.
RANK = {'schemas': 0, 'trainer_module': 1, 'transform_module': 1,
        'tfx_pipeline': 2, 'runners': 3}


def _imported_packages(path: pathlib.Path):
  tree = ast.parse(path.read_text(), filename=str(path))
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names = [node.module]
    else:
      continue
    for name in names:
      yield node.lineno, name.split('.')[0]


def _violations(root: pathlib.Path):
  found = []
  for package, rank in RANK.items():
    for path in sorted((root / package).rglob('*.py')):
      if path.name.endswith('_test.py') or path.name == 'conftest.py':
        continue
      for line, imported in _imported_packages(path):
        if imported in RANK and imported != package and RANK[imported] > rank:
          found.append(f'{path.relative_to(root)}:{line} imports {imported}')
  return found


def test_no_module_imports_a_higher_layer():
  assert _violations(REPO_ROOT) == []


def test_the_check_finds_an_upward_import(tmp_path):
  (tmp_path / 'tfx_pipeline').mkdir()
  (tmp_path / 'tfx_pipeline' / 'bad.py').write_text(
      'import os\n\ndef f():\n  from runners import cli\n')
  (tmp_path / 'schemas').mkdir()
  (tmp_path / 'schemas' / 'bad.py').write_text('import tfx_pipeline.config\n')
  (tmp_path / 'trainer_module').mkdir()
  (tmp_path / 'trainer_module' / 'ok.py').write_text(
      'from transform_module import encoding\nfrom schemas import x\n')
  assert _violations(tmp_path) == [
      'schemas/bad.py:1 imports tfx_pipeline',
      'tfx_pipeline/bad.py:4 imports runners',
  ]
