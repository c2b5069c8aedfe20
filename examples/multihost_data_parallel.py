"""Data-parallel training over several processes, as on many hosts, here on one machine.

Each process is one "host" with ``--devices-per-process`` CPU devices. They meet through
``jax.distributed.initialize`` at a coordinator on the loopback address 127.0.0.1; then
``jax.devices()`` lists the devices of every process, :func:`nnjax.parallel.make_mesh` spans
them all, and every process runs the same ``nnjax.fit(..., mesh=mesh)``: each holds the whole
(replicated) dataset and params, computes the gradient of its shards of every batch, and the
all-reduce across processes goes over Gloo (JAX's CPU collectives) on TCP.

    python examples/multihost_data_parallel.py                    # 2 processes x 2 devices
    python examples/multihost_data_parallel.py --processes 4 --devices-per-process 2

The launcher starts the processes (``--worker`` mode), waits, then trains the same model on
one device in its own process and prints how far apart the params are (float64: ~1e-16).
On real hosts, run the worker part on each with ``--process-id`` and a reachable
``--coordinator host:port``: that is all ``jax.distributed.initialize`` needs (on GPU/TPU
clusters under SLURM or Cloud TPU it can even find them itself).
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile


def train(mesh=None, epochs: int = 3):
    """The run every process performs: an MLP on two moons, float64, batch 32."""
    import jax
    import numpy as np

    import nnjax

    ds = nnjax.data.load("moons")
    model = nnjax.mlp([16, 2])
    params = model.init(jax.random.key(0), (-1, 2))[1]
    params = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    return nnjax.fit(
        model,
        params,
        ds.X_train.astype(np.float64),
        ds.y_train,
        optimizer="adam",
        learning_rate=0.01,
        epochs=epochs,
        batch_size=32,
        key=0,
        mesh=mesh,
    )


def worker(args) -> None:
    # before anything starts JAX's backend: this process's devices, then the rendezvous
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices_per_process}"
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.processes,
        process_id=args.process_id,
    )
    from nnjax import parallel, params_npz

    mesh = parallel.make_mesh()  # every device of every process
    print(
        f"process {jax.process_index()}/{jax.process_count()}: "
        f"{jax.local_device_count()} local of {jax.device_count()} devices",
        flush=True,
    )
    res = train(mesh, args.epochs)
    if jax.process_index() == 0 and args.out:  # replicated result: one process writes it
        params_npz.save_params(args.out, res.params)
    jax.distributed.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args) -> int:
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from nnjax import params_npz

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "params.npz")
        coordinator = f"127.0.0.1:{_free_port()}"
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--worker",
                    f"--process-id={i}",
                    f"--processes={args.processes}",
                    f"--devices-per-process={args.devices_per_process}",
                    f"--coordinator={coordinator}",
                    f"--epochs={args.epochs}",
                    f"--out={out}",
                ]
            )
            for i in range(args.processes)
        ]
        codes = [p.wait(timeout=args.timeout) for p in procs]
        if any(codes):
            print(f"a worker failed: exit codes {codes}", file=sys.stderr)
            return 1
        single = train(None, args.epochs)
        many = params_npz.load_params(out, single.params)
    diff = max(
        float(np.max(np.abs(np.asarray(a) - b)))
        for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(many))
    )
    n = args.processes * args.devices_per_process
    ok = diff < 1e-12
    print(
        f"{args.processes} processes x {args.devices_per_process} devices = {n} devices vs "
        f"1 device: max |params difference| = {diff:.1e} (float64) {'OK' if ok else 'MISMATCH'}"
    )
    return 0 if ok else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--devices-per-process", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for workers")
    ap.add_argument(
        "--worker", action="store_true", help="run one process of the job (on each host)"
    )
    ap.add_argument("--process-id", type=int, default=0, help="this worker's index (default 0)")
    ap.add_argument("--coordinator", default=None, help="host:port of process 0 (with --worker)")
    ap.add_argument(
        "--out", default=None, help="process 0 saves the params here (.npz; default: not saved)"
    )
    args = ap.parse_args(argv)
    if args.worker and not args.coordinator:
        ap.error("--worker needs --coordinator host:port (process 0's address, reachable)")
    if args.worker:
        worker(args)
        return 0
    return launch(args)


if __name__ == "__main__":
    sys.exit(main())
