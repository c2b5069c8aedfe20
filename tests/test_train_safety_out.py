"""`nnjax train --out DIR` never replaces files of the user's that bear the names of the files
it writes (history.json, metrics.csv, the plots): a folder holding them and no saved model is
not a run's (a run writes them all with its model)."""

import numpy as np

from nnjax.cli import main


def test_the_users_own_files_in_out_are_kept_unless_overwrite(tmp_path, capsys):
    """Review: `--out .` in a project folder replaced its metrics.csv and history.json."""
    rng = np.random.default_rng(0)
    rows = "".join(f"{a},{b},{int(a > b)}\n" for a, b in rng.normal(size=(20, 2)).tolist())
    (tmp_path / "d.csv").write_text("a,b,target\n" + rows)
    out = tmp_path / "project"
    out.mkdir()
    (out / "history.json").write_text("my notes\n")
    (out / "metrics.csv").write_text("week,sales\n1,10\n")
    argv = ["train", "--data", str(tmp_path / "d.csv"), "--epochs", "1", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"nnjax train: error: --out {out} already holds history.json, metrics.csv, which nnjax "
        "train would replace with its own: add --overwrite to replace them, or choose another "
        "--out"
    )
    assert (out / "history.json").read_text() == "my notes\n"
    assert (out / "metrics.csv").read_text() == "week,sales\n1,10\n"
    assert sorted(p.name for p in out.iterdir()) == ["history.json", "metrics.csv"]
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "model.json").is_file() and (out / "metrics.csv").read_text() != "week,sales\n"
