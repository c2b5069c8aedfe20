"""What ``nnjax train`` leaves behind after a kill, a stop signal, a full disk and a second
writer, measured with real processes (the figures of docs/checkpoints.md, "Measured").

    python -m benchmarks.reliability.faults [--kills 10] [--tmpfs DIR] [--json out.json]

Each scenario runs ``python -m nnjax.cli train`` in subprocesses from the checkout, on a
temporary directory:

* ``kill``: one command line (``--checkpoint-dir D --resume``) started again and again,
  each run SIGKILLed at a random instant after it made progress; what each kill left (lock
  file, temporary files, uncommitted ``.npz``, checkpoints beyond ``--keep``, whether the
  newest verifies), then the run finished and its params compared with an uninterrupted run;
* ``signal``: SIGTERM, SIGINT and SIGUSR1 sent mid-run: exit status, seconds from the signal
  to the exit, the epoch of the final checkpoint, the files left, and the printed command
  run to the end (params compared with the uninterrupted run);
* ``disk``: ``--checkpoint-dir`` and then ``--out`` on a small tmpfs (needs root to mount;
  ``--tmpfs`` names a mount point to use, else the scenario is skipped);
* ``writer``: a second run on a directory in use: exit status, seconds, message; the first
  run's result.

Timings depend on the machine's load: say so when quoting them.
"""

import argparse
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# the MLP 64-64 that docs/checkpoints.md measured (digits' preset is 128-128 now): pinned, so
# that the checkpoint sizes and the full-disk figures reproduce; a checkpoint every epoch
RUN = ["train", "--dataset", "digits", "--hidden", "64,64", "--epochs", "40"]
ENV = {**os.environ, "NNJAX_CACHE_DIR": "off", "PYTHONPATH": ROOT}


def _start(argv, **kw):
    cmd = [sys.executable, "-m", "nnjax.cli", *argv]
    return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, **kw)  # fmt: skip


def _run(argv) -> tuple[int, str]:
    proc = _start(argv)
    return proc.wait(), proc.stderr.read().decode()


def _steps(d) -> list[int]:
    from nnjax import checkpoint

    return checkpoint.steps(d)


def _leftovers(d, keep: int) -> dict:
    from nnjax import checkpoint

    names = os.listdir(d) if os.path.isdir(d) else []
    npz = {n[:-4] for n in names if n.startswith("ckpt_") and n.endswith(".npz")}
    js = {n[:-5] for n in names if n.startswith("ckpt_") and n.endswith(".json")}
    try:
        newest_ok = checkpoint.load(d).step if js else None
    except Exception as e:  # a corrupt newest checkpoint would show here
        newest_ok = f"corrupt: {e}"
    return {
        "lock": "nnjax.lock" in names,
        "temp": sum(n.endswith(".tmp") for n in names),
        "uncommitted_npz": len(npz - js),
        "checkpoints": len(js),
        "beyond_keep": max(0, len(js) - keep),
        "newest_verifies": newest_ok,
    }


