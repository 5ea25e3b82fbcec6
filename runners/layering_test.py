"""Dependencies point one way:
runners -> tfx_pipeline -> trainer_module -> transform_module -> panoptic_data
-> schemas.

Every import statement of every .py file under each package is checked
(module level or inside a function), tests included: a package's tests live
beside its code and need no higher layer either, except that a test may import
the command-line entry point (`runners.cli`) to exercise a subcommand end to
end.

trainer_module may import transform_module, not the reverse: the Trainer reads
the Transform's output, whose contract (`schemas/transform_output.md`) the
Transform defines and implements (`transform_module.encoding`: row encoding
and `pixel_valid` from the Transform's resize geometry;
`transform_module.preprocessing`: the raw feature keys and spec that the
exported serving signatures parse), and the exported model embeds the
transform graph. The Transform never needs the Trainer.
"""

import ast
import pathlib

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# Which of our packages each package may import (besides itself).
ALLOWED = {
    'schemas': set(),
    'panoptic_data': {'schemas'},
    'transform_module': {'schemas', 'panoptic_data'},
    'trainer_module': {'schemas', 'panoptic_data', 'transform_module'},
    'tfx_pipeline': {'schemas', 'panoptic_data', 'transform_module',
                     'trainer_module'},
    'runners': {'schemas', 'panoptic_data', 'transform_module',
                'trainer_module', 'tfx_pipeline'},
}
# What any test may import from a higher layer.
TEST_ENTRY_POINT = 'runners.cli'


def _imports(path: pathlib.Path):
  """(line, imported name) of every absolute import in a file
  (`from a.b import c` gives a.b.c)."""
  tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield node.lineno, alias.name
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      for alias in node.names:
        yield node.lineno, f'{node.module}.{alias.name}'


def _violations(root: pathlib.Path):
  """'path:line imports package' for every import against the direction."""
  found = []
  for package, allowed in ALLOWED.items():
    for path in sorted((root / package).rglob('*.py')):
      is_test = path.name.endswith('_test.py') or path.name == 'conftest.py'
      for line, module in _imports(path):
        imported = module.split('.')[0]
        if (imported not in ALLOWED or imported == package or
            imported in allowed or (is_test and module == TEST_ENTRY_POINT)):
          continue
        found.append(f'{path.relative_to(root)}:{line} imports {imported}')
  return found


def test_no_module_imports_a_higher_layer():
  assert _violations(REPO_ROOT) == []


def test_the_check_finds_every_kind_of_upward_import(tmp_path):
  files = {
      'schemas/a.py': 'import json\nimport transform_module.encoding\n',
      'transform_module/b_test.py': (
          'def f():\n  from trainer_module import export\n'),
      'transform_module/c.py': 'from schemas import load_categories\n',
      'trainer_module/sub/d.py': ('from transform_module import encoding\n'
                                  'from . import e\nimport tfx_pipeline as p\n'),
      'tfx_pipeline/e.py': 'import trainer_module\nfrom runners import cli\n',
      'tfx_pipeline/e_test.py': 'from runners import cli\n'
                                'from runners.vertex import compiler\n',
      'runners/f.py': 'from tfx_pipeline import config\n',
  }
  for name, text in files.items():
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(text)
  assert _violations(tmp_path) == [
      'schemas/a.py:2 imports transform_module',
      'transform_module/b_test.py:2 imports trainer_module',
      'trainer_module/sub/d.py:3 imports tfx_pipeline',
      'tfx_pipeline/e.py:2 imports runners',
      'tfx_pipeline/e_test.py:2 imports runners',
  ]
