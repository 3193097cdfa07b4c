"""edgeprune's integer-only sparse C model (FastGRNN): quantise, generate C, verify, measure.

Typical use::

    from export import cmodel
    im = cmodel.quantize_fastgrnn(params, ds.mean, ds.std, ds.train.x)   # raw windows
    cmodel.generate_c(im, "out/", "har2", provenance={"sparsity": 0.9})
    x16 = cmodel.quantize_input(im, ds.test.x)                          # host helper
    classes, scores = cmodel.reference_predict(im, x16)                 # bit-exact with C
    report = cmodel.measure_bytes("out/har2_model.c")                    # model/code/ram bytes

The HAR CNN goes the same way: ``quantize_cnn(cnn_layers_from_keras(model), ...)``.
The C side is ``export/c`` (``cmodel.C_DIR``): ``ep_kernels.h`` with its two builds
(fast: ``ep_kernels_fast*.c``; small: ``ep_kernels_ref.c``, see ``export.cmodel.kernels``)
and ``ep_cnn.c``, plus the generated files.
"""

from export.cmodel.cnn import (
    IntCNN,
    cnn_float_forward,
    cnn_layers_from_keras,
    quantize_cnn,
    reference_predict_cnn,
)
from export.cmodel.codegen import C_DIR, generate_c, render, render_cnn
from export.cmodel.measure import ByteReport, measure_bytes
from export.cmodel.quant import (
    IntFastGRNN,
    Requant,
    quantize_fastgrnn,
    quantize_input,
    sigmoid_lut,
)
from export.cmodel.reference import float_predict, reference_predict
from export.cmodel.sparse import FORMATS, SparseMatrix, decode, encode, format_sizes, pick_format

__all__ = [
    "C_DIR", "FORMATS", "ByteReport", "IntCNN", "IntFastGRNN", "Requant", "SparseMatrix",
    "cnn_float_forward", "cnn_layers_from_keras", "decode", "encode", "float_predict",
    "format_sizes", "generate_c", "measure_bytes",
    "pick_format", "quantize_cnn", "quantize_fastgrnn", "quantize_input", "reference_predict",
    "reference_predict_cnn", "render", "render_cnn", "sigmoid_lut",
]
