"""The Python API of the optimizer comparison and the brain-side studies refuses bad input by
name, before anything trains: nnjax.compare (flags, model, select), the continual-learning
run's TrainConfig and its methods' hyperparameters (baselines, generative replay), the
harness's search, the tuned-file writer (which lost methods) and the night's network."""

import runpy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_brain_continual_checks import _tiny_split as _split  # T tasks of N rows, d, K

from nnjax.brain import baselines as B
from nnjax.brain import continual as C
from nnjax.brain import dreams, night, sleep_states, study, tuned, tuning
from nnjax.brain import harness as H
from nnjax.brain.sleep import make_src_method
from nnjax.compare import best_index, compare, make_study, write_report
from nnjax.compare import study as compare_study
from nnjax.compare.study import OptimizerRuns, StudyResult

# --------------------------------------------------------------------------- helpers


CFG = C.TrainConfig(hidden=(4,), steps=2, batch_size=2)
KEYS = jax.random.split(jax.random.key(0), 2)


@pytest.fixture
def no_compare_training(monkeypatch):
    monkeypatch.setattr(compare_study, "train_optimizer", lambda *a, **k: pytest.fail("trained"))


# --------------------------------------------------------------------------- nnjax.compare


@pytest.mark.parametrize("flag", ["plots", "progress"])
def test_compare_refuses_a_string_flag(flag, no_compare_training, tmp_path):
    # "no" counted as True: the plots were written, the progress bar shown
    with pytest.raises(ValueError, match=f"compare: {flag} must be True or False, got 'no'"):
        compare("xor", optimizers="sgd", seeds=1, epochs=1, out=str(tmp_path), **{flag: "no"})
    assert list(tmp_path.iterdir()) == []


def test_compare_refuses_a_model_that_is_not_a_layer(no_compare_training):
    # it was "AttributeError: 'function' object has no attribute 'init'"
    with pytest.raises(TypeError, match="compare: model must be None .* an nnjax layer"):
        compare("xor", optimizers="sgd", seeds=1, epochs=1, model=lambda x: x)


def test_best_index_and_write_report_name_a_bad_argument(tmp_path):
    runs = OptimizerRuns("sgd", np.array([0.1, 0.2]), np.arange(2), 8, 1, np.ones((2, 2, 1)),
                         {"val_loss": np.ones((2, 2, 1)), "train_loss": np.ones((2, 2, 1))},
                         0.0, 0.0)  # fmt: skip
    with pytest.raises(ValueError, match="best_index: select must be one of val_loss, .*'bogus'"):
        best_index(runs, "bogus")  # a bare KeyError: 'bogus'
    result = StudyResult(make_study("xor", optimizers="sgd", seeds=2), "m", {}, False, {})
    with pytest.raises(ValueError, match="write_report: plots must be True or False, got 'no'"):
        write_report(result, str(tmp_path / "out"), plots="no")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- TrainConfig

BAD_CFG = [
    ({"steps": 0}, "steps must be an int >= 1, got 0"),  # trained nothing, scored anyway
    ({"steps": 2.0}, "steps must be an int >= 1, got 2.0"),  # ran as 2
    ({"steps": True}, "steps must be an int >= 1, got True"),  # ran as 1
    ({"batch_size": 2.5}, "batch_size must be an int >= 1, got 2.5"),  # failed in randint
    ({"hidden": 4}, r"hidden must be a non-empty sequence of ints >= 1 .*got 4"),
    ({"learning_rate": -0.1}, r"learning_rate must be a finite number > 0, got -0.1"),
    ({"learning_rate": float("nan")}, "learning_rate must be a finite number > 0, got nan"),
    ({"learning_rate": "0.1"}, "learning_rate must be a finite number > 0, got '0.1'"),
    ({"momentum": -1.0}, r"momentum must be a finite number in \[0, 1\), got -1.0"),
    ({"momentum": 1.0}, r"momentum must be a finite number in \[0, 1\), got 1.0"),
]


@pytest.mark.parametrize(("field", "match"), BAD_CFG, ids=[str(f) for f, _ in BAD_CFG])
def test_train_config_is_checked_by_make_run_and_run_study(field, match, monkeypatch):
    cfg = CFG._replace(**field)
    with pytest.raises(ValueError, match=f"make_run: TrainConfig.{match}"):
        C.make_run(_split(), cfg)
    monkeypatch.setattr(study, "run_group", lambda *a, **k: pytest.fail("the study ran"))
    with pytest.raises(ValueError, match=f"run_study: TrainConfig.{match}"):
        study.run_study(orders=(0,), n_seeds=1, rows=("sequential",), cfg=cfg)


