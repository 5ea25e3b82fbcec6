"""TensorFlow's C++ start-up lines stay off the terminal.

Importing TensorFlow prints, from C++ and before Python's or absl's logging
exists, lines such as "Unable to register cuDNN factory: Attempting to
register factory for plugin cuDNN when one has already been registered" (at
ERROR level, so TF_CPP_MIN_LOG_LEVEL=2 does not hide them) and, at lower
levels, the oneDNN and CPU-instruction notices. Level 3 would hide them, but
TF reads the level once per process, so it would also hide real C++ errors
for the rest of the run. Instead, `startup_lines_filtered` points file
descriptor 2 at a temporary file while TensorFlow is imported (by the CLI's
own imports or `import_tensorflow`) and then writes back every captured line
except these known start-up lines: an import failure or any other message
still reaches the terminal.
"""

import contextlib
import os
import re
import sys
import tempfile
from typing import Iterator

# Lines that TensorFlow 2.16 prints while it is imported, harmless here.
STARTUP_NOISE = re.compile(
    r'Unable to register (cuFFT|cuDNN|cuBLAS) factory'
    r'|All log messages before absl::InitializeLog\(\) is called'
    r'|oneDNN custom operations are on'
    r'|Could not find cuda drivers on your machine'
    r'|This TensorFlow binary is optimized to use available CPU instructions'
    r'|To enable the following instructions: .*rebuild TensorFlow'
    r'|TF-TRT Warning: Could not find TensorRT')


def _verbose() -> bool:
  """TF_CPP_MIN_LOG_LEVEL=0 asks for every C++ line, the start-up ones too."""
  return os.environ.get('TF_CPP_MIN_LOG_LEVEL', '0') == '0'


@contextlib.contextmanager
def startup_lines_filtered() -> Iterator[None]:
  """Within: stderr (fd 2, C++ included) goes to a temporary file; on exit
  every captured line but TensorFlow's start-up lines is written back."""
  if _verbose():
    yield
    return
  sys.stderr.flush()
  saved_stderr = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved_stderr, 2)
      os.close(saved_stderr)
      captured.seek(0)
      text = captured.read().decode('utf-8', errors='replace')
      kept = [line for line in text.splitlines(keepends=True)
              if not STARTUP_NOISE.search(line)]
      if kept:
        sys.stderr.write(''.join(kept))
        sys.stderr.flush()


def import_tensorflow() -> None:
  """Imports TensorFlow (if not yet) with its start-up lines filtered out."""
  if 'tensorflow' in sys.modules:
    return
  with startup_lines_filtered():
    import tensorflow  # noqa: F401
