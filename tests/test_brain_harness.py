"""The fair harness: the same search for every method, selection, the command's checks."""

import jax
import numpy as np
import pytest

from nnjax.brain import harness as H


def test_every_method_gets_the_same_search():
    n = 16
    for name, (lo, hi) in H.BOX.items():
        c = H.candidates(name, n)
        for x, a, b in zip(jax.tree.leaves(c), jax.tree.leaves(lo), jax.tree.leaves(hi)):
            x, a, b = np.asarray(x), np.asarray(a), np.asarray(b)
            assert x.shape == (n, *a.shape), name
            assert np.all(x >= a * (1 - 1e-6)) and np.all(x <= b * (1 + 1e-6)), name
            np.testing.assert_allclose(x[0], np.sqrt(a * b), rtol=1e-5)  # candidate 0: centre

    # the same random numbers: the first hyperparameter of two methods sits at the same
    # log-position in its box, candidate by candidate
    def position(name):
        lo, hi = (np.asarray(jax.tree.leaves(b)[0]) for b in H.BOX[name])
        x = np.asarray(jax.tree.leaves(H.candidates(name, n))[0])
        return np.log(x / lo) / np.log(hi / lo)

    np.testing.assert_allclose(position("ewc"), position("genreplay"), atol=1e-5)
    np.testing.assert_allclose(position("si"), position("lwf"), atol=1e-5)
    assert len(np.unique(position("ewc").round(6))) == n
    # a fixed number stays fixed: the buffer size of replay5
    np.testing.assert_array_equal(np.asarray(H.candidates("replay5", n)["m"]), 5.0)
    # SRC's box: a factor 4 around the authors' values, as its earlier search
    src = H.candidates("src", n)
    np.testing.assert_allclose(src.rate[0], 240.0, rtol=1e-5)
    assert np.all(np.asarray(src.rate) <= 960.0 * (1 + 1e-6))


def test_select_refuses_diverged_candidates_and_applies_the_plasticity_floor():
    final = np.array([[0.5, 0.5], [0.9, 0.9], [0.6, 0.6], [0.4, 0.4]])
    just = np.array([[0.95, 0.95], [0.99, 0.99], [0.5, 0.7], [0.96, 0.98]])
    diverged = np.array([[False, False], [False, True], [False, False], [False, False]])
    runs = H.Runs({"final": final, "just_learned": just}, diverged, 0.0)
    pick = H.select(runs, floor=0.9)
    assert pick["final"] == 2  # candidate 1 is best but diverged once
    assert pick["plastic"] == 0 and pick["plastic_met_floor"]  # candidate 2 is below 0.9
    none = H.select(runs, floor=0.999)  # nobody meets it: the most plastic finite candidate
    assert none["plastic"] == 3 and not none["plastic_met_floor"]
    all_bad = H.select(runs._replace(diverged=np.ones_like(diverged)))
    assert all_bad["final"] == -1


def test_select_never_picks_a_candidate_whose_mean_is_nan():
    final = np.array([[0.5, 0.5], [0.9, np.nan], [0.6, 0.6]])  # candidate 1: a nan run
    just = np.array([[0.95, 0.95], [0.99, 0.99], [np.nan, 0.99]])
    runs = H.Runs({"final": final, "just_learned": just}, np.zeros((3, 2), bool), 0.0)
    pick = H.select(runs, floor=0.9)
    assert pick["final"] == 2  # argmax alone returned 1 (the nan's index)
    assert pick["plastic"] == 0 and pick["plastic_met_floor"]  # 2's plasticity is nan
    none = H.select(runs, floor=0.999)  # nobody meets it: the most plastic with a number
    assert none["plastic"] == 0 and not none["plastic_met_floor"]
    all_nan = H.select(
        runs._replace(metrics={"final": np.full((3, 2), np.nan), "just_learned": just})
    )
    assert all_nan == {"final": -1, "plastic": -1, "plastic_met_floor": False}


def test_candidates_hp_at_and_configs_refuse_bad_arguments():
    c = H.candidates("ewc", 2)
    with pytest.raises(
        ValueError, match=r"hp_at: i must be an int in 0..1 \(2 candidates\), got 5"
    ):
        H.hp_at(c, 5)  # JAX clamps x[5] to the last candidate
    with pytest.raises(ValueError, match="hp_at: i must be"):
        H.hp_at(c, -1)
    with pytest.raises(ValueError, match="candidates: 'sequential' has no hyperparameters.*'ewc'"):
        H.candidates("sequential", 4)
    with pytest.raises(ValueError, match="candidates: n must be an int >= 1, got 0"):
        H.candidates("ewc", 0)
    with pytest.raises(ValueError, match="configs: unknown dataset 'digit'; valid:"):
        H.configs("digit")
    assert H.hp_at(c, np.int64(1)) == H.hp_at(c, 1)


