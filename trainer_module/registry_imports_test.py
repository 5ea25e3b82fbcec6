"""`trainer_module` registers its experiments and task only through
`trainer_module.registry_imports`, and importing the package, its configs
package or the experiment names loads no TensorFlow."""

import os
import subprocess
import sys
import textwrap

from official.core import exp_factory
from official.core import task_factory
from trainer_module import registry_imports
from trainer_module.configs import experiment_names
from trainer_module.configs import maskformer as maskformer_cfg
from trainer_module.tasks import maskformer as maskformer_task

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_registers_exactly_the_named_experiments_and_the_task():
  registered = {name for name in exp_factory._REGISTERED_CONFIGS
                if name.startswith('maskformer')}
  assert registered == set(experiment_names.ALL)
  assert experiment_names.DEFAULT_EXPERIMENT in registered
  for name in experiment_names.ALL:
    params = exp_factory.get_exp_config(name)
    assert isinstance(params.task, maskformer_cfg.MaskFormerTask), name
  assert (task_factory.get_task_cls(maskformer_cfg.MaskFormerTask) is
          maskformer_task.MaskFormerTask)


def test_package_and_experiment_names_load_no_tensorflow():
  # A fresh interpreter (this one has TensorFlow loaded).
  script = textwrap.dedent("""
      import sys
      import trainer_module
      import trainer_module.configs
      from trainer_module.configs import experiment_names
      assert experiment_names.DEFAULT_EXPERIMENT in experiment_names.ALL
      heavy = [name for name in ('tensorflow', 'official') if name in sys.modules]
      assert not heavy, heavy
      """)
  result = subprocess.run([sys.executable, '-c', script], cwd=_REPO_ROOT,
                          capture_output=True, text=True, timeout=120,
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
