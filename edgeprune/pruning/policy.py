"""Which weights of a Keras model are prunable (the pruning *policy*).

Contract: :func:`collect_prunable` walks a built Keras 2 model (``tf_keras``) in
``model.layers`` order, recursing into nested models and wrappers, and returns one
:class:`PrunableWeight` per prunable weight tensor:

* ``Dense``, ``Conv1D/2D/3D`` (and transposed convolutions), ``Embedding``: ``kernel``
  (``embeddings``);
* ``DepthwiseConv1D/2D``: ``depthwise_kernel``; ``SeparableConv1D/2D``:
  ``depthwise_kernel`` and ``pointwise_kernel``;
* any ``tfmot.sparsity.keras.PrunableLayer``: its ``get_prunable_weights()``;
* ``EinsumDense`` (so ``MultiHeadAttention``'s query/key/value/output projections):
  ``kernel``; ``LocallyConnected1D/2D``: ``kernel`` (``implementation=1`` or ``3``;
  ``2`` stores structural zeros and is refused);
* ``keras.layers.RNN`` (also LSTM/GRU/SimpleRNN, ``ConvLSTM1D/2D/3D``, ``Bidirectional``,
  ``StackedRNNCells``): the cell's prunable weights: a ``PrunableLayer`` cell (FastGRNN)
  or a built-in cell's ``kernel`` and ``recurrent_kernel``;
* any other layer made of sublayers (a composite layer, a nested or subclassed
  ``Model``): its sublayers, recursively. A weight the composite owns itself
  (``add_weight`` in a subclassed ``Model`` or layer) is refused by name if it is a
  matrix; vectors/scalars count as biases.

Biases, normalisation parameters and other scalars/vectors (FastGRNN's zeta, nu) are
never prunable. Layers known to hold only non-prunable weights (normalisation, PReLU)
are skipped. Any other leaf layer that owns trainable weights raises ``ValueError``
naming it: the library refuses to guess. A "layer" in the Minimum Threshold sense is one prunable
weight tensor (a FastGRNN cell contributes ``W`` and ``U``, or ``W1, W2, U1, U2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

__all__ = ["PrunableWeight", "check_model", "collect_prunable"]

_PrunableLayer = tfmot.sparsity.keras.PrunableLayer
L = keras.layers

# Layers whose weights are never prunable (normalisation, activations with parameters).
_NON_PRUNABLE = tuple(
    cls
    for cls in (
        getattr(L, "BatchNormalization", None),
        getattr(L, "LayerNormalization", None),
        getattr(L, "GroupNormalization", None),
        getattr(L, "UnitNormalization", None),
        getattr(L, "Normalization", None),
        getattr(L, "PReLU", None),
    )
    if cls is not None
)
try:  # ConvLSTM1D/2D/3D's cell is not exported by tf_keras
    from tf_keras.src.layers.rnn.base_conv_lstm import ConvLSTMCell as _ConvLSTMCell
except ImportError:  # pragma: no cover - other tf_keras layouts
    _ConvLSTMCell = None
_RNN_CELLS = tuple(
    cls for cls in (L.SimpleRNNCell, L.LSTMCell, L.GRUCell, _ConvLSTMCell) if cls is not None
)
_TRANSPOSED = tuple(
    c for c in (getattr(L, n, None) for n in ("Conv1DTranspose", "Conv2DTranspose",
                                             "Conv3DTranspose")) if c is not None
)
_LOCAL = tuple(c for c in (getattr(L, "LocallyConnected1D", None),
                           getattr(L, "LocallyConnected2D", None)) if c is not None)


@dataclass(frozen=True)
class PrunableWeight:
    """One prunable weight tensor.

    ``key`` is the stable name used for masks: ``"<top-level layer name>/<weight
    name>"`` (``"fastgrnn/W1"``, ``"logits/kernel"``; nested models add their layer
    name; repeats get ``_1, _2``), independent of Keras' automatic cell/variable naming;
    ``layer`` is the Keras layer (or RNN cell) that owns ``variable``;
    ``kind`` is ``"dense" | "conv" | "depthwise" | "embedding" | "rnn" | "custom"``;
    ``out_axes`` are the kernel axes that index output units (the dead-unit check:
    ``(-1,)`` for Dense/Conv, the second last for a transposed convolution, both last
    for a depthwise kernel, positions x filters for LocallyConnected, the output letters
    of an EinsumDense equation; ``()`` when there is none).
    """

    key: str
    layer: keras.layers.Layer
    variable: tf.Variable
    kind: str
    out_axes: tuple[int, ...] = (-1,)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.variable.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def _rnn_cells(layer: keras.layers.Layer) -> list:
    cell = layer.cell
    if isinstance(cell, L.StackedRNNCells):
        return list(cell.cells)
    return [cell]


def _short(var: tf.Variable) -> str:
    return var.name.split(":")[0].split("/")[-1]


def _layer_weights(layer: keras.layers.Layer) -> list[tuple[object, tf.Variable, str, str]]:
    """(owner, variable, kind, key-suffix) of one layer; raises for unknown layers."""
    return [t if len(t) == 4 else (*t, _short(t[1])) for t in _owned_weights(layer)]


def _owned_weights(layer: keras.layers.Layer) -> list[tuple]:
    """(owner, variable, kind) of one layer; raises for layers it cannot handle."""
    if type(layer).__name__ == "PruneLowMagnitude":
        raise ValueError(
            f"layer {layer.name!r} is wrapped by tfmot's prune_low_magnitude; call "
            "edgeprune.pruning.strip(model) (or tfmot's strip_pruning) first"
        )
    if isinstance(layer, _PrunableLayer):
        return [(layer, w, "custom") for w in layer.get_prunable_weights()]
    if isinstance(layer, keras.Model):
        return _composite(layer, layer.layers)
    if isinstance(layer, L.Bidirectional):
        return _layer_weights(layer.forward_layer) + _layer_weights(layer.backward_layer)
    if isinstance(layer, L.Wrapper):  # TimeDistributed and friends
        return _layer_weights(layer.layer)
    if isinstance(layer, L.RNN):
        out = []
        for cell in _rnn_cells(layer):
            if isinstance(cell, _PrunableLayer):
                out.extend((cell, w, "rnn") for w in cell.get_prunable_weights())
            elif isinstance(cell, _RNN_CELLS):  # also ConvLSTM's cell
                out.append((cell, cell.kernel, "rnn"))
                out.append((cell, cell.recurrent_kernel, "rnn"))
            elif cell.weights:
                raise ValueError(
                    f"RNN layer {layer.name!r} has cell {type(cell).__name__} "
                    f"({cell.name!r}) that is neither a built-in cell nor a "
                    "tfmot PrunableLayer: implement get_prunable_weights() on it"
                )
        return out
    if isinstance(layer, L.SeparableConv1D | L.SeparableConv2D):
        return [
            (layer, layer.depthwise_kernel, "depthwise"),
            (layer, layer.pointwise_kernel, "conv"),
        ]
    depthwise = tuple(c for c in (getattr(L, "DepthwiseConv1D", None), L.DepthwiseConv2D) if c)
    if isinstance(layer, depthwise):
        return [(layer, layer.depthwise_kernel, "depthwise")]
    if isinstance(layer, L.Conv1D | L.Conv2D | L.Conv3D):
        return [(layer, layer.kernel, "conv")]
    if isinstance(layer, L.Dense):
        return [(layer, layer.kernel, "dense")]
    if isinstance(layer, L.Embedding):
        return [(layer, layer.embeddings, "embedding")]
    if isinstance(layer, L.EinsumDense):
        return [(layer, layer.kernel, "dense")]
    if isinstance(layer, _LOCAL):
        if layer.implementation == 2:
            raise ValueError(
                f"layer {layer.name!r} ({type(layer).__name__}, implementation=2) stores a "
                "dense kernel whose structural zeros would count as pruned: build it with "
                "implementation=1 (default) or 3"
            )
        return [(layer, layer.kernel, "conv")]
    if isinstance(layer, _NON_PRUNABLE) or not layer.trainable_weights:
        return []  # nothing learned to prune (unknown layers with frozen state included)
    subs = list(layer._flatten_layers(include_self=False, recursive=False))
    if subs:  # a composite layer (MultiHeadAttention, user blocks): its sublayers
        return _composite(layer, subs)
    raise ValueError(
        f"layer {layer.name!r} of type {type(layer).__name__} has weights but edgeprune "
        "does not know which are prunable: make it a tfmot.sparsity.keras.PrunableLayer "
        "(get_prunable_weights) or remove it"
    )


def _composite(layer: keras.layers.Layer, subs: list) -> list[tuple]:
    """The sublayers' weights (keys ``<sub>/<weight>``); a matrix ``layer`` owns itself
    (``add_weight`` in a subclassed model or layer) raises ``ValueError`` naming it."""
    out, covered = [], set()
    for sub in subs:
        covered.update(id(w) for w in sub.weights)
        out.extend((o, v, k, f"{sub.name}/{n}") for o, v, k, n in _layer_weights(sub))
    for w in layer.trainable_weights:
        if id(w) not in covered and len(w.shape) >= 2:
            what = "model" if isinstance(layer, keras.Model) else "layer"
            raise ValueError(
                f"{what} {layer.name!r} ({type(layer).__name__}) owns the weight "
                f"{_short(w)!r} {tuple(w.shape)} itself, outside any sublayer: edgeprune "
                "will not guess whether it is prunable. Move it into a layer (e.g. a Dense) "
                "or make the owner a tfmot.sparsity.keras.PrunableLayer "
                "(get_prunable_weights)"
            )
    return out


def _out_axes(owner: object, var: tf.Variable, kind: str) -> tuple[int, ...]:
    """Axes of ``var`` that index output units (see :class:`PrunableWeight`)."""
    ndim = len(var.shape)
    if ndim < 2:
        return ()
    if kind == "depthwise":
        return (ndim - 2, ndim - 1)
    if isinstance(owner, _TRANSPOSED) and var is owner.kernel:
        return (ndim - 2,)  # (..., out, in)
    if isinstance(owner, _LOCAL):
        return (0, 2) if ndim == 3 else ()  # (positions, patch, filters)
    if isinstance(owner, L.EinsumDense) and "." not in owner.equation:
        inputs, output = owner.equation.split("->")
        spec = inputs.split(",")[1]
        return tuple(i for i, c in enumerate(spec) if c in output)
    return (ndim - 1,)


def check_model(model: object, built: bool = True) -> None:
    """``ValueError`` unless ``model`` is a tf_keras ``Model`` (and, with ``built``, built
    and with weights); the message says what to do."""
    if not isinstance(model, keras.Model):
        kind = type(model)
        if kind.__module__.split(".")[0] == "keras":
            raise ValueError(
                f"got a Keras 3 model ({kind.__module__}.{kind.__name__}); edgeprune prunes "
                "Keras 2 (tf_keras) models: import edgeprune first, before tensorflow or "
                "keras (it selects tf_keras by setting TF_USE_LEGACY_KERAS=1), then build "
                "the model with tf.keras or tf_keras"
            )
        raise ValueError(f"expected a tf_keras Model, got {kind.__name__}")
    if built and not model.built:
        raise ValueError(
            f"model {model.name!r} is not built (no weights yet): give it an Input, call "
            "it on a batch or build(input_shape) before pruning (GlobalPruningCallback "
            "waits for fit to build it on the first batch)"
        )
    if built and not model.weights:
        raise ValueError(f"model {model.name!r} has no weights at all: nothing to prune")


def collect_prunable(model: keras.Model) -> list[PrunableWeight]:
    """All prunable weights of ``model``, in layer order, each with a unique ``key``.

    Raises ``ValueError`` (saying what to do) if the model is a Keras 3 model, is not
    built, has no weights or no prunable weight, or holds a layer or own weight that is
    neither a known Keras layer nor a ``PrunableLayer``.
    """
    check_model(model)
    found: list[PrunableWeight] = []
    seen_vars: set[int] = set()
    seen_keys: set[str] = set()
    for owner, var, kind, base in _composite(model, model.layers):
        if id(var) in seen_vars:  # shared layers appear once
            continue
        seen_vars.add(id(var))
        key, i = base, 1
        while key in seen_keys:
            key, i = f"{base}_{i}", i + 1
        seen_keys.add(key)
        found.append(PrunableWeight(key=key, layer=owner, variable=var, kind=kind,
                                    out_axes=_out_axes(owner, var, kind)))
    if not found:
        raise ValueError(
            f"model {model.name!r} has nothing prunable (no Dense/Conv/DepthwiseConv "
            "kernel, RNN cell matrix or PrunableLayer weight)"
        )
    return found
