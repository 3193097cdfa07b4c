"""Which weights of a Keras model are prunable (the pruning *policy*).

Contract: :func:`collect_prunable` walks a built Keras 2 model (``tf_keras``) in
``model.layers`` order, recursing into nested models and wrappers, and returns one
:class:`PrunableWeight` per prunable weight tensor:

* ``Dense``, ``Conv1D/2D/3D`` (and transposed convolutions), ``Embedding``: ``kernel``
  (``embeddings``);
* ``DepthwiseConv1D/2D``: ``depthwise_kernel``; ``SeparableConv1D/2D``:
  ``depthwise_kernel`` and ``pointwise_kernel``;
* any ``tfmot.sparsity.keras.PrunableLayer``: its ``get_prunable_weights()``;
* ``keras.layers.RNN`` (also LSTM/GRU/SimpleRNN, ``Bidirectional``, ``StackedRNNCells``):
  the cell's prunable weights: a ``PrunableLayer`` cell (FastGRNN) or a built-in cell's
  ``kernel`` and ``recurrent_kernel``.

Biases, normalisation parameters and other scalars/vectors (FastGRNN's zeta, nu) are
never prunable. Layers known to hold only non-prunable weights (normalisation, PReLU)
are skipped. Any other layer that owns trainable weights raises ``ValueError`` naming
it: the library refuses to guess. A "layer" in the Minimum Threshold sense is one prunable
weight tensor (a FastGRNN cell contributes ``W`` and ``U``, or ``W1, W2, U1, U2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras

__all__ = ["PrunableWeight", "collect_prunable"]

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
_RNN_CELLS = tuple(
    cls for cls in (L.SimpleRNNCell, L.LSTMCell, L.GRUCell) if cls is not None
)


@dataclass(frozen=True)
class PrunableWeight:
    """One prunable weight tensor.

    ``key`` is the stable name used for masks: ``"<top-level layer name>/<weight
    name>"`` (``"fastgrnn/W1"``, ``"logits/kernel"``; nested models add their layer
    name; repeats get ``_1, _2``), independent of Keras' automatic cell/variable naming;
    ``layer`` is the Keras layer (or RNN cell) that owns ``variable``;
    ``kind`` is ``"dense" | "conv" | "depthwise" | "embedding" | "rnn" | "custom"``
    (ERK and the collapse check read the shape through it).
    """

    key: str
    layer: keras.layers.Layer
    variable: tf.Variable
    kind: str

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
        out = []
        for sub in layer.layers:
            out.extend((o, v, k, f"{sub.name}/{n}") for o, v, k, n in _layer_weights(sub))
        return out
    if isinstance(layer, L.Bidirectional):
        return _layer_weights(layer.forward_layer) + _layer_weights(layer.backward_layer)
    if isinstance(layer, L.Wrapper):  # TimeDistributed and friends
        return _layer_weights(layer.layer)
    if isinstance(layer, L.RNN):
        out = []
        for cell in _rnn_cells(layer):
            if isinstance(cell, _PrunableLayer):
                out.extend((cell, w, "rnn") for w in cell.get_prunable_weights())
            elif isinstance(cell, _RNN_CELLS):
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
    if isinstance(layer, _NON_PRUNABLE) or not layer.trainable_weights:
        return []  # nothing learned to prune (unknown layers with frozen state included)
    raise ValueError(
        f"layer {layer.name!r} of type {type(layer).__name__} has weights but edgeprune "
        "does not know which are prunable: make it a tfmot.sparsity.keras.PrunableLayer "
        "(get_prunable_weights) or remove it"
    )


def collect_prunable(model: keras.Model) -> list[PrunableWeight]:
    """All prunable weights of ``model``, in layer order, each with a unique ``key``.

    Raises ``ValueError`` if the model is not built, has no prunable weight, or holds a
    layer with weights that is neither a known Keras layer nor a ``PrunableLayer``.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"expected a tf_keras Model, got {type(model).__name__}")
    if not model.built or not model.weights:
        raise ValueError(
            f"model {model.name!r} is not built (no weights yet): call it on data or "
            "build it before pruning"
        )
    found: list[PrunableWeight] = []
    seen_vars: set[int] = set()
    seen_keys: set[str] = set()
    for layer in model.layers:
        for owner, var, kind, suffix in _layer_weights(layer):
            if id(var) in seen_vars:  # shared layers appear once
                continue
            seen_vars.add(id(var))
            base = f"{layer.name}/{suffix}"
            key, i = base, 1
            while key in seen_keys:
                key, i = f"{base}_{i}", i + 1
            seen_keys.add(key)
            found.append(PrunableWeight(key=key, layer=owner, variable=var, kind=kind))
    if not found:
        raise ValueError(
            f"model {model.name!r} has nothing prunable (no Dense/Conv/DepthwiseConv "
            "kernel, RNN cell matrix or PrunableLayer weight)"
        )
    return found