def _wait_for_progress(proc, d, after: list[int], timeout=300.0) -> None:
    t0 = time.monotonic()
    while not _steps(d) or _steps(d)[-1] <= (after[-1] if after else 0):
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            raise RuntimeError(f"no progress: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.01)


def _read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _same_params(a, b) -> bool:
    with np.load(a) as fa, np.load(b) as fb:
        return fa.files == fb.files and all(np.array_equal(fa[k], fb[k]) for k in fa.files)


def kills(work, n: int) -> dict:
    d, out, ref = (os.path.join(work, name) for name in ("kill", "kill-out", "kill-ref"))
    long = [*RUN, "--epochs", "200"]  # room for many kills
    assert _run([*long, "--out", ref])[0] == 0
    reference = os.path.join(ref, "params.npz")
    argv = [*long, "--checkpoint-dir", d, "--keep", "2", "--resume", "--out", out]
    rng, left, takeovers = random.Random(0), [], 0
    for _ in range(n):
        before = _steps(d)
        proc = _start(argv)
        _wait_for_progress(proc, d, before)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        err = proc.stderr.read().decode()
        takeovers += "taking over the stale lock" in err
        left.append(_leftovers(d, keep=2))
    code, err = _run(argv)
    takeovers += "taking over the stale lock" in err
    return {"kills": n, "left": left, "stale_lock_takeovers": takeovers, "final_exit": code,
            "final_equals_uninterrupted": code == 0 and _same_params(
                os.path.join(out, "params.npz"), reference)}  # fmt: skip


def signals(work, reference: str, repeats: int) -> list[dict]:
    rows, rng = [], random.Random(1)
    for name in ("SIGTERM", "SIGINT", "SIGUSR1") * repeats:
        d = tempfile.mkdtemp(dir=work, prefix=name)
        out = os.path.join(d, "out")
        argv = [*RUN, "--checkpoint-dir", os.path.join(d, "ckpt"), "--out", out]
        proc = _start(argv)
        _wait_for_progress(proc, os.path.join(d, "ckpt"), [])
        time.sleep(rng.uniform(0.0, 1.0))
        at = _steps(os.path.join(d, "ckpt"))[-1]
        t0 = time.monotonic()
        proc.send_signal(getattr(signal, name))
        code = proc.wait()
        latency = time.monotonic() - t0
        err = proc.stderr.read().decode().strip().splitlines()[-1]
        row = {"signal": name, "exit": code, "seconds": round(latency, 2), "epoch_at_signal": at,
               "final_checkpoint": _steps(os.path.join(d, "ckpt"))[-1], "message": err,
               "left": _leftovers(os.path.join(d, "ckpt"), keep=3)}  # fmt: skip
        command = shlex.split(err.split("resume with: ")[1])[1:] if "resume with" in err else None
        if command:
            row["resume_exit"] = _run(command)[0]
            row["equals_uninterrupted"] = _same_params(os.path.join(out, "params.npz"), reference)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def disk(work, mount: str | None) -> dict:
    if mount is None:
        return {"skipped": "no --tmpfs mount point"}
    d = os.path.join(mount, "ckpt")
    shutil.rmtree(d, ignore_errors=True)
    code, err = _run([*RUN, "--checkpoint-dir", d, "--keep", "3"])
    result = {"checkpoint_dir": {"exit": code, "stderr": err.strip().splitlines()[-3:],
                                 "left": _leftovers(d, keep=3)}}  # fmt: skip
    shutil.rmtree(d)
    out = os.path.join(mount, "out")
    first = _run([*RUN[:5], "--epochs", "1", "--out", out])[0]
    old = {n: _read(os.path.join(out, n)) for n in ("params.npz", "history.json", "loss.png")}
    filler = os.path.join(mount, "filler")
    free = shutil.disk_usage(mount).free
    with open(filler, "wb") as f:  # 20 KiB left: less than one params.npz
        f.write(b"\0" * max(0, free - 20 * 1024))
    code, err = _run([*RUN, "--out", out])
    new = {n: _read(os.path.join(out, n)) for n in old}
    result["out"] = {"first_exit": first, "exit": code, "stderr": err.strip().splitlines()[-1],
                     "unchanged": sorted(n for n in old if old[n] == new[n]),
                     "files": sorted(os.listdir(out))}  # fmt: skip
    os.unlink(filler)
    shutil.rmtree(out)
    return result


def writer(work) -> dict:
    """A second run (with and without --resume) while the first holds the directory; then the
    first is stopped with SIGTERM."""
    d = os.path.join(work, "writer")
    first = _start([*RUN, "--epochs", "100000", "--checkpoint-dir", d])
    _wait_for_progress(first, d, [])
    rows = {}
    for extra in ([], ["--resume"]):
        t0 = time.monotonic()
        code, err = _run([*RUN, "--checkpoint-dir", d, *extra])
        rows[" ".join(["second", *extra])] = {
            "exit": code, "seconds": round(time.monotonic() - t0, 2),
            "message": err.strip().splitlines()[-1],
        }  # fmt: skip
    alive = first.poll() is None
    first.send_signal(signal.SIGTERM)
    return {**rows, "first_alive_meanwhile": alive, "first_exit": first.wait(),
            "left": _leftovers(d, keep=3)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--signal-repeats", type=int, default=2)
    p.add_argument("--tmpfs", help="an (empty) small tmpfs mount point for the full-disk runs")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="nnjax-faults-")
    ref = os.path.join(work, "reference")
    assert _run([*RUN, "--out", ref])[0] == 0
    reference = os.path.join(ref, "params.npz")
    results = {"writer": writer(work)}
    print(json.dumps(results["writer"]), flush=True)
    results["disk"] = disk(work, args.tmpfs)
    print(json.dumps(results["disk"]), flush=True)
    results["signals"] = signals(work, reference, args.signal_repeats)
    results["kill"] = kills(work, args.kills)
    print(json.dumps(results["kill"]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
