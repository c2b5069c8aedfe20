"""The NumPy twin vs jax.grad on random MLPs and on random networks mixing every layer,
drawn by hypothesis (float64, rel <= 1e-10).

MLPs: depth 1-5, widths 1-128, batch 1-256, every activation (hidden and output), every loss and
target form, with and without biases, and output layers scaled up to 1e4 (extreme logits).
Each example costs one small XLA compile (at a fast optimisation level), no more.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnjax.activations import ACTIVATIONS
from nnjax.losses import LOSSES
from nnjax.verify import (
    RTOL64,
    Arch,
    compare_mlp,
    compare_network,
    network_spec,
    output_activation_for,
)

NAMES = sorted(ACTIVATIONS)


@st.composite
def architectures(draw) -> Arch:
    depth = draw(st.integers(1, 5))
    sizes = tuple(draw(st.lists(st.integers(1, 128), min_size=depth, max_size=depth)))
    loss = draw(st.sampled_from(sorted(LOSSES)))
    out_act = output_activation_for(loss, draw(st.sampled_from([None, *NAMES])))
    if loss == "softmax_cross_entropy":
        target = draw(st.sampled_from(["labels", "match", "probs"]))
    else:
        target = draw(st.sampled_from(["match", "flat"]))
    return Arch(
        n_in=draw(st.integers(1, 128)),
        sizes=sizes,
        batch=draw(st.integers(1, 256)),
        activation=draw(st.sampled_from(NAMES)),
        output_activation=out_act,
        loss=loss,
        target=target,
        use_bias=draw(st.booleans()),
        logit_scale=draw(st.sampled_from([1.0, 1e2, 1e4])) if out_act is None else 1.0,
    )


def _assert_twin_matches_jax(arch: Arch, seed: int) -> None:
    rows = compare_mlp(arch, seed)
    assert len(rows) == 4  # output, loss, dJ/dparams, dJ/dX
    bad = [f"{r.component}: rel {r.max_rel:.2e}" for r in rows if not r.passed]
    assert not bad, f"{arch}: " + "; ".join(bad)
    assert all(r.max_rel <= RTOL64 for r in rows)


# 202 architectures in two halves of 101, so that `pytest -n 2` runs them side by side. Each
# half is derandomized from its own name, so the halves draw different architectures except
# (at most) hypothesis' first, simplest example: >= 200 distinct ones in all.
HALF = settings(
    max_examples=101,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@HALF
@given(arch=architectures(), seed=st.integers(0, 2**32 - 1))
def test_twin_matches_jax_grad_on_random_mlps_first_half(arch, seed):
    _assert_twin_matches_jax(arch, seed)


@HALF
@given(arch=architectures(), seed=st.integers(0, 2**32 - 1))
def test_twin_matches_jax_grad_on_random_mlps_second_half(arch, seed):
    _assert_twin_matches_jax(arch, seed)


# --- random architectures mixing every layer ----------------------------------------------
#
# 1-D and 2-D convolutions (random stride, padding, dilation, groups; sometimes transposed),
# max/average/global pools, layer and batch norm, residual and fan-out/parallel/fan-in
# branches, SimpleRNN/GRU/LSTM (one direction or both, last output or every step) and a dense
# read-out, on small random inputs (nnjax.verify.network_spec). Every draw goes through
# hypothesis, so a failure shrinks to a small network. Each example costs one fast compile.


@st.composite
def networks(draw):
    choose = lambda options: draw(st.sampled_from(options))
    return network_spec(choose)


def _assert_network_twin_matches_jax(net, seed):
    spec, shape = net
    rows = compare_network(spec, shape, seed)
    assert len(rows) == 4  # init shape == apply shape, output, dJ/dparams, dJ/dx
    bad = [f"{r.component}: rel {r.max_rel:.2e}" for r in rows if not r.passed]
    assert not bad, f"{spec} on {shape}: " + "; ".join(bad)


@HALF
@given(net=networks(), seed=st.integers(0, 2**31 - 1))
def test_twin_matches_jax_on_random_networks_first_half(net, seed):
    _assert_network_twin_matches_jax(net, seed)


@HALF
@given(net=networks(), seed=st.integers(0, 2**31 - 1))
def test_twin_matches_jax_on_random_networks_second_half(net, seed):
    _assert_network_twin_matches_jax(net, seed)
