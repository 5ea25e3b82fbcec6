"""Does the exported SavedModel serve in TensorFlow 2.15 (Vertex's newest
prebuilt TF prediction image, `tf2-cpu.2-15`)? Loads the model with this
project's TensorFlow and, in a child process, with another Python whose
TensorFlow is 2.15, runs `serving_default` on the same encoded images in
both and compares every output.

The side Python needs TensorFlow only:
  python3.10 -m venv /tmp/tf215 && /tmp/tf215/bin/pip install 'tensorflow-cpu==2.15.*'

Example:
  TF_USE_LEGACY_KERAS=1 .venv/bin/python benchmarks/serving_tf215.py \\
    --model outputs/pipeline/pushed_models/<version> \\
    --images /work/shared/data/coco_panoptic_sample/input_images \\
    --python /tmp/tf215/bin/python
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

# Run by the side Python: TensorFlow only (no project code, no tf_keras).
_CHILD = r'''
import json, sys
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
images = [open(path, 'rb').read() for path in json.loads(sys.argv[2])]
outputs = loaded.signatures['serving_default'](images=tf.constant(images))
np.savez(sys.argv[3], tf_version=tf.__version__,
         **{key: value.numpy() for key, value in outputs.items()})
'''


def _outputs(python: str, model: str, images, result: pathlib.Path):
  completed = subprocess.run(
      [python, '-c', _CHILD, model, json.dumps(images), str(result)],
      capture_output=True, text=True, check=False)
  if completed.returncode != 0:
    raise SystemExit(f'{python} could not serve {model}:\n'
                     f'{completed.stderr[-3000:]}')
  return dict(np.load(result, allow_pickle=True))


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', required=True, help='exported SavedModel')
  parser.add_argument('--images', required=True,
                      help='directory of JPEG/PNG images')
  parser.add_argument('--python', required=True,
                      help='Python of the TensorFlow 2.15 side venv')
  args = parser.parse_args()
  images = sorted(str(path) for path in pathlib.Path(args.images).iterdir()
                  if path.suffix.lower() in ('.jpg', '.jpeg', '.png'))
  with tempfile.TemporaryDirectory() as work:
    ours = _outputs(sys.executable, args.model, images,
                    pathlib.Path(work) / 'ours.npz')
    theirs = _outputs(args.python, args.model, images,
                      pathlib.Path(work) / 'theirs.npz')
  print(f'TensorFlow {ours.pop("tf_version")} (export) vs '
        f'{theirs.pop("tf_version")}, {len(images)} images')
  same = True
  for key in sorted(ours):
    equal = (np.array_equal(ours[key], theirs[key]) if key.endswith('_bytes')
             or ours[key].dtype.kind != 'f' else
             np.allclose(ours[key], theirs[key], atol=1e-5))
    same &= equal
    print(f'  {key:22s} {"identical" if equal else "DIFFERENT"}')
  print('same answers' if same else 'answers differ')
  return 0 if same else 1


if __name__ == '__main__':
  sys.exit(main())