def test_a_valid_train_config_still_runs():
    run = C.make_run(_split(), CFG._replace(steps=np.int64(2)))
    runs = C.run_seeds(run, C.task_arrays(_split()), KEYS)
    assert runs.wake_loss.shape == (2, 2, 2) and np.isfinite(runs.wake_loss).all()


# --------------------------------------------------------------------------- methods' hp


def _run(method, hp):
    sp = _split()
    return C.run_seeds(C.make_run(sp, CFG, method), C.task_arrays(sp), KEYS, hp)


def _apply():
    return C.make_model(CFG, 2).apply


@pytest.mark.parametrize(
    ("make", "hp", "match"),
    [
        (lambda: B.ewc_method(_apply()), None, r"ewc_method: hp must be a dict with the keys "
         r"lam, gamma \(missing lam, gamma\), got None"),  # a bare TypeError in the trace
        (lambda: B.ewc_method(_apply()), {"lambda": 1.0, "gamma": 1.0}, r"missing lam\)"),
        (lambda: B.ewc_method(_apply()), {"lam": "1", "gamma": 1.0},
         "ewc_method: lam must be a number, got '1'"),
        (lambda: B.replay_method(_apply(), 2, 2, 3), {"rho": 1.0}, r"replay_method: .*missing m"),
        (lambda: B.combine(B.replay_method(_apply(), 2, 2, 3), make_src_method((3,))), None,
         r"combine: hp must be a pair"),
        (lambda: dreams.make_replay_method(C.make_model(CFG, 2), 2, 3)[0], {"rho": -1.0},
         "make_replay_method: rho must be a finite number >= 0, got -1.0"),
        (lambda: dreams.make_replay_method(C.make_model(CFG, 2), 2, 3)[0], {"rho": np.nan},
         "make_replay_method: rho must be a finite number >= 0, got nan"),
        (lambda: dreams.make_replay_method(C.make_model(CFG, 2), 2, 3)[0], {"weight": 1.0},
         "make_replay_method: hp must be None"),
    ],
)  # fmt: skip
def test_a_methods_hyperparameters_are_named_before_training(make, hp, match, monkeypatch):
    monkeypatch.setattr(C, "drive", lambda *a, **k: pytest.fail("it trained"))
    with pytest.raises(ValueError, match=match):
        _run(make(), hp)


def test_generative_replays_negative_rho_made_an_infinite_weight():
    """What the check prevents: w = rho t / (1 + rho t) at rho = -1, t = 1 is -inf."""
    rho, t = -1.0, 1.0
    with np.errstate(divide="ignore"):
        assert not np.isfinite(np.float64(rho * t) / np.float64(1.0 + rho * t))
    assert dreams.make_replay_method(C.make_model(CFG, 2), 2, 3)[0].check(None) is None


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((2, 2, 3, 0), "replay_method: capacity must be an int >= 1, got 0"),  # a gather error
        ((2, 2, 3, 2.5), "replay_method: capacity must be an int >= 1, got 2.5"),
        ((2, 0, 3), "replay_method: n_classes must be an int >= 1, got 0"),
    ],
)
def test_replay_buffer_sizes_are_checked(args, match):
    with pytest.raises(ValueError, match=match):
        B.replay_method(_apply(), *args)
    with pytest.raises(ValueError, match="lwf_method: n_classes must be an int >= 1, got 0"):
        B.lwf_method(_apply(), 0)


@pytest.mark.parametrize(
    ("n_tasks", "d", "match"),
    [(1, 3, "the buffer holds 1 tasks of 3 features, but the run's tasks are 2 of 3"),
     (2, 5, "the buffer holds inputs of d=5 features, but the run's have 3")],
)  # fmt: skip
def test_a_replay_buffer_shaped_for_another_split_is_named(n_tasks, d, match):
    # it was "Incompatible types for broadcasting" / "Dense(4): expected input of shape"
    with pytest.raises(ValueError, match=f"replay_method: {match}"):
        _run(B.replay_method(_apply(), n_tasks, 2, d), {"rho": jnp.float32(1.0), "m": 1.0})


# --------------------------------------------------------------------------- harness


