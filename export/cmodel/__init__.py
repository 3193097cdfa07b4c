"""edgeprune's integer-only sparse C model (FastGRNN): quantise, generate C, verify, measure.

Typical use::

    from export import cmodel
    im = cmodel.quantize_fastgrnn(params, ds.mean, ds.std, ds.train.x)   # raw windows
    cmodel.generate_c(im, "out/", "har2", provenance={"sparsity": 0.9})
    x16 = cmodel.quantize_input(im, ds.test.x)                          # host helper
    classes, scores = cmodel.reference_predict(im, x16)                 # bit-exact with C
    report = cmodel.measure_bytes("out/har2_model.c")                    # model/code/ram bytes

The C side is ``export/c/ep_kernels.{h,c}`` (``cmodel.C_DIR``) plus the generated files.
"""

from export.cmodel.codegen import C_DIR, generate_c, render
from export.cmodel.measure import ByteReport, measure_bytes
from export.cmodel.quant import (
    IntFastGRNN,
    Requant,
    check_params,
    float_forward,
    quantize_fastgrnn,
    quantize_input,
    sigmoid_lut,
)
from export.cmodel.reference import float_predict, reference_predict
from export.cmodel.sparse import FORMATS, SparseMatrix, decode, encode, format_sizes, pick_format

__all__ = [
    "C_DIR", "FORMATS", "ByteReport", "IntFastGRNN", "Requant", "SparseMatrix",
    "check_params", "decode", "encode", "float_forward", "float_predict", "format_sizes",
    "generate_c", "measure_bytes", "pick_format", "quantize_fastgrnn", "quantize_input",
    "reference_predict", "render", "sigmoid_lut",
]
