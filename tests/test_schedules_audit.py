"""Audit of the learning-rate schedules and weight decay (nnjax.optim.make_schedule,
with_weight_decay, WEIGHT_DECAY; ``nnjax train --schedule/--warmup/--decay-rate/
--weight-decay``), in float64 against NumPy oracles of the documented formulas and against
PyTorch's schedulers and optimizers; and two defects the audit found:

* ``make_schedule`` refused a traced peak rate (under ``vmap`` or ``grad``), which
  ``get_optimizer`` takes as given, with "learning_rate must be a positive float or an
  optax schedule, got VmapTracer(...)";
* ``with_weight_decay("adam", ..., weight_decay > 0)`` checked adam's hyperparameters as
  adamw's: "adamw: b1 must be in [0, 1)", and for an unknown one "optimizer 'adamw': ... it
  takes b1, b2, eps, weight_decay" (giving weight_decay then failed as a Python TypeError).
"""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnjax import optim

LR = 0.1


def _oracle(name, T, S=1, warmup=0.05, r=0.95):
    """eta_t, t = 0..T-1, by the formulas of make_schedule's docstring (NumPy, float64)."""
    t = np.arange(T, dtype=np.float64)
    if name == "constant":
        return np.full(T, LR)
    if name == "cosine":
        return LR * (1 + np.cos(np.pi * t / T)) / 2
    if name == "warmup-cosine":
        W = min(max(round(warmup * T), 1), T - 1)
        return np.where(t < W, LR * t / W, LR * (1 + np.cos(np.pi * (t - W) / (T - W))) / 2)
    return LR * r ** (t / S)


def _rates(schedule, T):
    if not callable(schedule):
        return np.full(T, float(schedule))
    return np.array([float(schedule(jnp.asarray(t, jnp.int32))) for t in range(T)])


@pytest.mark.parametrize("name", optim.SCHEDULES)
def test_every_rate_at_the_boundaries_matches_the_formula(name):
    # T = 1 (warmup-cosine refuses it), 2, 3, a warmup that rounds to 0 (clipped to 1) and
    # one that equals or exceeds T (clipped to T - 1), a half that rounds to even (2.5 -> 2)
    cases = [(1, 0.05), (2, 0.05), (3, 0.9), (10, 0.05), (10, 0.99), (50, 0.05), (41, 0.5)]
    with jax.enable_x64(True):
        for T, w in cases:
            for S in (1, 3):
                if name == "warmup-cosine" and T == 1:
                    with pytest.raises(ValueError, match="the run has 1 step"):
                        optim.make_schedule(name, LR, total_steps=T, warmup=w)
                    continue
                s = optim.make_schedule(
                    name, LR, total_steps=T, steps_per_epoch=S, warmup=w, decay_rate=0.9
                )
                got, want = _rates(s, T), _oracle(name, T, S, w, 0.9)
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-16, err_msg=f"{T} {w}")
    assert _oracle("warmup-cosine", 50)[2] == LR  # W = round(2.5) = 2: the peak at t = 2


def _torch_rates(make, T):
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=LR)
    sched, out = make(opt, torch.optim.lr_scheduler), []
    for _ in range(T):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


