r"""Whole-pipeline benchmark: wall time per component and peak memory of a run.

Runs `maskformer-tfx run` (LocalDagRunner; every component runs in that one
process, so its peak RSS bounds each component's, the Evaluator's included) on
the default synthetic sample or `--data`, and prints the components' times as
the CLI reported them, the total wall time and the peak resident memory.

  .venv/bin/python benchmarks/bench_pipeline_run.py --pipeline-root /tmp/bench_run
"""

import argparse
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

CLI = Path(sys.executable).parent / 'maskformer-tfx'
_FINISHED = re.compile(r'\] (\S+) finished \((\d+) s')


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--pipeline-root', required=True,
                      help='A new, empty pipeline root.')
  parser.add_argument('--data', default=None,
                      help='TFRecord directory (default: the synthetic sample).')
  parser.add_argument('--run-arg', action='append', default=[],
                      help='Extra `maskformer-tfx run` argument, repeatable.')
  args = parser.parse_args()

  command = [str(CLI), 'run', '--pipeline-root', args.pipeline_root]
  if args.data:
    command += ['--data', args.data]
  command += args.run_arg
  start = time.monotonic()
  result = subprocess.run(command, capture_output=True, text=True, check=False)
  wall = time.monotonic() - start
  peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20

  print(result.stdout)
  if result.returncode:
    print(result.stderr, file=sys.stderr)
    sys.exit(result.returncode)
  print('| component | seconds |\n|---|---|')
  for component, seconds in _FINISHED.findall(result.stdout):
    print(f'| {component} | {seconds} |')
  print(f'| whole `maskformer-tfx run` | {wall:.0f} |')
  print(f'Peak resident memory of the run process: {peak_gib:.2f} GiB')


if __name__ == '__main__':
  main()
