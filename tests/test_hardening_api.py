"""Bad input at the Python API of the C model: one-line ValueError, and nothing written.

``export.cmodel.generate_c`` is the last gate before C that runs on a microcontroller:
a hand-built or edited ``IntFastGRNN`` with constants outside the ranges documented in
``export/c/ep_kernels.h`` would compile to C with negative shifts or int32 overflow
(undefined behaviour; UBSan reports it), so the generator refuses it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from test_cmodel import SYN_MEAN, SYN_STD, centre, random_params, synthetic_windows

from export import cmodel
from export.cmodel.quant import Requant, sigmoid_lut

pytestmark = pytest.mark.bad_input


@pytest.fixture(scope="module")
def im() -> cmodel.IntFastGRNN:
    cal = synthetic_windows(16, seed=1)
    params = centre(random_params(0, hidden=16, u_rank=8), SYN_MEAN, SYN_STD, cal)
    return cmodel.quantize_fastgrnn(params, SYN_MEAN, SYN_STD, cal)


def _one_line(err: pytest.ExceptionInfo) -> str:
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)
    return str(err.value)


OUT_OF_RANGE = {
    "in_shift 0": (dict(in_shift=0), "in_shift = 0 is outside 1..30"),
    "in_shift 31": (dict(in_shift=31), "in_shift = 31 is outside 1..30"),
    "pre_frac 15": (dict(pre_frac=15), "pre_frac = 15 is outside 1..14"),
    "lut_shift = pre_frac": (dict(lut_shift=12, lut=sigmoid_lut(12)), "lut_shift = 12"),
    "h_frac 16": (dict(h_frac=16), "h_frac = 16 is outside 0..15"),
    "negative h_max": (dict(h_max=-1), "h_max = -1"),
    "zeta above 1": (dict(zeta_q15=40000), "zeta_q15 = 40000"),
    "bias shift 24": (dict(bias_gate_shift=24), "bias_gate_shift = 24 is outside 0..23"),
    "requant shift 0": (dict(rq_w=Requant(2**30, 0)), "rq_w.shift = 0 is outside 1..62"),
    "requant shift 63": (dict(rq_u=Requant(2**30, 63)), "rq_u.shift = 63"),
    "negative requant": (dict(rq_u=Requant(-5, 30)), "rq_u.mult = -5"),
    "in_mult 16384": (dict(in_mult=np.full(9, 16384, np.int16)), "in_mult = 16384"),
    "short sigmoid table": (dict(lut=sigmoid_lut(1)[:-1]), "sigmoid table has 16 entries"),
}


@pytest.mark.parametrize("case", list(OUT_OF_RANGE))
def test_generator_refuses_constants_outside_the_documented_ranges(im, tmp_path: Path,
                                                                   case: str):
    change, message = OUT_OF_RANGE[case]
    bad = dataclasses.replace(im, **change)
    with pytest.raises(ValueError) as err:
        cmodel.generate_c(bad, tmp_path / "c_model", "har2")
    assert message in _one_line(err)
    assert not (tmp_path / "c_model").exists()


def test_generator_refuses_a_matrix_that_could_overflow_int32(im, tmp_path: Path):
    wide = cmodel.encode(np.full((16, 600), 127, np.int8), "dense")  # 600*127*32768 >= 2^31
    bad = dataclasses.replace(im, matrices={**im.matrices, "u2": wide})
    with pytest.raises(ValueError) as err:
        cmodel.generate_c(bad, tmp_path, "har2")
    assert "matrix u2 could overflow the int32 accumulator" in _one_line(err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("windows", "message"), [
    (np.zeros((2, 128, 8), np.int16), r"shape \(N, T, 9\)"),
    (np.zeros((128,), np.int16), r"shape \(N, T, 9\)"),
    (np.zeros((2, 128, 9), np.float32), "must be int16"),
    (np.zeros((2, 128, 9), np.int32), "must be int16"),
])
def test_reference_refuses_windows_of_the_wrong_shape_or_type(im, windows, message):
    with pytest.raises(ValueError, match=message) as err:
        cmodel.reference_predict(im, windows)
    _one_line(err)


@pytest.mark.parametrize(("windows", "message"), [
    (np.full((1, 128, 9), np.nan), "NaN or inf"),
    (np.full((1, 128, 9), np.inf), "NaN or inf"),
    (np.zeros((1, 128, 3)), r"shape \(N, T, 9\)"),
])
def test_quantize_input_refuses_non_finite_or_misshapen_windows(im, windows, message):
    with pytest.raises(ValueError, match=message) as err:
        cmodel.quantize_input(im, windows)
    _one_line(err)


def test_quantize_input_saturates_instead_of_wrapping(im):
    """Out-of-range but finite samples are clamped to int16, never wrapped."""
    huge = np.full((1, 4, 9), 1e30)
    x16 = cmodel.quantize_input(im, np.concatenate([huge, -huge], axis=1))
    assert (x16[0, :4] == 32767).all() and (x16[0, 4:] == -32768).all()


def test_encode_refuses_an_unknown_format():
    with pytest.raises(ValueError) as err:
        cmodel.encode(np.ones((2, 2), np.int8), "zip")
    assert "zip" in _one_line(err)


@pytest.fixture(scope="module")
def cnn() -> cmodel.IntCNN:
    from test_cmodel_cnn import har_cnn_layers

    cal = synthetic_windows(8, seed=1)
    return cmodel.quantize_cnn(har_cnn_layers(), SYN_MEAN, SYN_STD, cal)


def _cnn_with(cnn: cmodel.IntCNN, layer: int | None = None, **change) -> cmodel.IntCNN:
    layers = [dataclasses.replace(lay) for lay in cnn.layers]
    if layer is None:
        return dataclasses.replace(cnn, layers=layers, **change)
    layers[layer] = dataclasses.replace(layers[layer], **change)
    return dataclasses.replace(cnn, layers=layers)


@pytest.mark.parametrize(("make", "message"), [
    (lambda m: _cnn_with(m, in_shift=0), "in_shift = 0 is outside 1..30"),
    (lambda m: _cnn_with(m, in_mult=np.full(9, -1, np.int16)), "in_mult = -1"),
    (lambda m: _cnn_with(m, 0, rq=Requant(2**30, 0)), "layer 'conv0' shift = 0"),
    (lambda m: _cnn_with(m, 0, rq=Requant(2**30, 70)), "layer 'conv0' shift = 70"),
    (lambda m: _cnn_with(m, 0, matrix=cmodel.encode(np.full((16, 600), 127, np.int8), "dense")),
     "layer 'conv0' could overflow the int32 accumulator"),
], ids=["in_shift 0", "negative in_mult", "shift 0", "shift 70", "overflowing kernel"])
def test_cnn_generator_refuses_constants_outside_the_documented_ranges(cnn, tmp_path: Path,
                                                                       make, message):
    with pytest.raises(ValueError) as err:
        cmodel.generate_c(make(cnn), tmp_path / "c_model", "cnn")
    assert message in _one_line(err)
    assert not (tmp_path / "c_model").exists()
