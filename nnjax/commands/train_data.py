"""The data step of ``nnjax train``: its options, their checks, the presets, the loading.

``--dataset NAME`` or ``--data FILE`` (:mod:`nnjax.datafile`: CSV with a header and a
``--target`` column, ``.npz`` holding ``X`` and ``y``, or ``--data X.npy --labels y.npy``),
split by ``--data-seed`` into train / validation (``--val-split``) / test (``--test-split``),
stratified, and standardised with the training split's statistics
(:class:`nnjax.data.Standardizer`). ``--seed`` is the training run's seed (init, batch order,
dropout) and never changes the data. Every check here runs before JAX starts, and so does
the reading and splitting of your own file (NumPy only): bad data fails at
once, in one line.
"""

DEFAULT_DATASET = "digits"
DEFAULT_TEST_SPLIT = 0.2
UNSPLIT = ("toy", "xor")  # nnjax.data does not split them: test = train


def data_options(g, o) -> None:
    """``--dataset`` or ``--data`` (with ``--target`` or ``--labels``), and the splits."""
    from nnjax.data import DATASETS

    g.add_argument(
        "--dataset",
        default=None,
        choices=DATASETS,
        help=f"built-in dataset (default: {DEFAULT_DATASET}, unless --data is given)",
    )
    g.add_argument(
        "--data",
        metavar="FILE",
        help="your own data instead: a .csv file (header row, labels in the --target column, "
        "every other column a numeric feature), an .npz file holding arrays X and y, or an "
        ".npy file of features with --labels (default: none)",
    )
    g.add_argument(
        "--target",
        metavar="COLUMN",
        help="the label column of a --data .csv file (default: target)",
    )
    g.add_argument(
        "--labels",
        metavar="FILE",
        help="the labels (n,) of --data X.npy, an .npy file (default: none)",
    )
    g.add_argument(
        "--test-split",
        type=o.fraction,
        metavar="F",
        default=None,
        help="fraction of the examples held out as the test set, stratified; reported at the "
        f"end (default: {DEFAULT_TEST_SPLIT}; toy and xor are not split: test = train; "
        "mnist1d keeps its canonical 4000 / 1000 split)",
    )
    g.add_argument(
        "--val-split",
        type=o.fraction,
        metavar="F",
        default=None,
        help="fraction of the examples held out for validation, stratified: its metrics are "
        "shown every epoch, and the test set only at the end (default: none)",
    )


def seed_options(g, o) -> None:
    """The two seeds: the data's and the training run's."""
    g.add_argument(
        "--data-seed",
        type=o.seed,
        metavar="N",
        default=None,
        help="seed of the data: moons' and spirals' points and the test and validation splits "
        "(toy, xor: none; mnist1d: its canonical data and test set are fixed, the seed draws "
        "--val-split; refused where it would change nothing) (default: 0)",
    )
    g.add_argument(
        "--seed",
        type=o.seed,
        metavar="N",
        default=0,
        help="seed of the training run: the init, the batch order and dropout (not the data)",
    )


def check_data(args) -> None:
    """The data options agree with each other; your own file exists, and is read and split
    (``args._own_splits``, for :func:`load_data`)."""
    if args.data is not None and args.dataset is not None:
        raise ValueError(f"--data {args.data} and --dataset {args.dataset}: give one of them")
    if args.data is not None:
        from nnjax import datafile

        datafile.check_paths(args.data, target=args.target, labels=args.labels)
    else:
        given = [f for f, v in (("--target", args.target), ("--labels", args.labels)) if v]
        if given:
            raise ValueError(f"{' and '.join(given)}: for your own data file (--data) only")
        args.dataset = args.dataset or DEFAULT_DATASET
        splits = (("--test-split", args.test_split), ("--val-split", args.val_split))
        given = [f for f, v in splits if v is not None]
        if args.dataset == "mnist1d" and args.test_split is not None:
            raise ValueError(
                "--test-split: mnist1d uses its canonical split (4000 train / 1000 test, the "
                "mnist1d package's own); --val-split takes a validation set from the 4000"
            )
        if args.dataset in UNSPLIT and given:
            raise ValueError(
                f"{' and '.join(given)}: {args.dataset} is too small to split (test = train)"
            )
    _check_data_seed(args)
    test = DEFAULT_TEST_SPLIT if args.test_split is None else args.test_split
    if args.val_split is not None and args.val_split + test >= 1.0:
        raise ValueError(
            f"--val-split {args.val_split:g} + --test-split {test:g} >= 1: nothing is left to "
            "train on"
        )
    if args.data is not None:  # read and split now: a bad file fails before JAX starts
        args._own_splits = _own_splits(args)