def test_schedules_match_pytorch_stepped_every_update():
    T, W, S = 40, 10, 4
    with jax.enable_x64(True):
        cos = _rates(optim.make_schedule("cosine", LR, total_steps=T), T)
        wc = _rates(optim.make_schedule("warmup-cosine", LR, total_steps=T, warmup=0.25), T)
        ex = optim.make_schedule("exponential", LR, total_steps=T, steps_per_epoch=S)
        ex = _rates(ex, T)
    torch_cos = _torch_rates(lambda o, L: L.CosineAnnealingLR(o, T_max=T, eta_min=0), T)
    np.testing.assert_allclose(cos, torch_cos, rtol=0, atol=1e-16)
    seq = lambda o, L: L.SequentialLR(  # noqa: E731  (LinearLR needs start_factor > 0)
        o,
        [L.LinearLR(o, 1e-300, 1.0, total_iters=W), L.CosineAnnealingLR(o, T_max=T - W)],
        milestones=[W],
    )
    np.testing.assert_allclose(wc, _torch_rates(seq, T), rtol=0, atol=1e-16)
    assert wc[0] == 0.0  # nnjax's first warmup step has rate 0
    per_step = _torch_rates(lambda o, L: L.ExponentialLR(o, gamma=0.95 ** (1 / S)), T)
    np.testing.assert_allclose(ex, per_step, rtol=1e-14)  # torch multiplies step by step
    np.testing.assert_allclose(ex[::S], LR * 0.95 ** np.arange(T // S), rtol=1e-15)


A = np.array([[2.0, 0.3], [0.3, 1.0]])
B, THETA0, LAM, STEPS = np.array([1.0, -0.5]), np.array([1.5, -2.0]), 0.1, 5


def _grad(theta):
    return A @ theta - B


def _nnjax_steps(opt):
    p, out = jnp.asarray(THETA0), []
    state = opt.init(p)
    for _ in range(STEPS):
        u, state = opt.update(jnp.asarray(_grad(np.asarray(p))), state, p)
        p = optax.apply_updates(p, u)
        out.append(np.asarray(p))
    return np.array(out)


def _numpy_steps(name, eta, wd):
    """WEIGHT_DECAY by hand: L2 on the gradient, decoupled for adam/adamw (Optax eps)."""
    th, v, m, s, acc, out = THETA0.copy(), 0.0, 0.0, 0.0, 0.1, []
    for t in range(STEPS):
        g, e = _grad(th), eta[t]
        if name in ("adam", "adamw"):
            m, s = 0.9 * m + 0.1 * g, 0.999 * s + 0.001 * g * g
            mh, sh = m / (1 - 0.9 ** (t + 1)), s / (1 - 0.999 ** (t + 1))
            th = th - e * (mh / (np.sqrt(sh) + 1e-8) + wd * th)
        else:
            g = g + wd * th
            if name in ("gd", "sgd"):
                th = th - e * g
            elif name in ("momentum", "nesterov"):
                v = 0.9 * v + g
                th = th - e * (g + 0.9 * v if name == "nesterov" else v)
            elif name == "rmsprop":
                s = 0.9 * s + 0.1 * g * g
                th = th - e * g / np.sqrt(s + 1e-8)
            else:  # adagrad
                acc = acc + g * g
                th = th - e * g / np.sqrt(acc + 1e-7)
        out.append(th.copy())
    return np.array(out)


@pytest.mark.parametrize("schedule", ["constant", "warmup-cosine", "exponential"])
@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
def test_weight_decay_per_optimizer_matches_numpy(name, schedule):
    with jax.enable_x64(True):
        lr = optim.make_schedule(schedule, LR, total_steps=STEPS, warmup=0.4, decay_rate=0.5)
        got = _nnjax_steps(optim.with_weight_decay(name, lr, LAM))
        eta = _rates(lr, STEPS)
    np.testing.assert_allclose(got, _numpy_steps(name, eta, LAM), rtol=0, atol=1e-12)


def test_weight_decay_matches_pytorch():
    torch = pytest.importorskip("torch")
    O = torch.optim
    cases = {  # Optax's adam with weight decay is AdamW's decoupled decay, not Adam's L2
        "sgd": lambda ps: O.SGD(ps, lr=LR, weight_decay=LAM),
        "momentum": lambda ps: O.SGD(ps, lr=LR, momentum=0.9, weight_decay=LAM),
        "nesterov": lambda ps: O.SGD(ps, lr=LR, momentum=0.9, nesterov=True, weight_decay=LAM),
        "adam": lambda ps: O.AdamW(ps, lr=LR, eps=1e-8, weight_decay=LAM),
        "adamw": lambda ps: O.AdamW(ps, lr=LR, eps=1e-8, weight_decay=LAM),
    }
    with jax.enable_x64(True):
        lr = optim.make_schedule("cosine", LR, total_steps=STEPS)
        eta = _rates(lr, STEPS)
        for name, make in cases.items():
            p = torch.nn.Parameter(torch.tensor(THETA0))
            opt, theirs = make([p]), []
            for t in range(STEPS):
                opt.param_groups[0]["lr"] = float(eta[t])  # AdamW decays by lr_t * lambda
                p.grad = torch.tensor(_grad(p.detach().numpy()))
                opt.step()
                theirs.append(p.detach().numpy().copy())
            ours = _nnjax_steps(optim.with_weight_decay(name, lr, LAM))
            np.testing.assert_allclose(ours, np.array(theirs), rtol=0, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("name", optim.SCHEDULES)
def test_make_schedule_takes_a_traced_peak_rate(name):
    def rate(lr, t=4):
        s = optim.make_schedule(name, lr, total_steps=10, steps_per_epoch=3, warmup=0.3)
        return s(jnp.asarray(t, jnp.int32)) if callable(s) else s

    with jax.enable_x64(True):
        want = _oracle(name, 10, 3, 0.3)[4] / LR  # the rate of a peak of 1
        rates = jax.vmap(rate)(jnp.array([0.1, 0.2]))
        np.testing.assert_allclose(rates, [0.1 * want, 0.2 * want], rtol=1e-14)
        np.testing.assert_allclose(jax.grad(rate)(0.1), want, rtol=1e-14)
        assert float(rate(0.1)) == pytest.approx(0.1 * want, rel=1e-14)  # concrete: as before


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"b1": 1.5}, r"^adam: b1 must be in \[0, 1\), got 1.5$"),
        ({"foo": 1}, r"^optimizer 'adam': bad hyperparameters: unknown foo; it takes b1, b2, eps$"),
    ],
)
def test_adam_with_weight_decay_names_adam_in_its_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        optim.with_weight_decay("adam", 1e-3, 0.1, **kw)


