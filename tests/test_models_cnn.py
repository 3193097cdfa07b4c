"""edgeprune.models CNN builders: exporter-compatible HAR CNN and paper parameter counts."""

import numpy as np
import pytest
import tf_keras as keras

import edgeprune  # noqa: F401
from edgeprune import models

ALLOWED = (keras.layers.InputLayer, keras.layers.Conv1D, keras.layers.MaxPooling1D,
           keras.layers.GlobalAveragePooling1D, keras.layers.Dense)


def test_har_cnn_is_small_and_exporter_compatible():
    model = models.har_cnn((128, 9), classes=2)
    assert model.count_params() <= 20_000
    for layer in model.layers:
        assert isinstance(layer, ALLOWED), layer
        act = getattr(layer, "activation", None)
        if act is not None:
            assert act.__name__ in ("relu", "linear"), layer.name
    assert model.output_shape == (None, 2)
    x = np.zeros((3, 128, 9), "float32")
    assert model(x).shape == (3, 2)
    again = models.har_cnn((128, 9), classes=2)
    for a, b in zip(model.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_resnet32_params():
    n = models.resnet32().count_params()
    assert abs(n - 0.46e6) / 0.46e6 < 0.03, n


def test_mobilenet_v1_params():
    n = models.mobilenet_v1(1.0).count_params()
    assert abs(n - 4.2e6) / 4.2e6 < 0.03, n
    small = models.mobilenet_v1(0.25, input_shape=(32, 32, 3), classes=10)
    assert small.output_shape == (None, 10)


def test_wrn_28_8_params():
    n = models.wrn_28_8().count_params()
    assert abs(n - 23.4e6) / 23.4e6 < 0.01, n


def test_resnet50_params():
    n = models.resnet50().count_params()
    assert abs(n - 25.6e6) / 25.6e6 < 0.01, n


def test_wide_resnet_small():
    model = models.wide_resnet(10, 1, classes=10)
    assert model.output_shape == (None, 10)


@pytest.mark.bad_input
@pytest.mark.parametrize("kwargs,arg", [
    ({"input_shape": (128,)}, "input_shape"), ({"input_shape": (0, 9)}, "input_shape"),
    ({"classes": 0}, "classes"), ({"filters": ()}, "filters"), ({"filters": (8, -1)}, "filters"),
    ({"kernel_size": 0}, "kernel_size"), ({"padding": "causal"}, "padding"),
])
def test_har_cnn_bad_input(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        models.har_cnn(**kwargs)


@pytest.mark.bad_input
def test_paper_cnn_bad_input():
    with pytest.raises(ValueError, match="depth"):
        models.wide_resnet(27, 8)
    with pytest.raises(ValueError, match="alpha"):
        models.mobilenet_v1(0)
    with pytest.raises(ValueError, match="width"):
        models.resnet32(width=0)


def test_mobilenet_v1_returns_logits_not_probabilities():
    model = models.mobilenet_v1(alpha=0.25, input_shape=(32, 32, 3), classes=10)
    out = model(np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32"))
    out = np.asarray(out)
    assert not np.allclose(out.sum(axis=1), 1.0, atol=1e-3)  # a softmax would sum to 1
