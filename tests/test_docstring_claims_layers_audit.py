"""Second look at the API claims of nnjax.layers' docstrings (error lines, torch's init
fans): each test pins a claim that was false and is now true."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnjax.layers.conv
from nnjax.layers import RNN, Bidirectional, Dense, GRUCell, LSTMCell, ParamsError

KEY = jax.random.key(0)


def _prose(text: str) -> str:
    """A docstring with its line breaks and indentation folded to single spaces."""
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("cell", [GRUCell, LSTMCell])
def test_rnn_feature_mismatch_names_the_whole_input_not_only_one_step(cell):
    # The cell checks one time step x[:, t] (B, F): the line said "got (3, 5)" for an input
    # (3, 6, 5), a shape the caller never passed.
    layer = RNN(cell(4))
    _, params = layer.init(KEY, (3, 6, 2))
    with pytest.raises(ValueError) as info:
        layer.apply(params, jnp.ones((3, 6, 5)))
    assert not isinstance(info.value, ParamsError)  # x is the culprit, not the params
    name = f"{cell.__name__}(4)"
    assert str(info.value) == (
        f"RNN({name}): {name}: expected input of shape (..., 2), got (3, 5) "
        "(each time step x[:, t] of the input (3, 6, 5))"
    )


def test_bidirectional_feature_mismatch_names_the_whole_input():
    layer = Bidirectional(GRUCell(3))
    _, params = layer.init(KEY, (2, 4, 2))
    with pytest.raises(ValueError, match=r"\(each time step x\[:, t\] of the input \(2, 4, 7\)\)$"):
        layer.apply(params, np.ones((2, 4, 7)))


def test_rnn_params_and_initial_state_errors_are_unchanged():
    # Only an input whose features are not W_i's gets the suffix; the params' and the
    # initial state's lines stay the cell's own (ParamsError kept for the params).
    layer = RNN(GRUCell(4))
    _, params = layer.init(KEY, (3, 6, 2))
    bad = {**params, "W_h": jnp.ones((3, 12))}
    with pytest.raises(ParamsError, match=r"^RNN\(GRUCell\(4\)\): GRUCell\(4\): params\['W_h'\]"):
        layer.apply(bad, jnp.ones((3, 6, 2)))
    with pytest.raises(ValueError) as info:
        layer.apply(params, jnp.ones((3, 6, 2)), initial_state=jnp.zeros((3, 5)))
    assert str(info.value) == (
        "RNN(GRUCell(4)): GRUCell(4): initial_state must be h of shape (3, 4), "
        "got an array of shape (3, 5)"
    )


def test_conv_docstring_gives_torchs_conv_transpose_fan_in_from_the_output_channels():
    # torch's ConvTranspose weight (C_in, F, k) takes its fan_in from axis 1: F k, the
    # output channels; the docstring said C / G prod(k) for both convolutions.
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    wide_out = torch.nn.ConvTranspose1d(3, 8, 5).weight.detach().abs().max().item()
    assert wide_out <= 1 / np.sqrt(8 * 5)  # under 1/sqrt(F k) = 0.158, not 1/sqrt(C k) = 0.258
    wide_in = torch.nn.ConvTranspose1d(8, 3, 5).weight.detach().abs().max().item()
    assert wide_in > 1 / np.sqrt(8 * 5)  # past 1/sqrt(C k): the bound is 1/sqrt(F k) = 0.258
    conv_w = torch.nn.Conv1d(8, 3, 5).weight.detach().abs().max().item()
    assert conv_w <= 1 / np.sqrt(8 * 5)  # Conv: fan_in = C prod(k), as the docstring says
    doc = _prose(nnjax.layers.conv.__doc__)
    assert "C / G prod(k) for ``Conv``, but F prod(k), the OUTPUT channels, for" in doc


def test_dense_input_mismatch_is_a_plain_valueerror_as_its_docstring_says():
    # The docstring listed "x's last axis of size in" among the checks answered by a
    # ParamsError naming the param; it is a plain ValueError naming the input (train/step.py
    # and plan.py read a ParamsError as "the params are the culprit").
    layer = Dense(3)
    _, params = layer.init(KEY, (2, 4))
    with pytest.raises(ValueError) as info:
        layer.apply(params, jnp.ones((2, 5)))
    assert not isinstance(info.value, ParamsError)
    assert str(info.value) == "Dense(3): expected input of shape (..., 4), got (2, 5)"
    doc = _prose(Dense.__doc__)
    assert "then x's last axis must have W's size in: a plain ValueError naming the layer" in doc
    assert "and x's last axis of size in: a" not in doc
