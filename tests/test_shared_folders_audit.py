"""Saved models, checkpoints and run folders on read-only media and in folders several users
share: a model on a read-only mount is loaded and predicted from without writing there; a
lock file, a checkpoint or a run another user left is named (owner, file, what to do) in one
line before any work, never a bare "Permission denied" after the training; files follow the
umask; a model replaced while `nnjax predict` runs is used whole.

Root ignores permission bits, so the shared-folder cases run their nnjax code in a child
process that drops to the user nobody (after importing what it needs); they are skipped
where that (or the read-only bind mount) is not available."""

import csv
import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import warnings

import jax
import numpy as np
import pytest

import nnjax
import nnjax.checkpoint as ck
from nnjax import _host
from nnjax.cli import main
from nnjax.data import Standardizer
from nnjax.layers import apply_model
from nnjax.lock import LOCK_NAME

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OTHER_UID = 1000  # the colleague who left the files; the child runs as nobody (65534)
COLUMNS = ["a", "b", "c"]

needs_root = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0, reason="needs root on Linux to switch users"
)


@pytest.fixture
def shared():
    """A folder under /tmp that nobody can reach (pytest's tmp_path is private to root)."""
    d = tempfile.mkdtemp(prefix="nnjax-shared-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _as_nobody(prepare: str, body: str) -> dict:
    """Run ``prepare`` as root, then ``body`` as nobody, in a child; ``body`` sets ``out``
    (a dict), returned."""
    code = "\n".join(
        [
            "import json, os, sys",
            textwrap.dedent(prepare),
            "os.setgroups([]); os.setgid(65534); os.setuid(65534)",
            "out = {}",
            textwrap.dedent(body),
            "print(json.dumps(out))",
        ]
    )
    env = {**os.environ, "PYTHONPATH": REPO}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        pytest.fail(f"child failed: {r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def _dead_lock_record(folder: str, mode: int) -> str:
    """A lock file another user's ended run left (a PID beyond pid_max: no such process)."""
    path = os.path.join(folder, LOCK_NAME)
    rec = {"pid": 2**31 - 1, "host": _host.hostname(), "started": "2026-12-05T10:00:00+00:00",
           "started_unix": 0.0, "identity": None, "command": "nnjax train --out team"}  # fmt: skip
    with open(path, "w") as f:
        json.dump(rec, f)
    os.chown(path, OTHER_UID, -1)
    os.chmod(path, mode)
    return path


LOCK_PREPARE = "from nnjax.lock import DirectoryLock, DirectoryLockedError; import pwd"
LOCK_BODY = """
try:
    DirectoryLock(FOLDER, heartbeat=None).acquire()
    out["taken"] = True
except OSError as e:
    out.update(type=type(e).__name__, errno=e.errno, message=str(e))
"""


@needs_root
def test_another_users_unreadable_lock_file_is_named_with_its_owner(shared):
    """Audit: a colleague's run (umask 077) leaves nnjax.lock 0600 in a group folder; the next
    run said only "team/nnjax.lock: Permission denied (errno 13, EACCES)"."""
    team = os.path.join(shared, "team")
    os.mkdir(team, 0o777)
    os.chmod(team, 0o777)
    lock = _dead_lock_record(team, 0o600)
    got = _as_nobody(LOCK_PREPARE, f"FOLDER = {team!r}\n{LOCK_BODY}")
    assert got["type"] == "DirectoryLockedError" and got["errno"] == errno.EBUSY
    assert got["message"].startswith(f"{team} is locked by ")
    assert f"(uid {OTHER_UID}), whose lock file {lock} you cannot read" in got["message"]
    assert got["message"].endswith("if no run uses this directory, ask them to delete it")
    assert "\n" not in got["message"] and os.stat(lock).st_uid == OTHER_UID


@needs_root
def test_a_dead_runs_lock_of_another_user_in_a_sticky_folder_is_named(shared):
    """Audit: in a shared folder with the sticky bit, taking over a colleague's stale lock
    failed at the rename as "team/nnjax.lock: Operation not permitted (errno 1, EPERM)"."""
    team = os.path.join(shared, "team")
    os.mkdir(team)
    os.chmod(team, 0o1777)
    lock = _dead_lock_record(team, 0o644)
    got = _as_nobody(LOCK_PREPARE, f"FOLDER = {team!r}\n{LOCK_BODY}")
    assert got["type"] == "DirectoryLockedError", got
    assert got["message"].startswith(f"{team} holds the lock of a run that ended (process ")
    assert f"but its lock file {lock} belongs to " in got["message"]
    assert got["message"].endswith("ask them to delete it")
    assert os.path.exists(lock) and os.listdir(team) == [LOCK_NAME]  # nothing left behind


@needs_root
def test_train_into_another_users_run_in_a_sticky_folder_is_refused_before_training(shared):
    """Audit: `nnjax train --out team/run --overwrite` over a colleague's run in a sticky
    folder trained, then failed with "team/run/history.json: Operation not permitted" and
    lost its model; the check before JAX now names the files and their owner."""
    run = os.path.join(shared, "run")
    os.mkdir(run)
    before = {}
    for name in ("model.json", "params.npz", "history.json"):
        path = os.path.join(run, name)
        with open(path, "w") as f:
            f.write(name)
        os.chown(path, OTHER_UID, -1)
        before[name] = name
    os.chmod(run, 0o1777)
    prepare = """
    import argparse, pwd
    from nnjax import lock, preflight
    from nnjax.commands import train_safety
    """
    body = f"""
    args = argparse.Namespace(out={run!r}, checkpoint_dir=None, tensorboard=None, data=None,
                              labels=None, overwrite=True, resume=False)
    try:
        train_safety.check_paths(args)
        out["passed"] = True
    except OSError as e:
        out.update(type=type(e).__name__, errno=e.errno, message=str(e))
    out["jax"] = "jax" in sys.modules
    """
    got = _as_nobody(prepare, body)
    assert got.get("type") == "NotWritableError" and got["errno"] == errno.EPERM, got
    assert got["message"].startswith(f"--out {run}: params.npz, model.json, history.json ")
    assert f"(uid {OTHER_UID}), and in a folder with the sticky bit (+t)" in got["message"]
    assert not got["jax"]
    for name, text in before.items():
        with open(os.path.join(run, name)) as f:
            assert f.read() == text


@needs_root
def test_a_checkpoint_in_a_folder_of_another_user_is_named_as_unreachable_not_missing(shared):
    """Audit: `nnjax train --resume team/ck` where team is another user's private folder (or
    the checkpoint is unreadable) said "cannot resume from team/ck: no such checkpoint":
    os.path.exists is False for a path this user may not reach."""
    team = os.path.join(shared, "team")
    os.makedirs(os.path.join(team, "ck"))
    ck.save(os.path.join(team, "ck"), 1, {"w": np.ones(2)})
    os.chmod(team, 0o700)  # root's own folder: nobody cannot enter it
    body = f"""
    for path in ({team!r} + "/ck", {team!r} + "/ck/ckpt_00000001.npz"):
        args = argparse.Namespace(override=[], resume=path)
        try:
            train_resume.check_resume_options(args)
            out[path] = "passed"
        except OSError as e:
            out[path] = describe_os_error(e)
    """
    prepare = """
    import argparse, pwd
    from nnjax import runconfig
    from nnjax.commands import options, train_resume
    from nnjax.errors import describe_os_error
    """
    got = _as_nobody(prepare, body)
    for path in (f"{team}/ck", f"{team}/ck/ckpt_00000001.npz"):
        assert got[path] == f"cannot resume from {path}: Permission denied (errno 13, EACCES)"


@needs_root
def test_predict_over_another_users_predictions_in_a_sticky_folder_is_refused_first(shared):
    """Audit: `nnjax predict --out team/p.csv` over a colleague's predictions in a sticky
    folder passed the checks, computed, then failed: "p.csv: Operation not permitted"."""
    team = os.path.join(shared, "team")
    os.mkdir(team)
    X = np.random.default_rng(2).normal(size=(4, 3))
    _save_model(os.path.join(team, "m"), COLUMNS, ["no", "yes"], 0, X)
    with open(os.path.join(team, "data.csv"), "w") as f:
        f.write("a,b,c\n" + "".join(",".join(map(repr, r)) + "\n" for r in X.tolist()))
    with open(os.path.join(team, "p.csv"), "w") as f:
        f.write("row,prediction\n2,yes\n")  # an earlier run's, by root: not nobody's
    subprocess.run(["chmod", "-R", "a+rX", team], check=True)
    os.chmod(team, 0o1777)
    prepare = f"""
    import argparse, csv, pwd, encodings.utf_8_sig
    import nnjax.datafile, nnjax.datafile_csv
    from nnjax import cli, errors, inputs, lock, preflight, saved
    from nnjax.commands import options, predict, train_safety
    args = cli.build_parser(["predict"]).parse_args(["predict", {team!r} + "/m", "--data",
        {team!r} + "/data.csv", "--out", {team!r} + "/p.csv"])
    """
    body = """
    try:
        predict.check(args)
        out["passed"] = True
    except (OSError, ValueError) as e:
        out.update(type=type(e).__name__, errno=getattr(e, "errno", None), message=str(e))
    """
    got = _as_nobody(prepare, body)
    assert got.get("type") == "NotWritableError" and got["errno"] == errno.EPERM, got
    assert got["message"] == (
        f"--out {team}/p.csv: belongs to user root (uid 0), and in a folder with the sticky "
        "bit (+t) only its owner may replace it: give another file name"
    )


def test_pruning_keeps_a_checkpoint_it_may_not_delete_with_a_warning(tmp_path, monkeypatch):
    """Audit: resuming a colleague's checkpoints in a sticky folder with keep=1, the first
    checkpoint written raised PermissionError from the pruning (the run died); now the old
    checkpoint is kept, named in a warning, and the new one is committed."""
    for s in (1, 2):
        ck.save(tmp_path, s, {"w": np.full(3, float(s))})
    real_unlink = os.unlink

    def unlink(path, *a, **k):  # the sticky bit: only the owner removes the colleague's files
        if "ckpt_00000002" in os.fspath(path):
            raise PermissionError(errno.EPERM, "Operation not permitted", os.fspath(path))
        return real_unlink(path, *a, **k)

    monkeypatch.setattr(os, "unlink", unlink)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ck.save(tmp_path, 3, {"w": np.full(3, 3.0)}, keep=1)
    monkeypatch.undo()
    messages = [str(w.message) for w in caught]
    js = tmp_path / "ckpt_00000002.json"
    assert messages == [
        f"checkpoint: cannot delete {js}, which belongs to {_owner_of(js)} (Operation not "
        "permitted): it is left in place"
    ]
    assert ck.steps(tmp_path) == [2, 3]  # step 1 pruned, step 2 kept whole, step 3 committed
    np.testing.assert_array_equal(ck.load(tmp_path, 2).arrays["['w']"], np.full(3, 2.0))
    np.testing.assert_array_equal(ck.load(tmp_path).arrays["['w']"], np.full(3, 3.0))


def _owner_of(path) -> str:
    import pwd

    uid = os.stat(path).st_uid
    return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"


def _save_model(folder, names, labels, seed, X):
    model = nnjax.mlp([4, 2], "tanh")
    _, params = model.init(jax.random.key(seed), (-1, 3))
    nnjax.save(folder, model, params, standardizer=Standardizer.fit(X.astype(np.float32)),
               label_names=labels, feature_names=names, target="y")  # fmt: skip


def _proba_oracle(pred, X):
    """softmax(f((X - mean) / std)) of ``X`` (n, 3) in the model's column order."""
    x = ((X.astype(np.float32) - pred.standardizer.mean) / pred.standardizer.std).astype("f4")
    z = np.asarray(apply_model(pred.model, pred.params, pred.state, x, train=False)[0], "f8")
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_predict_uses_the_model_it_loads_when_a_run_replaces_it_meanwhile(tmp_path, capsys,
                                                                          monkeypatch):  # fmt: skip
    """Audit: `nnjax predict` matched the data's columns and labels to the model.json it read
    first, then loaded the model a run had saved there since (columns in another order,
    label names swapped): probabilities off by 0.19, and the label column said 'no' where
    the file says 'yes'. The reader must use one model whole."""
    X = np.random.default_rng(0).normal(size=(6, 3))
    _save_model(tmp_path / "m", COLUMNS, ["no", "yes"], 0, X)
    with open(tmp_path / "data.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*COLUMNS, "y"])
        w.writerows([[*map(repr, row), "yes"] for row in X.tolist()])
    real_load = nnjax.load

    def load_after_a_new_run(path):  # a training run into the folder ends meanwhile
        monkeypatch.setattr(nnjax, "load", real_load)
        _save_model(tmp_path / "m", COLUMNS[::-1], ["yes", "no"], 1, X)
        return real_load(path)

    monkeypatch.setattr(nnjax, "load", load_after_a_new_run)
    argv = ["predict", str(tmp_path / "m"), "--data", str(tmp_path / "data.csv"), "--proba"]
    assert main(argv) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    new = real_load(tmp_path / "m")
    want = _proba_oracle(new, X[:, ::-1])  # the new model's columns: c, b, a
    got = np.array([[float(r["p_yes"]), float(r["p_no"])] for r in rows])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert [r["label"] for r in rows] == ["yes"] * 6


@pytest.fixture
def read_only_copy(tmp_path):
    """``(source, mount)``: a folder and a read-only bind mount of it (skipped where mount
    cannot do that: not root, a container without CAP_SYS_ADMIN)."""
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a read-only bind mount needs root and mount(8)")
    ok = subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True)
    if ok.returncode != 0:
        pytest.skip(f"mount --bind failed: {ok.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True)
        yield src, ro
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)


def _listing(folder):
    return sorted(
        (os.path.relpath(os.path.join(d, n), folder), os.stat(os.path.join(d, n)).st_mtime_ns)
        for d, _, names in os.walk(folder)
        for n in names
    )


def test_a_model_and_checkpoints_on_read_only_media(read_only_copy, tmp_path, capsys):
    """Sound: predict, nnjax.load and a resume read a read-only folder and write nothing there
    (no lock, no cache, no temporary file: any write would fail with EROFS); a resume that
    would write its checkpoints there is one line before training, nothing changed."""
    src, ro = read_only_copy
    rng = np.random.default_rng(0)
    rows = "".join(f"{a!r},{b!r},{int(a > b)}\n" for a, b in rng.normal(size=(40, 2)).tolist())
    (src / "d.csv").write_text("a,b,target\n" + rows)
    argv = ["train", "--data", str(src / "d.csv"), "--epochs", "1"]
    assert main([*argv, "--checkpoint-dir", str(src / "ck"), "--out", str(src / "m")]) == 0
    capsys.readouterr()
    before = _listing(src)
    assert main(["predict", str(ro / "m"), "--data", str(ro / "d.csv"), "--proba"]) == 0
    lines = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    pred = nnjax.load(ro / "m")
    X = np.loadtxt(src / "d.csv", delimiter=",", skiprows=1)[:, :2]
    want = _proba_oracle(pred, X)
    got = np.array([[float(r["p_0"]), float(r["p_1"])] for r in lines])
    np.testing.assert_allclose(got, want, atol=1e-6)
    resume = [*argv[:-1], "2", "--checkpoint-dir", str(ro / "ck"), "--resume"]
    assert main(resume) == 3
    err = capsys.readouterr().err.strip()
    assert err == (
        f"nnjax train: error: --checkpoint-dir {ro / 'ck'} is not writable: read-only file "
        "system (errno 30, EROFS)"
    )
    assert main([*resume[:-2], str(tmp_path / "ck2"), "--resume", str(ro / "ck")]) == 0
    assert ck.steps(tmp_path / "ck2") == [2]  # resumed from epoch 1 of the read-only folder
    assert _listing(src) == before


@pytest.mark.parametrize("mask", [0o002, 0o077])
def test_a_runs_files_follow_the_umask(tmp_path, capsys, mask):
    """Sound: every file and folder a run makes (the saved model, metrics, plots, checkpoints,
    predictions) gets 0o666 / 0o777 & ~umask, as `open` and `mkdir` give: a colleague in the
    group reads a model saved under umask 002; no final file is mkstemp's 0600."""
    rng = np.random.default_rng(1)
    rows = "".join(f"{a!r},{b!r},{int(a > b)}\n" for a, b in rng.normal(size=(40, 2)).tolist())
    (tmp_path / "d.csv").write_text("a,b,target\n" + rows)
    old = os.umask(mask)
    try:
        argv = ["train", "--data", str(tmp_path / "d.csv"), "--epochs", "1"]
        assert main([*argv, "--out", str(tmp_path / "run" / "m"), "--checkpoint-dir",
                     str(tmp_path / "run" / "ck")]) == 0  # fmt: skip
        out = str(tmp_path / "run" / "p.csv")
        assert main(["predict", str(tmp_path / "run" / "m"), "--data",
                     str(tmp_path / "d.csv"), "--out", out]) == 0  # fmt: skip
    finally:
        os.umask(old)
    modes = {}
    for d, folders, names in os.walk(tmp_path / "run"):
        for n in folders + names:
            st = os.stat(os.path.join(d, n))
            modes[os.path.relpath(os.path.join(d, n), tmp_path)] = (
                stat.S_IMODE(st.st_mode),
                0o777 & ~mask if stat.S_ISDIR(st.st_mode) else 0o666 & ~mask,
            )
    names = {"ck", "m", "p.csv", *(f"ck/ckpt_00000001.{x}" for x in ("json", "npz")),
             *(f"m/{n}" for n in ("params.npz", "model.json", "history.json", "metrics.csv",
                                  "loss.png", "accuracy.png"))}  # fmt: skip
    assert set(modes) == {f"run/{n}" for n in names}  # no lock file, no temporary left
    assert all(got == want for got, want in modes.values()), modes


def _two_models(tmp_path):
    """A folder holding model A (saved), and model B's files (not yet written)."""
    from nnjax import saved

    model = nnjax.mlp([5, 3])
    a, b = (model.init(jax.random.key(s), (-1, 4))[1] for s in (0, 1))
    folder = str(tmp_path / "m")
    nnjax.save(folder, model, a, input_shape=(-1, 4))
    return folder, dict(saved.model_files(model, b, input_shape=(-1, 4))), model, b


def _put(folder, name, data):
    tmp = os.path.join(folder, name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, os.path.join(folder, name))


def test_a_load_during_a_save_waits_for_its_model_json(tmp_path):
    """A save renames params.npz, then model.json, under the folder's lock: a load that read
    the old model.json and then the new params.npz called the model damaged ("checksum
    mismatch", 6 of 7926 loads against a writer saving 9 times a second; 0 of 7762 now)."""
    import threading

    from nnjax.lock import lock_folder

    folder, files, model, b = _two_models(tmp_path)
    held = lock_folder(folder, heartbeat=None)  # the writer's lock, as nnjax.save holds it
    _put(folder, "params.npz", files["params.npz"])  # the new arrays are in place ...

    def commit():  # ... and the writer commits them a moment later
        threading.Event().wait(0.3)
        _put(folder, "model.json", files["model.json"])
        held.release()

    writer = threading.Thread(target=commit)
    writer.start()
    try:
        pred = nnjax.load(folder)
    finally:
        writer.join()
    X = np.arange(8.0, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(pred(X), apply_model(model, b, (), X)[0])


def test_a_damaged_model_without_a_writer_is_reported_at_once(tmp_path, monkeypatch):
    """No lock file, no save under way: the mismatch is damage, said without waiting."""
    import time

    from nnjax.saved import SavedModelError

    folder, files, _, _ = _two_models(tmp_path)
    _put(folder, "params.npz", files["params.npz"])  # replaced, model.json never committed
    waits = []
    monkeypatch.setattr(time, "sleep", lambda s: waits.append(s))
    with pytest.raises(SavedModelError, match="params.npz: checksum mismatch"):
        nnjax.load(folder)
    assert waits == []


@needs_root
@pytest.mark.parametrize(
    "chmod, culprit",
    [("parent", ""), ("folder", "/model.json")],
    ids=["private-parent", "listable-folder"],
)
def test_a_model_this_user_may_not_reach_is_named_as_such(shared, chmod, culprit):
    """Audit: a model under another user's private folder was "no saved model there (no such
    folder)", and in one this user may list but not enter, "not a saved nnjax model (no
    model.json)": both sent the user looking for a model that is there."""
    parent = os.path.join(shared, "private")
    folder = os.path.join(parent, "m")
    model = nnjax.mlp([3])
    nnjax.save(folder, model, model.init(jax.random.key(0), (-1, 2))[1], input_shape=(-1, 2))
    os.chmod(parent if chmod == "parent" else folder, 0o700 if chmod == "parent" else 0o744)
    body = f"""
try:
    nnjax.load({folder!r})
except OSError as e:
    out.update(type=type(e).__name__, errno=e.errno, message=str(e))
"""
    got = _as_nobody("import nnjax, nnjax.saved, nnjax.errors, nnjax.lock", body)
    assert got["type"] == "PathError" and got["errno"] == errno.EACCES, got
    assert got["message"] == (
        f"{folder}: no saved model there that this user may read ({folder}{culprit}: "
        "permission denied)"
    )