def test_resume_mid_warmup_is_bit_identical(tmp_path, capsys):
    from nnjax.cli import main

    run = ["train", "--dataset", "moons", "--hidden", "8", "--optimizer", "sgd", "--epochs", "3"]
    run += ["--schedule", "warmup-cosine", "--warmup", "0.5", "--weight-decay", "0.01"]
    a, b = tmp_path / "a", tmp_path / "b"  # 10 steps per epoch, W = 15: epoch 1 ends in warmup
    assert main([*run, "--out", str(a / "out"), "--checkpoint-dir", str(a), "--keep", "5"]) == 0
    b.mkdir()
    for ext in ("npz", "json"):
        shutil.copy(a / f"ckpt_00000001.{ext}", b)
    assert main([*run, "--out", str(b / "out"), "--checkpoint-dir", str(b), "--resume"]) == 0
    capsys.readouterr()
    whole, resumed = np.load(a / "out" / "params.npz"), np.load(b / "out" / "params.npz")
    assert whole.files == resumed.files
    for k in whole.files:
        np.testing.assert_array_equal(whole[k], resumed[k], err_msg=k)


def test_resume_of_a_scheduled_run_takes_an_override_of_its_peak_rate(tmp_path, capsys):
    # it said "override optimizer.learning_rate=0.02, but this run has optimizer.learning_rate=
    # {'schedule': ..., 'values': [...]}: give the run that value" for the very value given
    from nnjax.cli import main

    run = ["train", "--dataset", "moons", "--hidden", "8", "--optimizer", "sgd"]
    run += ["--schedule", "cosine", "--checkpoint-dir", str(tmp_path), "--checkpoint-every", "1"]
    assert main([*run, "--epochs", "1", "--lr", "0.01"]) == 0
    again = [*run, "--epochs", "2", "--lr", "0.02", "--resume", "--no-cache"]
    assert main([*again, "--override", "lr=0.02"]) == 0
    capsys.readouterr()
    # without the override the other peak is still refused, naming the field
    assert main([*run, "--epochs", "3", "--lr", "0.03", "--resume"]) == 2
    assert "learning_rate" in capsys.readouterr().err
