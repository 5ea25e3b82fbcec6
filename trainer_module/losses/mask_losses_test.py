"""Tests for the full-resolution mask losses and their static-shape chunks."""

import json
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from trainer_module.losses import mask_losses
from trainer_module.losses import maskformer_losses as losses_fn

_REPO_ROOT = Path(__file__).resolve().parents[2]
_LOSS_KEYS = ("loss_ce", "loss_mask", "loss_dice")


@pytest.mark.parametrize("stride", [1, 2, 3, 4, 5])
def test_upsampling_equals_bilinear_resize(stride: int) -> None:
  logits = tf.constant(np.random.default_rng(stride).normal(
      0, 3, (2, 7, 5, 3)).astype(np.float32))
  expected = tf.image.resize(logits, (7 * stride, 5 * stride), "bilinear")
  np.testing.assert_allclose(mask_losses.upsample_bilinear(logits, stride),
                             expected, rtol=1e-5, atol=1e-5)


def _inputs(seed: int, slot_map: bool) -> dict[str, tf.Tensor]:
  """2 images, 7 slots (5 valid), predictions 6×5, targets 24×20."""
  rng = np.random.default_rng(seed)
  valid = np.array([[1, 1, 0, 1, 1, 1, 0], [1, 0, 1, 1, 0, 1, 1]], bool)
  segment_map = rng.integers(-1, 7, (2, 24, 20)).astype(np.int32)
  pixel_valid = np.ones((2, 24, 20), np.int32)
  pixel_valid[0, 21:] = 0
  pixel_valid[1, :, 13:] = 0
  if slot_map:
    masks = segment_map
  else:
    masks = (segment_map[..., None] == np.arange(7)).astype(np.uint8)
  return {
      "class_logits": tf.constant(rng.normal(0, 2, (2, 9, 5)), tf.float32),
      "mask_logits": tf.constant(rng.normal(0, 3, (2, 6, 5, 9)), tf.float32),
      "gt_classes": tf.constant(rng.integers(0, 4, (2, 7)), tf.int32),
      "gt_masks": tf.constant(masks),
      "gt_valid": tf.constant(valid),
      "pixel_valid": tf.constant(pixel_valid),
  }


def _losses_and_gradient(inputs, **kwargs):
  with tf.GradientTape() as tape:
    tape.watch(inputs["mask_logits"])
    losses = losses_fn(**inputs, no_object_weight=0.1, **kwargs)
    total = 20.0 * losses["loss_mask"] + losses["loss_dice"]
  return losses, tape.gradient(total, inputs["mask_logits"])


# 7 slots: chunks of 1 and 7 divide them, 3 and 5 overlap in the last chunk,
# 10 is more than N.
@pytest.mark.parametrize("slot_chunk", [1, 3, 5, 7, 10])
@pytest.mark.parametrize("slot_map", [True, False])
def test_chunks_give_the_dynamic_losses_and_gradients(slot_chunk: int,
                                                      slot_map: bool) -> None:
  inputs = _inputs(seed=slot_chunk, slot_map=slot_map)
  expected, expected_grad = tf.function(
      lambda: _losses_and_gradient(inputs, static_shapes=False))()
  losses, grad = tf.function(
      lambda: _losses_and_gradient(inputs, static_shapes=True,
                                   slot_chunk=slot_chunk),
      jit_compile=True)()
  for key in _LOSS_KEYS:
    np.testing.assert_allclose(losses[key], expected[key], rtol=1e-5)
  assert np.abs(expected_grad.numpy()).sum() > 0
  np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-7)


def test_chunk_must_be_positive() -> None:
  with pytest.raises(ValueError, match="at least 1, got 0"):
    losses_fn(**_inputs(seed=0, slot_map=True), no_object_weight=0.1,
              static_shapes=True, slot_chunk=0)


def test_chunks_run_eagerly() -> None:
  inputs = _inputs(seed=1, slot_map=True)
  expected, expected_grad = _losses_and_gradient(inputs, static_shapes=False)
  losses, grad = _losses_and_gradient(inputs, static_shapes=True,
                                      slot_chunk=3)
  for key in _LOSS_KEYS:
    np.testing.assert_allclose(losses[key], expected[key], rtol=1e-5)
  np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-7)


# Compiles the criterion of the tiny experiment's sizes (S, N, Q, classes,
# stride 4) with its gradient under XLA, without running it, and prints the
# largest buffers of XLA's buffer assignment. XLA_FLAGS must be set before
# TensorFlow starts, hence a separate process.
_BUFFERS_SCRIPT = """
import json, os, pathlib, sys, tempfile
dump = pathlib.Path(tempfile.mkdtemp())
os.environ["XLA_FLAGS"] = f"--xla_dump_to={dump}"
import numpy as np
import tensorflow as tf
from official.core import exp_factory
from trainer_module import registry_imports
from trainer_module import xla_buffers
from trainer_module.configs import experiment_names
from trainer_module.losses import maskformer_losses
config = exp_factory.get_exp_config(experiment_names.TINY).task
B, S = 2, config.model.input_size[0]
N, Q = config.train_data.num_segment_slots, config.model.num_queries
rng = np.random.default_rng(0)
slot_map = tf.constant(rng.integers(-1, N, (B, S, S)), tf.int32)
args = (tf.constant(rng.normal(size=(B, Q, config.model.num_classes + 1)),
                    tf.float32),
        tf.constant(rng.normal(size=(B, S // 4, S // 4, Q)), tf.float32))
result = {"B": B, "S": S, "N": N}
for arg in sys.argv[1:]:
  chunk = int(arg) or N
  def step(class_logits, mask_logits):
    with tf.GradientTape() as tape:
      tape.watch(mask_logits)
      losses = maskformer_losses(
          class_logits, mask_logits, tf.zeros([B, N], tf.int32), slot_map,
          tf.ones([B, N], bool), no_object_weight=0.1, slot_chunk=chunk)
      total = losses["loss_mask"] + losses["loss_dice"]
    return tape.gradient(total, mask_logits)
  step.__name__ = f"criterion_chunk_{arg}"
  tf.function(step, jit_compile=True).experimental_get_compiler_ir(*args)(
      stage="optimized_hlo")
  [path] = xla_buffers.find_dumps(dump, f"_{step.__name__}_")
  largest = xla_buffers.read(path).largest(1)[0]
  result[arg] = {"bytes": largest.size, "shape": largest.shape}
print(json.dumps(result))
"""


def test_largest_criterion_buffer_is_one_chunk_under_xla() -> None:
  env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2",
             PYTHONPATH=os.pathsep.join(
                 [str(_REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
  chunk = 4
  completed = subprocess.run(
      [sys.executable, "-c", _BUFFERS_SCRIPT, str(chunk), "0"],
      env=env, capture_output=True, text=True, timeout=300, check=False)
  assert completed.returncode == 0, completed.stderr[-3000:]
  result = json.loads(completed.stdout.strip().splitlines()[-1])
  batch, size, slots = result["B"], result["S"], result["N"]
  assert slots >= 4 * chunk
  # One float32 [B, chunk, S, S] tensor: e.g. the upsampled logits of a chunk.
  assert result[str(chunk)]["bytes"] <= 4 * batch * size**2 * chunk, result
  # Control: chunk 0 = one chunk of all N slots (the dense static path) has a
  # buffer of N·S² per image, which the bound above rejects.
  assert result["0"]["bytes"] >= 4 * batch * size**2 * slots, result
