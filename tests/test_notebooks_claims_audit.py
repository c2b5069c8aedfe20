"""Numbers that the notebooks' prose and notebooks/README.md quote, against their sources.

Fast (reads the committed .ipynb outputs, the .py twins and committed result files; runs no
notebook): a notebook regenerated, or a results file recomputed, without its prose following
fails here, naming the claim."""

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).parent.parent
NB = ROOT / "notebooks"


def printed(name: str) -> str:
    """All stream text the committed, executed notebook ``name`` printed."""
    nb = json.loads((NB / f"{name}.ipynb").read_text())
    return "".join(
        "".join(o.get("text", ""))
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    )


def prose(name: str) -> str:
    """The .py twin's markdown with the leading '# ' of each line removed, lines joined."""
    lines = (NB / f"{name}.py").read_text().splitlines()
    return " ".join(ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines)


README = (NB / "README.md").read_text()


@pytest.mark.parametrize(
    "name, pattern",
    [
        ("05_spiking_neurons_and_synchrony", r"notebook ran in ([\d.]+) s"),
        ("06_sleep_and_dreams", r"notebook ran in ([\d.]+) s"),
        ("07_a_network_that_sleeps", r"notebook run time: (\d+) s"),
    ],
)
def test_readme_quotes_each_notebooks_last_cell_time(name, pattern):
    """README's 'its last cell printed X s of wall time' is the committed run's last cell."""
    value = re.search(pattern, printed(name)).group(1)
    row = next(ln for ln in README.splitlines() if ln.startswith(f"| {name} "))
    assert f"printed {value} s of wall time" in row, (name, value, row)


def test_readme_quotes_01_theta_and_08_gru_accuracy():
    theta = re.search(r"theta, NumPy loop: ([\d.]+)", printed("01_forward_and_backprop")).group(1)
    assert f"theta = {theta} by the loop" in README, theta
    acc = re.search(r"GRU: test accuracy ([\d.]+)", printed("08_cnn_and_gru")).group(1)
    assert f"{float(acc) * 100:.1f}% against the full recipe's" in README, acc


def test_07_prose_matches_the_committed_night_results():
    """07's consolidation and replay sentences against docs/results/network-sleep."""
    res = json.loads((ROOT / "docs/results/network-sleep/results.json").read_text())
    stats = res["consolidation"]["stats"]
    recall = stats["recall"]["after_consolidation"]["S1"]
    trace = stats["trace"]["after_consolidation"]["S1"]
    text = prose("07_a_network_that_sleeps")
    a, b, p = recall["a"]["mean"], recall["b"]["mean"], recall["t_test_p"]
    assert f"{a:+.3f} against {b:+.3f}, p = {p:.2g}" in text, (a, b, p)
    d, pt = trace["difference"]["mean"], trace["t_test_p"]
    assert f"({d:.2f} nS, p = {pt:.1g})" in text, (d, pt)
    tau = stats["replay_order_sleep"]["values"]
    negative = sum(t < 0 for t in tau)
    mean = sum(tau) / len(tau)
    assert f"averaged {mean:.2f} (negative for {negative} of the {len(tau)} seeds)" in text


def test_08_prose_matches_the_mnist1d_table():
    table = (ROOT / "docs/results/mnist1d-table/README.md").read_text()
    cnn = re.search(r"\| CNN [^|]*\| \d+ \| \*\*([\d.]+ ± [\d.]+)\*\*", table).group(1)
    gru = re.search(r"\| GRU [^|]*\| \d+ \| \*\*([\d.]+ ± [\d.]+)\*\*", table).group(1)
    text = prose("08_cnn_and_gru")
    assert f"CNN at {cnn}% and the GRU at {gru}%" in text, (cnn, gru)
    assert f"the full run's {gru.split()[0]}%" in text, gru