def _check_data_seed(args) -> None:
    """A ``--data-seed`` that would change nothing is refused, naming why: toy and xor are
    fixed points, not split; mnist1d is its canonical 4000 / 1000 split, so the seed draws
    only a ``--val-split`` (it was taken and the run was the seed-0 run). Left out: 0."""
    if args.data_seed is None:
        args.data_seed = 0
        return
    if args.data is None and args.dataset in UNSPLIT:
        raise ValueError(
            f"--data-seed {args.data_seed}: {args.dataset} is fixed (no points drawn, no split: "
            "test = train), so a data seed would change nothing; leave --data-seed out"
        )
    if args.data is None and args.dataset == "mnist1d" and args.val_split is None:
        raise ValueError(
            f"--data-seed {args.data_seed}: mnist1d is its canonical split (4000 train / 1000 "
            "test, fixed), so a data seed draws only a validation split; give --val-split F, "
            "or leave --data-seed out"
        )


def apply_preset(args, full_batch) -> None:
    """Fill each option left out from the dataset's preset (:mod:`nnjax.presets`)."""
    from nnjax import presets

    p = presets.preset(None if args.data is not None else args.dataset)
    if args.model == "mlp":
        args.hidden = args.hidden or list(p["hidden"])
        args.activation = args.activation or p["activation"]
    args.epochs = args.epochs or p["epochs"]
    args._batch_from_preset = args.batch_size is None and args.optimizer not in full_batch
    if args.batch_size is None:
        args.batch_size = 0 if args.optimizer in full_batch else p["batch_size"]
    if args.lr is None and args.optimizer == presets.OPTIMIZER and "lr" in p:
        args.lr = p["lr"]


def load_data(args):
    """The data step: ``--dataset`` or ``--data``, split by ``--data-seed`` (``--test-split``,
    ``--val-split``), standardised with the training split's statistics, as
    :class:`nnjax.data.DataSplits`. Your own file was read and split by :func:`check_data`
    already, before JAX started; a built-in dataset is loaded here."""
    if args.data is not None:
        return getattr(args, "_own_splits", None) or _own_splits(args)
    from nnjax import data

    return data.load_splits(
        args.dataset,
        seed=args.data_seed,
        test_fraction=args.test_split,
        val_fraction=args.val_split or 0.0,
    )


def _own_splits(args):
    """``--data`` (with ``--target`` or ``--labels``) read and split: NumPy only."""
    from nnjax import data, datafile

    own = datafile.read(args.data, target=args.target, labels=args.labels)
    return data.split_own(
        own.X,
        own.y,
        own.label_names,
        name=own.name,
        seed=args.data_seed,
        test_fraction=DEFAULT_TEST_SPLIT if args.test_split is None else args.test_split,
        val_fraction=args.val_split or 0.0,
        feature_names=own.feature_names,
    )


def describe_data(ds) -> str:
    """``moons: 320 train / 80 test, 2 features, 2 classes`` (class names for own data)."""
    sizes = [f"{len(ds.y_train)} train"]
    if ds.y_val is not None:
        sizes.append(f"{len(ds.y_val)} val")
    sizes.append(f"{len(ds.y_test)} test" + (" (= train)" if ds.X_test is ds.X_train else ""))
    d = ds.X_train.shape[1]
    text = f"{ds.name}: {' / '.join(sizes)}, {d} feature{'s' * (d > 1)}, {ds.n_classes} classes"
    if ds.label_names != tuple(range(ds.n_classes)):
        names = ", ".join(map(str, ds.label_names[:10]))
        text += f" ({names}{', ...' if ds.n_classes > 10 else ''})"
    return text


def final_test(model, params, ds, loss, metrics) -> dict:
    """The test set's loss and accuracy after training: the last epoch's when it was watched,
    else evaluated once now."""
    if ds.y_val is None:
        return {
            "loss": float(metrics["test_loss"][-1]),
            "accuracy": float(metrics["test_accuracy"][-1]),
        }
    import nnjax

    return nnjax.evaluate(model, params, ds.X_test, ds.y_test, loss=loss)


def data_record(ds, test: dict) -> dict:
    """What a run's outputs record about its data: sizes, label names, the standardisation
    statistics (JSON), and the final test metrics."""
    return {
        "name": ds.name,
        "n_train": len(ds.y_train),
        "n_val": 0 if ds.y_val is None else len(ds.y_val),
        "n_test": len(ds.y_test),
        "label_names": list(ds.label_names),
        "feature_names": None if ds.feature_names is None else list(ds.feature_names),
        "standardizer": ds.standardizer.to_dict(),
        "test": test,
    }