def test_hyperparameters_round_trip_through_plain_data():
    c = H.candidates("src+replay1", 3)
    plain = H.hp_at(c, 2)
    back = H.as_hp("src+replay1", plain)
    np.testing.assert_allclose(back[1].beta, np.asarray(c[1].beta[2]), rtol=1e-6)
    np.testing.assert_allclose(back[0]["rho"], np.asarray(c[0]["rho"][2]), rtol=1e-6)
    assert H.as_hp("sequential", None) is None


def test_chosen_hyperparameters_fall_back_to_the_box_centre(monkeypatch):
    from nnjax.brain import study, tuned

    monkeypatch.setattr(tuned, "CHOSEN", {"digits": {"ewc": {"final": {"lam": 3.0, "gamma": 0.9}}}})
    hp, source = study.chosen_hp("digits", "ewc")
    assert float(hp["lam"]) == 3.0 and "tuned on digits" in source
    hp, source = study.chosen_hp("permuted-digits", "ewc")  # no own search: its base's
    assert float(hp["lam"]) == 3.0 and "tuned on digits" in source
    hp, source = study.chosen_hp("digits", "si")
    np.testing.assert_allclose(float(hp["c"]), np.sqrt(1e-3 * 1e2), rtol=1e-5)
    assert source.startswith("untuned")
    assert study.chosen_hp("digits", "joint") == (None, "no hyperparameters")


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["sleep", "--orders", "1,1"], "--orders 1,1: an order is repeated"),
        (["sleep", "--orders", "3,101"], "--orders 3,101: order 101 is one the hyperparameter"),
        (["sleep", "--orders", "0", "--seeds", "1"], "need at least 2"),
        (
            ["sleep", "--steps", "10000000000"],
            "--steps 10000000000: 10 runs of 10000000000 "
            "steps need at least 2.91 TiB of memory; this machine has",
        ),
        (["sleep", "--sleep-steps", "10000000000", "--seeds", "3"], "--sleep-steps 10000000000"),
    ],
)
def test_sleep_checks_before_the_run(argv, reason, capsys, monkeypatch):
    from nnjax.cli import main
    from nnjax.commands import sleep

    monkeypatch.setattr(sleep, "run", lambda args: pytest.fail("the run started"))
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nnjax sleep: error:") and reason in err[0]


def test_the_light_copy_of_the_validation_orders_equals_the_harness():
    """Review: nnjax sleep --orders 100 ran the test protocol on a class order the search had
    chosen the hyperparameters on (the harness promises none is shared); it is refused."""
    from nnjax.commands import sleep

    assert sleep.VALIDATION_ORDERS == H.VALIDATION_ORDERS


def test_sleep_refuses_an_out_that_is_a_file(tmp_path, capsys, monkeypatch):
    from nnjax.cli import main
    from nnjax.commands import sleep

    f = tmp_path / "taken"
    f.write_text("x")
    monkeypatch.setattr(sleep, "run", lambda args: pytest.fail("the run started"))
    assert main(["sleep", "--out", str(f)]) == 3
    assert f"--out {f} is a file, not a folder" in capsys.readouterr().err


