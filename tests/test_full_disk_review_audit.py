"""Review of the full-disk features (:mod:`nnjax.rescue`, ``checkpoint.save(keep=K)`` on a
full disk, ``nnjax train``'s resume line). A signal during the rescue write (a second Ctrl-C
while ``nnjax train`` finishes, the first for ``compare``, ``sleep``, ``night``) left the
half-written ``nnjax-<command>-unsaved-XXXX`` folder behind, named nowhere: now it goes, as
it does when the rescue write fails."""

import errno
import os
import shutil

import pytest
from test_full_disk_audit import RUN

from nnjax.cli import main
from nnjax.errors import Interrupted
from nnjax.rescue import write_or_rescue


@pytest.mark.parametrize("signal", [KeyboardInterrupt(), Interrupted(15, "stopped")])
def test_a_signal_during_the_rescue_write_leaves_no_folder(tmp_path, tmpdir_here, signal):
    out = tmp_path / "out"

    def write(folder):
        if folder == str(out):
            raise OSError(errno.ENOSPC, "No space left on device", str(out / "a"))
        with open(os.path.join(folder, "a"), "w") as f:  # half the files, then the signal
            f.write("x")
        raise signal

    with pytest.raises(type(signal)) as err:
        write_or_rescue(str(out), write, "review", "the files")
    assert err.value is signal  # the signal goes on as it came
    assert os.listdir(tmpdir_here) == []


def test_a_second_signal_while_train_rescues_its_files_leaves_no_folder(
    tmp_path, tmpdir_here, capsys, monkeypatch
):
    """``nnjax train``: the --out write fails (ENOSPC), and a second signal stops the
    rescue write half-way: exit 128 + 15, no ``nnjax-train-unsaved-*`` folder, no --out."""
    from nnjax.commands import train_outputs

    real, out = train_outputs.write_more, tmp_path / "out"

    def write_more(folder, *a, **kw):
        if folder == str(out):
            raise OSError(errno.ENOSPC, "No space left on device", str(out / "params.npz"))
        real(folder, *a, **kw)  # all the files written, then the second signal
        raise Interrupted(15, "a second signal while finishing: stopped at once")

    monkeypatch.setattr(train_outputs, "write_more", write_more)
    assert main([*RUN, "--out", str(out)]) == 128 + 15
    assert "Traceback" not in capsys.readouterr().err
    assert os.listdir(tmpdir_here) == [] and not out.exists()


def test_a_full_disk_at_the_first_checkpoint_of_a_resume_from_an_older_one_names_it(
    tmp_path, capsys, monkeypatch
):
    """A real 2.6 MiB tmpfs: a run resumed from its checkpoint 3 of 5 with --override
    lr=1e-4 failed at checkpoint 4 and named ckpt_00000005.npz, the abandoned future (still
    there: the failed save had not set it aside), with a bare --resume, which continued it:
    exit 0 and the old learning rate's model, under the new one's name. Now the error names
    the checkpoint resumed from and the command names it too; that command trains to the
    params of a resume that met no full disk."""
    import shlex

    import numpy as np
    from disk_faults import enospc_when_writing

    d, ref = tmp_path / "ck", tmp_path / "ref"
    base = [*RUN[:-1], "4", "--checkpoint-dir"]
    assert main([*base, str(d)]) == 0  # checkpoints 2, 3, 4 (keep 3)
    shutil.copytree(d, ref)
    override = ["--override", "lr=1e-3", "--resume"]
    assert main([*base, str(ref), *override, str(ref / "ckpt_00000002.npz"), "--out",
                 str(tmp_path / "want")]) == 0  # fmt: skip
    capsys.readouterr()
    with monkeypatch.context() as m:
        enospc_when_writing(m, "ckpt_00000003")
        assert main([*base, str(d), *override, str(d / "ckpt_00000002.npz")]) == 3
    err = capsys.readouterr().err
    line = [x for x in err.strip().splitlines() if "warning:" not in x][-1]
    named = d / "ckpt_00000002.npz"
    head = (
        f"nnjax train: error: {d}/ckpt_00000003.npz: No space left on device (errno 28, "
        f"ENOSPC); the run can go on from its newest checkpoint {named} once there is room: "
    )
    assert "Traceback" not in err and line.startswith(head), line
    command = shlex.split(line[len(head) :])
    assert command[0] == "nnjax" and command[-2:] == ["--resume", str(named)]
    assert main([*command[1:], "--out", str(tmp_path / "got")]) == 0
    want, got = np.load(tmp_path / "want" / "params.npz"), np.load(tmp_path / "got" / "params.npz")
    assert sorted(got.files) == sorted(want.files)
    for k in want.files:
        np.testing.assert_array_equal(got[k], want[k])
