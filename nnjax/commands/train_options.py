"""The optimization and training options of ``nnjax train``: optimizer, learning rate,
epochs, batch size, weight decay, a learning-rate schedule, early stopping and dropout. Their
checks run before JAX starts; :func:`fit_options` turns them into ``nnjax.fit``'s arguments
once the data are known.

* ``--weight-decay L``: lambda, applied as :data:`nnjax.optim.WEIGHT_DECAY` says per
  optimizer (adam becomes adamw, decoupled; gd/sgd/momentum/nesterov/rmsprop/adagrad get
  L2 on the gradient, Optax's ``add_decayed_weights`` chained in front).
* ``--schedule NAME`` over the run's T = epochs x steps-per-epoch steps, peak rate ``--lr``
  (formulas at :func:`nnjax.optim.make_schedule`); ``--warmup F`` (warmup-cosine) and
  ``--decay-rate R`` (exponential, per epoch) go with them.
* ``--early-stopping P``: stop when the validation loss has not improved for P epochs and
  keep the best epoch's params (:mod:`nnjax.train.early`); needs ``--val-split``.
* ``--dropout RATE``: a Dropout layer after each hidden layer of the MLPs (mlp, resmlp).

Imports nothing heavy at the top.
"""

DROPOUT_MODELS = ("mlp", "resmlp")


def optimization_options(g, o) -> None:
    """The "optimization" group: --optimizer, --lr, --epochs, --batch-size."""
    names, rates, _ = o.optimizers()
    own = ": " + ", ".join(f"{k} {v:g}" for k, v in rates.items()) if rates else ""
    g.add_argument("--optimizer", default="adam", choices=names, help="optimizer")
    g.add_argument(
        "--lr",
        type=o.nonzero_learning_rate,
        default=None,
        help=f"learning rate (default: the preset's for adam, else the optimizer's own{own})",
    )
    g.add_argument(
        "--epochs",
        type=o.positive_int,
        metavar="N",
        default=None,
        help="epochs (default: the preset's)",
    )
    g.add_argument(
        "--batch-size",
        type=o.batch_size,
        metavar="N",
        default=None,
        help="mini-batch size; 0 = full batch (default: the preset's; full batch, always, for gd)",
    )


def training_options(g, o) -> None:
    """The "training" group."""
    from nnjax import optim

    g.add_argument(
        "--weight-decay",
        type=o.non_negative_float,
        metavar="L",
        default=None,
        help="weight decay lambda: decoupled for adam (adamw) and adamw, L2 on the gradient "
        "for the others (nnjax.optim.WEIGHT_DECAY); default: none, but adamw's own 1e-4",
    )
    g.add_argument(
        "--schedule",
        default="constant",
        choices=optim.SCHEDULES,
        help="learning-rate schedule over the run's steps, peak --lr: cosine "
        "lr (1 + cos(pi t/T))/2; warmup-cosine: linear from 0 for --warmup of the steps, then "
        "cosine; exponential: lr R^(t/S), S the steps per epoch (continuous; lr R^k after k "
        "epochs), R = --decay-rate",
    )
    g.add_argument(
        "--warmup",
        type=o.fraction,
        metavar="F",
        default=None,
        help=f"warmup-cosine's warmup, a fraction of the steps (default: {optim.DEFAULT_WARMUP})",
    )
    g.add_argument(
        "--decay-rate",
        type=o.fraction_or_one,
        metavar="R",
        default=None,
        help=f"exponential's factor per epoch, in (0, 1] (default: {optim.DEFAULT_DECAY_RATE})",
    )
    g.add_argument(
        "--early-stopping",
        type=o.positive_int,
        metavar="PATIENCE",
        default=None,
        help="stop when the validation loss has not improved for PATIENCE epochs and keep "
        "the best epoch's params; needs --val-split (default: off)",
    )
    g.add_argument(
        "--dropout",
        type=o.dropout_rate,
        metavar="RATE",
        default=0.0,
        help=f"dropout after each hidden layer, in [0, 1); {', '.join(DROPOUT_MODELS)} only",
    )


def check_training(args) -> None:
    """The training options agree with each other and with the model and data options."""
    if args.warmup is not None and args.schedule != "warmup-cosine":
        raise ValueError(f"--warmup is for --schedule warmup-cosine, not {args.schedule}")
    if args.decay_rate is not None and args.schedule != "exponential":
        raise ValueError(f"--decay-rate is for --schedule exponential, not {args.schedule}")
    if args.dropout and args.model not in DROPOUT_MODELS:
        why = (  # cnn and gru have hidden layers, but no Dropout (the paper's models have none)
            "logreg has no hidden layer to drop"
            if args.model == "logreg"
            else f"{args.model} is the MNIST-1D paper's, which has no dropout layers"
        )
        raise ValueError(f"--dropout: for --model {', '.join(DROPOUT_MODELS)} only; {why}")
    if args.early_stopping is not None:
        if args.val_split is None:
            raise ValueError(
                "--early-stopping watches the validation loss: give a validation split "
                "(--val-split F, e.g. 0.2)"
            )
        if args.resume:
            raise ValueError(
                "--early-stopping cannot resume a run (the best params of its first part are "
                "not in the checkpoint); start afresh"
            )
        if args.checkpoint_dir is not None:  # a stopped run would offer a resume it refuses
            raise ValueError(
                "--early-stopping with --checkpoint-dir: a run with early stopping cannot be "
                "resumed (the best params so far are not in the checkpoint), so a stopped run "
                "could not go on; drop one of them"
            )