def test_sleep_keeps_its_numbers_when_the_disk_fills_at_the_plots(tmp_path, capsys, monkeypatch):
    import errno
    import json

    from nnjax import io
    from nnjax.cli import main

    def full(fig, path, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(io, "atomic_save_figure", full)
    out = tmp_path / "s"
    argv = ["sleep", "--methods", "sequential,joint", "--orders", "0", "--steps", "50"]
    assert main([*argv, "--no-images", "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert f"{out}/accuracy.png: No space left on device (errno 28, ENOSPC)" in err
    assert "sequential" in json.loads((out / "results.json").read_text())["rows"]
    assert "sequential" in (out / "table.md").read_text()


def test_sleep_replaces_its_numbers_and_table_together(tmp_path, capsys, monkeypatch):
    """Review: results.json was replaced, then a disk full at table.md left the new numbers
    beside the old table (two studies in one folder). Both are now on disk before either
    replaces the earlier study's."""
    import errno

    from nnjax import io
    from nnjax.cli import main

    out = tmp_path / "s"
    argv = ["sleep", "--methods", "sequential,joint", "--orders", "0", "--no-images"]
    assert main([*argv, "--steps", "50", "--out", str(out)]) == 0
    before = {n: (out / n).read_bytes() for n in ("results.json", "table.md")}
    real = io._write_all

    def full_at_the_table(fd, data):
        if bytes(data[:1]) != b"{":  # results.json goes through; table.md finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(io, "_write_all", full_at_the_table)
    assert main([*argv, "--steps", "60", "--out", str(out), "--overwrite"]) == 3
    assert "table.md: No space left on device (errno 28, ENOSPC)" in capsys.readouterr().err
    assert {n: (out / n).read_bytes() for n in before} == before


@pytest.mark.parametrize("dataset", ["digits", "mnist1d"])
def test_the_committed_search_covers_every_method_inside_its_box(dataset):
    from nnjax.brain import tuned

    assert set(tuned.CHOSEN[dataset]) == set(H.BOX)  # every method with hyperparameters
    assert tuned.SEARCH[dataset]["validation_runs"] >= 10
    assert tuned.SEARCH[dataset]["n_candidates"] == 8  # the same budget on both
    for name, (lo, hi) in H.BOX.items():
        for objective in H.OBJECTIVES:
            hp = H.as_hp(name, tuned.CHOSEN[dataset][name][objective])
            for x, a, b in zip(jax.tree.leaves(hp), jax.tree.leaves(lo), jax.tree.leaves(hi)):
                x, a, b = np.asarray(x), np.asarray(a), np.asarray(b)
                assert x.shape == a.shape, name
                assert np.all(x >= a * (1 - 1e-6)) and np.all(x <= b * (1 + 1e-6)), name


def test_a_study_without_images_leaves_no_earlier_dreams_figure(tmp_path):
    """Review: nnjax sleep --no-images into a folder of a study made with images left its
    dreams.png beside the new results (the 'wrote' line did not name it)."""
    from nnjax.brain import study_plots

    (tmp_path / "dreams.png").write_bytes(b"an earlier study's figure")
    study_plots._plot_dreams({"images": None, "dataset": "digits"}, str(tmp_path))
    assert not (tmp_path / "dreams.png").exists()


def _fake_study(rows, images=None):
    """A run_study result of ``rows`` on random accuracies (2 orders x 2 seeds), no JAX."""
    from nnjax.brain import scores, study

    tg, rng = np.arange(10).reshape(5, 2), np.random.default_rng(0)
    A = {r: rng.random((2, 2, 5, 10)) for r in rows}
    metrics = {r: scores.metrics(A[r].reshape(4, 5, 10), tg, np.ones(10)) for r in rows}
    res = {"dataset": "digits", "orders": [0, 1], "n_seeds": 2, "rows": list(rows),
           "metrics": metrics, "A": A, "task_groups": [tg, tg], "scenario": "class",
           "images": images}  # fmt: skip
    res["stats"] = study.summarise(res)
    return res


def test_plots_of_a_study_without_a_heatmap_method_are_written(tmp_path):
    """Review: nnjax sleep --methods si --out D ran the whole study, then failed (exit 2,
    'Number of columns must be a positive integer, not 0'): heatmap.png drew only sequential,
    EWC, replay1, genreplay, SRC and joint, and none had run."""
    from nnjax.brain import study_plots

    written = study_plots.write_plots(_fake_study(["si", "lwf"]), str(tmp_path))
    assert written == ["accuracy.png", "heatmap.png"]
    assert {p.name for p in tmp_path.iterdir()} == {"accuracy.png", "heatmap.png"}


def test_the_wrote_line_names_only_the_figures_written(tmp_path):
    """Review: nnjax sleep --methods si printed 'wrote D/{..., dreams.png}' though no
    dreams.png was drawn (no method with activation maximisation images ran); an earlier
    study's dreams.png is removed rather than left beside these results."""
    from nnjax.brain import study_plots

    (tmp_path / "dreams.png").write_bytes(b"an earlier study's figure")
    written = study_plots.write_plots(_fake_study(["si"], {}), str(tmp_path))
    assert "dreams.png" not in written and not (tmp_path / "dreams.png").exists()


def test_dreams_png_shows_every_image_set_the_study_computed(tmp_path, monkeypatch):
    """Review: the study computed activation maximisation images of SRC and of generative
    replay's classifier (results.json holds them) but dreams.png drew only joint, sequential
    and the VAE's samples. Now one row per set, in DREAM_ROWS order; fewer than 10 classes
    leave the row's last axes blank."""
    from nnjax import plotting
    from nnjax.brain import study_plots

    images = {
        "actmax_src": np.zeros((10, 64)),
        "actmax_src_objective": np.zeros((10, 100)),
        "actmax_replay": np.ones((6, 64)),
        "generator_samples": np.ones((20, 64)),
    }
    drawn = {}
    real = plotting.subplots

    def spy(*a, **k):
        fig, axes = real(*a, **k)
        drawn["axes"] = axes
        return fig, axes

    monkeypatch.setattr(plotting, "subplots", spy)
    written = study_plots.write_plots(_fake_study(["src", "genreplay"], images), str(tmp_path))
    assert written[-1] == "dreams.png" and (tmp_path / "dreams.png").stat().st_size > 0
    axes = drawn["axes"]  # dreams.png is drawn last
    labels = [axes[r, 0].get_ylabel() for r in range(axes.shape[0])]
    assert labels == ["act. max., SRC", "act. max., gen. replay", "VAE dreams (replay)"]
    assert [ax.axison for ax in axes[1]] == [True] * 6 + [False] * 4