def test_harness_names_a_bad_seed_floor_group_and_empty_orders(monkeypatch):
    for seed in (-1, 1.5, True):  # NumPy's SeedSequence errors; True ran as seed 1
        with pytest.raises(ValueError, match=f"candidates: seed must be an int >= 0, got {seed}"):
            H.candidates("ewc", 2, seed=seed)
    np.testing.assert_array_equal(H.candidates("ewc", 2, seed=np.int64(0))["lam"],
                                  H.candidates("ewc", 2)["lam"])  # fmt: skip
    runs = H.Runs({"final": np.ones((2, 3)), "just_learned": np.ones((2, 3))},
                  np.zeros((2, 3), bool), 0.0)  # fmt: skip
    for floor in (float("nan"), 2, "0.9", True):  # nan and 2 were taken: no candidate met it
        with pytest.raises(ValueError, match=r"select: floor must be an accuracy in \[0, 1\]"):
            H.select(runs, floor)
    assert H.select(runs, 1)["plastic_met_floor"] is True
    with pytest.raises(ValueError, match="splits_for: orders is empty"):
        H.splits_for("digits", [], validation=True)  # max() arg is an empty sequence
    monkeypatch.setattr(H, "splits_for", lambda *a, **k: pytest.fail("loaded the splits"))
    for group in (0, 2.5):
        with pytest.raises(ValueError, match="run_candidates: group must be an int >= 1, got "):
            H.run_candidates("ewc", "digits", None, (100,), KEYS, validation=True, group=group)


# --------------------------------------------------------------------------- tuning


def test_write_tuned_keeps_the_methods_a_search_did_not_run(tmp_path):
    """A search of one method replaced the dataset's whole entry: nnjax sleep then fell back
    to the box centres for every other method."""
    new = {"gamma": 0.5, "lam": 1.0}
    res = {"n_candidates": 4, "seconds": 10.0,
           "methods": {"ewc": {"chosen": {"final": new, "plastic": new}}}}  # fmt: skip
    path = tmp_path / "tuned.py"
    tuning.write_tuned("digits", res, str(path))
    got = runpy.run_path(str(path))
    assert set(got["CHOSEN"]["digits"]) == set(tuned.CHOSEN["digits"])  # nothing lost
    assert got["CHOSEN"]["digits"]["ewc"]["final"] == new
    assert got["CHOSEN"]["digits"]["src"] == tuned.CHOSEN["digits"]["src"]
    assert got["CHOSEN"]["mnist1d"] == tuned.CHOSEN["mnist1d"]
    n = got["SEARCH"]["digits"]["n_candidates"]  # the kept methods' 8, ewc's 4
    assert n["ewc"] == 4 and n["src"] == tuned.SEARCH["digits"]["n_candidates"]
    assert got["SEARCH"]["digits"]["seconds"] == tuned.SEARCH["digits"]["seconds"] + 10


def test_tune_checks_every_argument_before_the_first_method_and_names_no_winner(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(tuning, "tune_methods", lambda *a, **k: pytest.fail("it searched"))
    out = str(tmp_path / "s.json")
    bad = (
        ({"n": 0}, "tune: n must be an int >= 1, got 0"),
        ({"methods": ("sequential", "ewcc")}, "tune: methods must be distinct"),
        ({"methods": "ewc"}, "tune: methods must be a sequence"),
        ({"group": 1.5}, "tune: group must be an int >= 1"),
        ({"out": str(tmp_path / "no" / "s.json")}, "tune: out must be a file"),
    )
    for kwargs, match in bad:
        with pytest.raises(ValueError, match=match):
            tuning.tune("digits", **{"out": out, **kwargs})
    # winner -1 (no candidate competed) printed the last candidate's accuracy as the best
    rec = {"winners": {"final": -1}, "final_accuracy": {"mean": [0.1, 0.9]}}
    assert "no candidate competed" in tuning._best_line(rec)
    rec["winners"]["final"] = 0
    assert tuning._best_line(rec) == "best validation final accuracy 0.100 (candidate 0)"


# --------------------------------------------------------------------------- night


def test_night_network_refuses_the_sizes_it_cannot_wire():
    """80 to 82 E cells were taken and failed in the connectivity, naming p, not n_exc."""
    from nnjax.brain import circuits

    for n in (80, 81, 82):
        with pytest.raises(ValueError, match="night_network: n_exc must be an int >= 83"):
            night.night_network(n)

    def wires(cfg) -> bool:  # the square blocks' in-degrees (init_params' check), no self
        try:
            circuits.in_degree(cfg.p, cfg.n_exc, no_self=True)
            circuits.in_degree(cfg.p, cfg.n_inh, no_self=True)
        except ValueError:
            return False
        return True

    for n in (80, 81, 82):  # what the old bound (80) took
        assert not wires(circuits.CORTEX._replace(n_exc=n, n_inh=n // 4, p=80.0 / n))
    assert all(wires(night.night_network(n)) for n in range(83, 400))


def test_simulate_night_checks_settle_s_before_the_night_runs(monkeypatch):
    monkeypatch.setattr(sleep_states, "run_night", lambda *a, **k: pytest.fail("the night ran"))
    for bad, match in ((-1.0, "a finite number >= 0, got -1.0"), ("1", "a number, got '1'")):
        with pytest.raises(ValueError, match=rf"simulate_night: settle_s \(s\) must be {match}"):
            night.simulate_night(np.array([0, 1]), 0.5, settle_s=bad)