def total_steps(args, n_train: int, batch: int | None) -> tuple[int, int]:
    """``(T, steps per epoch)`` of the run (full batch: one step per epoch)."""
    per_epoch = 1 if batch is None else n_train // batch
    return args.epochs * per_epoch, per_epoch


def learning_rate(args, n_train: int, batch: int | None):
    """The run's learning rate: a float, or an Optax schedule (``step -> rate``)."""
    from nnjax import optim

    lr = args.lr if args.lr is not None else optim.DEFAULT_LEARNING_RATE[args.optimizer]
    T, per_epoch = total_steps(args, n_train, batch)
    return optim.make_schedule(
        args.schedule,
        lr,
        total_steps=T,
        steps_per_epoch=per_epoch,
        warmup=optim.DEFAULT_WARMUP if args.warmup is None else args.warmup,
        decay_rate=optim.DEFAULT_DECAY_RATE if args.decay_rate is None else args.decay_rate,
    )


def fit_options(args, n_train: int, batch: int | None) -> dict:
    """``nnjax.fit``'s optimizer, learning rate, dropout and early stopping from the options:
    the plain optimizer name and rate when no training option is on (as before)."""
    from nnjax import optim

    kw: dict = {"dropout": bool(args.dropout)}
    if args.early_stopping is not None:
        from nnjax.train.early import EarlyStopping

        kw["early_stopping"] = EarlyStopping(args.early_stopping, metric="val_loss")
    if args.schedule == "constant" and args.weight_decay is None:
        return {**kw, "optimizer": args.optimizer, "learning_rate": args.lr}
    lr = learning_rate(args, n_train, batch)
    opt = optim.with_weight_decay(args.optimizer, lr, args.weight_decay)
    return {**kw, "optimizer": opt, "learning_rate": None}


def learning_rates_per_epoch(args, n_train: int, batch: int | None, epochs: int):
    """The rate of each epoch's last step (a schedule's), or None without a schedule."""
    if args.schedule == "constant":
        return None
    lr = learning_rate(args, n_train, batch)
    _, per_epoch = total_steps(args, n_train, batch)
    return [float(lr((e + 1) * per_epoch - 1)) for e in range(epochs)]


def recorded(args) -> dict:
    """The options as the run's outputs record them (history.json, model.json): those left
    out that the run filled in with a value of its own are recorded with that value, not
    None: ``lr`` (the optimizer's default rate), ``weight_decay`` (adamw's own
    :data:`nnjax.optim.ADAMW_WEIGHT_DECAY`, 0.0 for the others), ``warmup`` and
    ``decay_rate`` (their defaults, when the schedule uses them), ``test_split`` (the
    default fraction, also mnist1d's canonical 1000 of 5000; None for toy and xor, whose
    test set is the training set) and ``val_split`` (0.0: no validation set)."""
    from nnjax import optim
    from nnjax.commands.train_data import DEFAULT_TEST_SPLIT, UNSPLIT

    config = dict(vars(args))
    if args.test_split is None and (args.data is not None or args.dataset not in UNSPLIT):
        config["test_split"] = DEFAULT_TEST_SPLIT
    if args.val_split is None:
        config["val_split"] = 0.0
    if args.lr is None:
        config["lr"] = optim.DEFAULT_LEARNING_RATE[args.optimizer]
    if args.weight_decay is None:
        own = optim.ADAMW_WEIGHT_DECAY if args.optimizer == "adamw" else 0.0
        config["weight_decay"] = own
    if args.warmup is None and args.schedule == "warmup-cosine":
        config["warmup"] = optim.DEFAULT_WARMUP
    if args.decay_rate is None and args.schedule == "exponential":
        config["decay_rate"] = optim.DEFAULT_DECAY_RATE
    return config


def describe(args) -> str:
    """`` wd=1e-4 schedule=cosine dropout=0.2 early-stopping=5`` (what is on, adamw's own
    weight decay included), or ``""``."""
    parts = []
    wd = recorded(args)["weight_decay"]
    if args.weight_decay is not None or wd:
        parts.append(f"wd={wd:g}")
    if args.schedule != "constant":
        parts.append(f"schedule={args.schedule}")
    if args.dropout:
        parts.append(f"dropout={args.dropout:g}")
    if args.early_stopping is not None:
        parts.append(f"early-stopping={args.early_stopping}")
    return "".join(" " + p for p in parts)
