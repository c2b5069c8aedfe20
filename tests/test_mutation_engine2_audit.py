"""Mutation audit of the training engine's inner modules (early stopping, the execution choice
and the batch order): each test kills small deliberate faults the rest of the suite let pass."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.train.driver import ChunkReport, Driven, StopFlag
from nnjax.train.early import EarlyStopping, EarlyStoppingMonitor, RunStop
from nnjax.train.execution import choose_execution, has_convolution, parse_execution
from nnjax.train.order import batch_indices, check_epoch, run_batch_indices


class _Out(NamedTuple):
    step_loss: Any
    metrics: Any


def _monitor(rule, values, total=10, twice=()):
    """Feed one-epoch reports of ``values`` (carry: the epoch's number); the epoch after
    which a stop was requested (the driver's end; or None), the reason and the carry
    ``finish`` keeps."""
    stop = StopFlag()
    mon = EarlyStoppingMonitor(rule, stop)
    stopped_after = None
    for e, v in enumerate(values):
        out = _Out(None, {rule.metric: np.array([v])})
        report = ChunkReport(e, e + 1, total, {"w": np.array(e + 1)}, out, [out], 0.0, None, 0)
        for _ in range(2 if e + 1 in twice else 1):
            mon.hook(report)
        if stop.reason is not None:  # the driver stops here
            stopped_after = e + 1
            break
    driven = Driven(report.carry, None, 0.0, 0.0, e + 1, stop.reason)
    return stopped_after, stop.reason, int(mon.finish(driven).carry["w"])


def test_early_stopping_follows_the_documented_rule_with_min_delta_and_nan():
    """m_e < m* - min_delta improves (min); a nan never improves, even first; a report seen
    twice counts once; patience epochs without an improvement stop. Faults: ``- min_delta``
    as ``+``, the nan check dropped (nan became the best), ``wait >= patience`` as ``>``,
    ``end <= seen`` as ``<``."""
    rule = EarlyStopping(2, "m", 0.5)
    got = _monitor(rule, [np.nan, 3.0, 2.7, 2.6, 1.0], twice=(3,))
    assert got == (4, "early stopping: m did not improve for 2 epochs (best 3 at epoch 2)", 2)


def test_early_stopping_watches_an_accuracy_upwards_and_asks_no_stop_after_the_last_epoch():
    """An ``*_accuracy`` metric is "max" by default and improves when m_e > m* + min_delta;
    after the run's last epoch no stop is requested (nothing is left to stop). Faults: the
    default mode always "min", ``+ min_delta`` as ``-``, ``end < total`` as ``<=``."""
    rule = EarlyStopping(1, "val_accuracy", 0.1)
    reason = "early stopping: val_accuracy did not improve for 1 epoch (best 0.7 at epoch 2)"
    assert _monitor(rule, [0.5, 0.7, 0.75, 0.9]) == (3, reason, 2)
    assert _monitor(rule, [0.5, 0.7, 0.75], total=3) == (None, None, 2)


def test_a_run_stop_keeps_its_own_request_beside_an_outer_flag_not_yet_set():
    """RunStop: the monitor's request is its reason while the caller's flag is unset; a
    signal that came first wins. Fault: the own reason read only without an outer flag."""
    outer = StopFlag()
    flag = RunStop(outer)
    flag.request("early")
    outer.request("signal")
    assert (flag.reason, outer.reason) == ("early", "signal")
    outer2 = StopFlag()
    outer2.request("signal")
    flag2 = RunStop(outer2)
    flag2.request("early")
    assert flag2.reason == "signal"


def test_a_convolution_inside_a_nested_computation_chooses_the_chunked_loop():
    """A conv inside jax.checkpoint (a sub-jaxpr) is found; "per_step" is k = 1; any platform
    but the CPU keeps the fused loop. Faults: _contains not recursing into sub-jaxprs,
    per_step's k None, ``platform != "cpu"`` as ``== "gpu"``."""

    def apply(p, s, x, key, train):
        conv = lambda a: jax.lax.conv_general_dilated(a, p, (1,), "SAME")  # noqa: E731
        return jax.checkpoint(conv)(x), s

    p, x = jnp.ones((2, 1, 3)), jnp.ones((1, 1, 5))
    assert has_convolution(apply, p, {}, x)
    assert choose_execution("auto", apply, p, {}, x, "cpu")[:2] == ("chunked", 8)
    assert choose_execution("auto", apply, p, {}, x, "METAL")[:2] == ("fused", None)
    assert parse_execution("per_step") == ("per_step", 1)


def test_the_order_takes_the_last_epoch_and_a_batch_of_every_row_in_stored_order():
    """Epochs are in [0, 2**32): 2**32 - 1 passes, 2**32 is refused; run_batch_indices needs
    epochs >= 1; a batch of every row (b = n) is the rows in stored order, no permutation.
    Faults: ``e < SEEDS`` as ``<=``, ``epochs < 1`` as ``< 0``, ``b == n`` not full batch."""
    check_epoch(2**32 - 1, "w")
    with pytest.raises(ValueError, match=r"^w: epoch must be an int in \[0, 2\*\*32\)"):
        check_epoch(2**32, "w")
    with pytest.raises(ValueError, match=r"^run_batch_indices: epochs must be a positive int"):
        run_batch_indices(0, 0, 10, 2)
    for key, epoch in [(7, 3), (0, 0), (1, 5)]:
        np.testing.assert_array_equal(batch_indices(key, epoch, 5, 5), [np.arange(5)])
