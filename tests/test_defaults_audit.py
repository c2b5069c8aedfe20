"""Stated defaults are the ones used (helper audit): what a run records and shows for an
option left out is the value it applied, and the help names no default a command ignores."""

import json

import pytest

from nnjax import optim
from nnjax.cli import _compilation_cache, build_parser, main


def _checked(*argv):
    from nnjax.commands import train

    args = build_parser(["train"]).parse_args(["train", *argv])
    train.check(args)
    return args


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (["--optimizer", "sgd"], {"lr": 0.01, "weight_decay": 0.0}),
        (["--optimizer", "adamw"], {"lr": 1e-3, "weight_decay": optim.ADAMW_WEIGHT_DECAY}),
        (["--optimizer", "adamw", "--weight-decay", "0"], {"weight_decay": 0.0}),
        (["--schedule", "warmup-cosine"], {"warmup": optim.DEFAULT_WARMUP, "decay_rate": None}),
        (["--schedule", "exponential"], {"decay_rate": optim.DEFAULT_DECAY_RATE, "warmup": None}),
        (["--lr", "0.2"], {"lr": 0.2, "weight_decay": 0.0}),
    ],
)
def test_the_record_holds_the_values_the_run_applies(argv, want):
    """history.json and model.json recorded lr null (sgd ran at 0.01) and weight_decay null
    (adamw decayed at 1e-4): the options as given, not the values used."""
    from nnjax.commands import train_options

    args = _checked("--dataset", "moons", *argv)
    config = train_options.recorded(args)
    assert {k: config[k] for k in want} == want
    assert args.lr == (0.2 if "--lr" in argv else None) or args.optimizer == "adam"


def test_adamw_shows_its_own_weight_decay():
    from nnjax.commands import train_options

    assert "wd=0.0001" in train_options.describe(_checked("--optimizer", "adamw"))
    assert "wd=0 " in train_options.describe(
        _checked("--optimizer", "adamw", "--weight-decay", "0", "--dropout", "0.1")
    )
    assert "wd" not in train_options.describe(_checked("--optimizer", "sgd"))


def test_a_train_run_records_adamws_weight_decay(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--dataset", "toy", "--optimizer", "adamw", "--epochs", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "adamw lr=0.001 batch=full epochs=1 wd=0.0001" in capsys.readouterr().out
    for name in ("history.json", "model.json"):
        config = json.loads((out / name).read_text())["config"]
        assert (config["lr"], config["weight_decay"]) == (1e-3, 1e-4), name


def test_bench_refuses_a_cache_dir_it_would_ignore(tmp_path):
    """nnjax bench runs without the compilation cache (COMPILATION_CACHE = False); its help
    named the default cache folder, and a --cache-dir given to it was silently ignored."""
    args = build_parser(["bench"]).parse_args(["bench", "--cache-dir", str(tmp_path)])
    with pytest.raises(ValueError, match="nnjax bench always compiles afresh"):
        _compilation_cache(args, allowed=False)
    text = build_parser(["bench"]).commands["bench"].format_help()
    text = " ".join(text.split())
    assert "default: $NNJAX_CACHE_DIR" not in text and "refused here" in text
    text = " ".join(build_parser(["train"]).commands["train"].format_help().split())
    assert "default: $NNJAX_CACHE_DIR" in text


def test_compare_states_its_default_activation():
    """compare --help said the activation defaults to the dataset's preset; five of the six
    presets name none, and the study's own default (relu) applies."""
    from nnjax.compare import PRESETS
    from nnjax.compare.study import Study

    text = " ".join(build_parser(["compare"]).commands["compare"].format_help().split())
    assert f"default: {Study.activation}, or the dataset's preset where it has one" in text
    named = {name: p["activation"] for name, p in PRESETS.items() if "activation" in p}
    assert named == {"toy": "tanh"} and "tanh for toy" in text


@pytest.mark.parametrize("dataset", ["digits", "moons", "mnist1d", "toy"])
def test_the_record_holds_the_split_the_run_used(dataset):
    """history.json recorded test_split null and val_split null for the default split: the
    record now holds the fraction of the examples the run held out (mnist1d: its canonical
    1000 of 5000), and None only where nothing is held out (toy and xor: test = train)."""
    from nnjax.commands import train_data, train_options

    args = _checked("--dataset", dataset)
    config = train_options.recorded(args)
    ds = train_data.load_data(args)
    assert config["val_split"] == 0.0 and ds.y_val is None
    if dataset == "toy":
        assert config["test_split"] is None and ds.X_test is ds.X_train
        return
    n = len(ds.y_train) + len(ds.y_test)
    assert abs(len(ds.y_test) / n - config["test_split"]) <= 1 / n
