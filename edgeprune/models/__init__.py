"""Models: FastGRNN (cell, HAR classifier, exported parameters) and CNNs.

Public door of the package; see docs/CONTRACTS.md for ``fastgrnn_params``.
``FastGRNNParams`` (validated parameters, the one numpy forward pass) is
``export.fastgrnn_params.FastGRNNParams``, re-exported here.
"""

from edgeprune.models.cnn import (
    har_cnn,
    mobilenet_v1,
    resnet32,
    resnet50,
    wide_resnet,
    wrn_28_8,
)
from edgeprune.models.fastgrnn import (
    NONLINEARITIES,
    FastGRNNCell,
    FastGRNNParams,
    custom_objects,
    fastgrnn_classifier,
    fastgrnn_params,
    load_model,
    quant_sigm,
    quant_tanh,
)

__all__ = [
    "NONLINEARITIES",
    "FastGRNNCell",
    "FastGRNNParams",
    "custom_objects",
    "fastgrnn_classifier",
    "fastgrnn_params",
    "har_cnn",
    "load_model",
    "mobilenet_v1",
    "quant_sigm",
    "quant_tanh",
    "resnet32",
    "resnet50",
    "wide_resnet",
    "wrn_28_8",
]
