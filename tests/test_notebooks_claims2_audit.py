"""A second look at the prose of notebooks 01-05 and 08, against what their cells print.

Fast: reads the committed .ipynb outputs and the .py twins, and compiles one small program
for XLA's cost analysis; runs no notebook. A notebook re-executed elsewhere (another
machine, other numbers) without its prose following fails here, naming the claim."""

import pathlib
import re

import pytest
from test_notebooks_claims_audit import printed  # the executed notebook's printed text

ROOT = pathlib.Path(__file__).parent.parent
NB = ROOT / "notebooks"
AUDITED = [
    "01_forward_and_backprop",
    "02_activations_and_losses",
    "03_optimizers",
    "04_jit_vmap_devices",
    "05_spiking_neurons_and_synchrony",
    "08_cnn_and_gru",
]


def prose(name: str) -> str:
    """The .py twin's comment text, the leading '# ' of each line removed, lines joined by
    spaces (a sentence broken across lines reads whole)."""
    lines = (NB / f"{name}.py").read_text().splitlines()
    return " ".join(ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines)


@pytest.mark.parametrize("name", AUDITED)
def test_no_unhedged_this_machine(name):
    """'On this machine ...' is false for a reader who runs the notebook elsewhere (04 said
    the default device is the CPU): machine-bound statements name the run they come from."""
    assert "this machine" not in prose(name).lower(), name


def test_04_device_sentence_matches_the_committed_run():
    """04 says the run whose outputs are shown had only the CPU: its printed devices agree."""
    text, out = prose("04_jit_vmap_devices"), printed("04_jit_vmap_devices")
    assert "the run whose outputs are shown here had only the CPU (printed below)" in text
    assert re.search(r"^devices: +\[CpuDevice\(id=0\)\]$", out, re.M), out[:300]


def test_04_vmap_sweep_flops_quoted_and_no_gpu_filled():
    """04 no longer says eight batched 64-64-64-10 models fill a GPU (unmeasured, and one
    step of all eight is ~12 MFLOP); the figure it quotes is XLA's cost analysis of that
    step (8 models vmapped, their own params, batch 32)."""
    import jax
    import jax.numpy as jnp

    import nnjax

    model = nnjax.mlp([64, 64, 10], "relu")
    _, params = model.init(jax.random.key(0), (-1, 64))
    stacked = jax.tree.map(lambda a: jnp.stack([a] * 8), params)
    loss_fn = nnjax.make_loss_fn(model, "softmax_cross_entropy")

    def step(p, x, t, lr):
        g = jax.grad(loss_fn)(p, (x, t))
        return jax.tree.map(lambda a, b: a - lr * b, p, g)

    x, t = jnp.ones((32, 64)), jnp.zeros(32, jnp.int32)
    sweep = jax.jit(jax.vmap(step, in_axes=(0, None, None, 0)))
    cost = sweep.lower(stacked, x, t, jnp.ones(8)).compile().cost_analysis()
    flops = (cost[0] if isinstance(cost, list) else cost)["flops"]
    # the matmuls alone: forward, weight gradients, input gradients of layers 2 and 3
    macs = 32 * (64 * 64 + 64 * 64 + 64 * 10)
    analytic = 8 * 2 * (2 * macs + 32 * (64 * 64 + 64 * 10))
    assert analytic <= flops < 1.1 * analytic, (flops, analytic)
    text = prose("04_jit_vmap_devices")
    assert f"about {round(flops / 1e6)} MFLOP per step for all eight" in text, flops
    assert "eight batched together would not" not in text


def test_02_steps_to_half_quoted():
    """02: MSE 'barely moves for about 200 steps', cross-entropy 'passes 0.5 after 7 steps'."""
    out, text = printed("02_activations_and_losses"), prose("02_activations_and_losses")
    mse = int(re.search(r"MSE: p first above 0.5 after (\d+) steps", out).group(1))
    ce = int(re.search(r"cross-entropy: p first above 0.5 after (\d+) steps", out).group(1))
    assert 150 <= mse <= 250 and "barely moves for about 200 steps" in text, mse
    assert f"$p$ passes 0.5 after {ce} steps" in text, ce


def test_03_chosen_rates_and_update_counts_quoted():
    """03's sentence of chosen rates and '(160 against 20 here)' against its summary tables."""
    out, text = printed("03_optimizers"), prose("03_optimizers")
    rows = re.findall(r"^(gd|sgd|adam) +([\d.]+) +(\d+) ", out, re.M)
    moons, digits = (
        dict((n, (lr, u)) for n, lr, u in rows[:3]),
        dict((n, (lr, u)) for n, lr, u in rows[3:6]),
    )
    said = (
        f"Adam {moons['adam'][0]} on moons and {digits['adam'][0]} on digits, "
        f"SGD {moons['sgd'][0]} and {digits['sgd'][0]}, GD {moons['gd'][0]} and {digits['gd'][0]}"
    )
    assert said in text, said
    assert f"({moons['sgd'][1]} against {moons['gd'][1]} here)" in text, moons


def test_05_hh_onset_quoted():
    """05: 'silent up to I ≈ 6.25 µA/cm², then it jumps to ≈ 50 Hz'."""
    name = "05_spiking_neurons_and_synchrony"
    out, text = printed(name), prose(name)
    m = re.search(r"between ([\d.]+) and ([\d.]+) µA/cm², first sustained rate ([\d.]+) Hz", out)
    low, rate = float(m.group(1)), float(m.group(3))
    assert f"I ≈ {low:.2f} µA/cm²" in text and abs(rate - 50) < 2.5, (low, rate)
