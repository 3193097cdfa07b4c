"""TFLite export: float / full-integer int8 / sparse-encoded TFLite, TFLite Micro arrays.

Public API
- ``keras_to_tflite(model, quantization="int8", representative=None, *, sparse=False)``
  -> bytes, for feed-forward Keras models (HAR CNNs).
- ``fastgrnn_to_tflite(params, quantization="int8", representative=None, *, seq_len=128,
  method="step", sparse=False)`` -> ``FastGRNNTFLite`` (workaround B: one int8 step model
  plus the head, loop outside) or bytes (``method="while"``, workaround A).
- ``predict_tflite(model, windows, *, classes=False)`` -> logits / classes (ai-edge-litert,
  default delegates off).
- ``predict_tflm(model, windows)``, ``tflm_arena_size(model)``,
  ``compare_tflm_litert(model, windows)``: the TFLite Micro host runtime.
- ``write_tflm_array(model, out_dir, name="model_data", arena_bytes=None)`` -> .h / .cc;
  ``tflm_per_tensor(quantization)``: per-tensor weights for TFLM (int16x8: CMSIS-NN).
- ``check_runtime214(models)``: run int8 models in tflite-runtime 2.14 (own venv).
- ``representative_subset(model, representative, max_windows, seed=0)``: the windows an
  integer conversion calibrates on; ``step_activation_ranges(params, windows)`` (keys
  ``STEP_ACTIVATIONS``) / ``calibration_range(lo, hi)``: the int8 ranges the calibrator
  records.  Quantisation-aware fine-tuning built on them lives in ``edgeprune.qat``.
CLI: ``python -m export.tflite {check-runtime214,arena,carray} ...``.
"""

from export import _keras_env  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
from export.tflite._calibration import (
    STEP_ACTIVATIONS,
    calibration_range,
    step_activation_ranges,
)
from export.tflite._carray import read_c_array, write_tflm_array
from export.tflite._convert import (
    SUPPORTED_LAYERS,
    FastGRNNTFLite,
    check_windows,
    fastgrnn_to_tflite,
    keras_to_tflite,
    representative_subset,
    step_calibration_pairs,
    tflm_per_tensor,
)
from export.tflite._predict import make_interpreter, predict_tflite
from export.tflite._runtime214 import check_runtime214, runtime214_python
from export.tflite._tflm import compare_tflm_litert, predict_tflm, tflm_arena_size

__all__ = [
    "STEP_ACTIVATIONS",
    "SUPPORTED_LAYERS",
    "FastGRNNTFLite",
    "calibration_range",
    "check_runtime214",
    "check_windows",
    "compare_tflm_litert",
    "fastgrnn_to_tflite",
    "keras_to_tflite",
    "make_interpreter",
    "predict_tflite",
    "predict_tflm",
    "read_c_array",
    "representative_subset",
    "runtime214_python",
    "step_activation_ranges",
    "step_calibration_pairs",
    "tflm_arena_size",
    "tflm_per_tensor",
    "write_tflm_array",
]
