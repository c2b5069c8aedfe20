"""The Markdown report of :mod:`benchmarks.mnist1d_table`: the table next to the paper's."""

TARGET_TEXT = {
    "logreg": "≈ 32 (29-35)",
    "mlp": ">= 66",
    "cnn": ">= 92",
    "gru": ">= 88",
}


def _pm(values) -> str:
    import statistics

    if len(values) < 2:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def _mean_std(r: dict) -> str:
    """The row's mean ± std (ddof = 1); one seed (std None; 0.0 in older results) has no
    std: its mean alone, as :func:`_pm` shows its other columns."""
    if r["std"] is None or len(r["final_test_accuracy"]) < 2:
        return f"{r['mean']:.1f}"
    return f"{r['mean']:.1f} ± {r['std']:.1f}"


def table(results: dict) -> str:
    head = (
        "| model | paper | nnjax, final (mean ± std) | per seed | best during training | "
        "train accuracy | target | holds | wall time (compile + run) |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in results["rows"]:
        seeds = ", ".join(f"{a:.1f}" for a in r["final_test_accuracy"])
        verdict = "yes" if r["holds"] else "**no**"
        if not r["within_3_points_or_better"]:
            verdict += " (more than 3 points under the paper)"
        lines.append(
            f"| {r['label']} | {r['paper']:.0f} | **{_mean_std(r)}** | "
            f"{seeds} | {_pm(r['best_test_accuracy'])} | {_pm(r['final_train_accuracy'])} | "
            f"{TARGET_TEXT[r['model']]} | {verdict} | {r['wall_s']:.0f} s "
            f"({r['compile_s']:.0f} + {r['run_s']:.0f}) |"
        )
    return head + "\n".join(lines) + "\n"


def markdown(results: dict) -> str:
    env, recipe = results["environment"], results["recipe"]
    load = env.get("load_average_at_start")
    load_end = env.get("load_average_at_end")
    seeds = results["rows"][0]["seeds"] if results["rows"] else []
    return f"""# The MNIST-1D paper's table, reproduced with nnjax

Test accuracy (%) on canonical MNIST-1D ({results["n_train"]} train / {results["n_test"]} test),
{_count(seeds)} ({", ".join(map(str, seeds))}), after {recipe["steps"]} steps; mean ± standard
deviation over the seeds (ddof = 1). Paper: {results["paper"]}; its numbers are those of the
README table of github.com/greydanus/mnist1d (logistic 32%, MLP 68%, CNN 94%, GRU 91%).

{table(results)}
"Final" is the test accuracy after the last step (what the paper's training script prints
last); "best during training" is the best of the evaluations after every epoch (40 steps),
shown for comparison only: picking it would select on the test set.

## Recipe (the paper's repository: `notebooks/train.py`, `notebooks/models.py`)

- Adam, learning rate {recipe["learning_rate"]:g}, weight decay {recipe["weight_decay"]:g},
  batch {recipe["batch_size"]}, softmax cross-entropy, float32.
- Batches in the stored order, not shuffled: step s trains on rows 100 s mod 4000 onwards,
  as the script's `bix = (step * batch_size) % len(x_train)`. {recipe["steps"]} steps =
  {recipe["steps"] // 40} epochs of 40 steps (the script's `range(total_steps + 1)` makes one
  update more).
- The raw signals (not standardised), as the script feeds them.
- Models: logistic regression = one linear layer 40 -> 10 with softmax (`LinearBase`:
  `nnjax.mlp([10])`); MLP = `MLPBase`, hidden 100 (its constructor's default; the
  `hidden_size: 256` of the script's arguments is not passed to it) with the residual middle
  layer h + relu(W2 h) (`nnjax.resmlp`); CNN = `ConvBase` (`nnjax.cnn`); GRU = `GRUBase`,
  bidirectional, hidden 6, read-out over all 40 steps (`nnjax.gru`).
- Initial params: `{recipe["init"]}` ({_init_text(recipe["init"])}). Seed s draws them
  with `jax.random.key(s)`; the seeds of a model train together, `vmap`-ed in one compiled
  program (`nnjax.train.make_epochs_fn` + `nnjax.train.drive`).

## Machine

{env["cpu"]}, {env["cores"]} cores, JAX {env["jax"]} ({env["backend"]}), Python {env["python"]},
{env["date"]}. Load average (1, 5, 15 min) at the start {_load(load)}, at the end
{_load(load_end)}: the machine was shared, so the wall times are upper bounds. The seeds'
vmapped loop is the fused one (one `lax.scan` over steps), where on a CPU XLA runs the CNN's
convolution gradients several times slower than in straight-line programs
(`nnjax.train.execution`); `fit(execution="auto")` runs a single CNN chunked instead
(`python -m benchmarks --only cnn gru` times both).

Reproduce: `{results["command"]}`
"""


def _init_text(init: str) -> str:
    if init == "torch":
        return (
            "PyTorch's default initialisation, as the paper's models start: U(±1/sqrt(fan_in)) "
            "for every Linear and Conv weight and bias, U(±1/sqrt(H)) for the GRU's"
        )
    return (
        "nnjax's defaults: He normal for the ReLU layers, Glorot normal for the read-outs, "
        "LeCun normal for the GRU's weights with zero biases; the paper's PyTorch models start "
        "from U(±1/sqrt(fan_in)) instead (`--init torch`)"
    )


def _load(load) -> str:
    return "n/a" if not load else ", ".join(f"{v:.1f}" for v in load)


def _count(seeds) -> str:
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}"
