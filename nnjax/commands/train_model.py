"""``nnjax train``'s model: the ``--model`` options, their checks across options, and the
model they build (the data arrive flat; cnn and gru read an example as an image, rows or a
signal). Nothing here imports JAX at module level: ``nnjax --help`` reads these options.
"""

MODELS = ("mlp", "logreg", "cnn", "gru", "resmlp")
# --hidden of the one-width models: resmlp's hidden width, gru's units per direction (the
# MNIST-1D paper's); --channels of the cnn
ONE_WIDTH = {"resmlp": 100, "gru": 6}
DEFAULT_CHANNELS = 25
# the model options and the models they apply to (any other model refuses them)
MODEL_OPTIONS = {
    "--hidden": ("mlp", "resmlp", "gru"),
    "--activation": ("mlp",),
    "--channels": ("cnn",),
}


def _model_options(g, o) -> None:
    g.add_argument(
        "--model",
        default="mlp",
        choices=MODELS,
        help="mlp, logreg, or the MNIST-1D paper's cnn, gru, resmlp; cnn and gru read digits "
        "as 8x8 images (gru: 8 rows as time steps), other data as a 1-D signal",
    )
    g.add_argument(
        "--hidden",
        type=o.widths,
        default=None,
        metavar="W,W,...",
        help="hidden widths (mlp: W,W,..., default: the dataset's preset, below; one width "
        f"for resmlp (default {ONE_WIDTH['resmlp']}) and gru (units per direction, default "
        f"{ONE_WIDTH['gru']}))",
    )
    g.add_argument(
        "--channels",
        type=o.positive_int,
        default=None,
        metavar="N",
        help=f"channels of each convolution (default: {DEFAULT_CHANNELS}; cnn only)",
    )
    g.add_argument(
        "--activation",
        type=o.hidden_activation,
        default=None,
        metavar="NAME",
        help=o.choices_help(
            "hidden activation (default: the preset's; mlp only)", o.HIDDEN_ACTIVATIONS
        ),
    )


def _check_model_options(args) -> None:
    """A model option given to a model it does not apply to is refused, in one line."""
    values = {"--hidden": args.hidden, "--activation": args.activation}
    values["--channels"] = args.channels
    given = [f for f, v in values.items() if v and args.model not in MODEL_OPTIONS[f]]
    if given:
        takes = "; ".join(f"{f} is for --model {', '.join(MODEL_OPTIONS[f])}" for f in given)
        named = " and ".join(_given_as(args, f) for f in given)
        raise ValueError(f"{named}: not for --model {args.model} ({takes})")
    if args.model in ONE_WIDTH and args.hidden and len(args.hidden) != 1:
        widths = ",".join(map(str, args.hidden))
        raise ValueError(f"--hidden {widths}: --model {args.model} takes one width, e.g. 32")


def _given_as(args, flag: str) -> str:
    """``flag`` as the command line gave it: ``--override activation=tanh`` when the value
    came from a resumed run's ``--override`` (it sets ``args.activation``), else ``flag``."""
    if flag == "--activation" and "model.activation" in getattr(args, "_override", {}):
        return f"--override activation={args.activation}"
    return flag


def example_shape(ds, model: str) -> tuple[int, ...]:
    """How ``--model cnn``/``gru`` read one example of ``ds`` (the data arrive flat, (n, F);
    the model reshapes them inside): digits as an 8x8 image, (8, 8, 1) for the cnn and 8 rows
    of 8 pixels as time steps, (8, 8), for the gru; anything else as a 1-D signal (F, 1)."""
    n_features = int(ds.X_train.shape[1])
    if ds.name == "digits" and n_features == 64:
        return (8, 8, 1) if model == "cnn" else (8, 8)
    if model == "cnn" and n_features < 3:
        raise ValueError(
            f"--model cnn needs signals of at least 3 values; {ds.name} has {n_features} "
            "feature(s) (use --model mlp)"
        )
    return (n_features, 1)


def build(args, ds):
    """The model and its loss for ``args.model`` on dataset ``ds``."""
    import nnjax

    k = ds.n_classes
    if args.model == "logreg":
        if k != 2:
            raise ValueError(f"--model logreg needs a binary dataset; {ds.name} has {k} classes")
        return nnjax.logistic_regression(ds.X_train.shape[1]), "binary_cross_entropy_with_logits"
    if args.model == "cnn":
        model = nnjax.cnn(k, input_shape=example_shape(ds, "cnn"), channels=args.channels)
    elif args.model == "gru":
        model = nnjax.gru(k, hidden=args.hidden[0], input_shape=example_shape(ds, "gru"))
    elif args.model == "resmlp":
        model = nnjax.resmlp(k, hidden=args.hidden[0], dropout=args.dropout)
    else:
        model = nnjax.mlp([*args.hidden, k], args.activation, dropout=args.dropout)
    return model, "softmax_cross_entropy"


def init_params(model, seed: int, input_shape: tuple[int, ...]):
    """``model``'s initial params from ``jax.random.key(seed)``: :func:`init_program` run once.

    The same numbers as ``model.init`` run op by op (bit for bit on every ``--model``, in
    float32 and float64: tests/test_cli_init.py), but compiled once, at XLA's optimization
    level 1: a glorot/he init op by op compiles each truncated normal for its own shape, and
    that was the largest share of a first ``nnjax train``'s host time; level 1 compiles the
    draws about 2.5x faster than the default, and a program run once gains nothing from level
    2's loop optimizations (the persistent cache then keeps it as one entry). A first default
    ``nnjax train`` took 4.9-5.3 s before, 4.1-4.3 s after (2 AMD EPYC cores)."""
    import jax

    return init_program(model, input_shape)(jax.random.key(seed))


def init_program(model, input_shape: tuple[int, ...]):
    """``key -> model.init(key, input_shape)[1]``, jitted at XLA's optimization level 1 on CPU
    (compiled at its first call, reused for every later key of the same kind). On another
    backend (GPU, TPU: not measured, nor compared bit for bit) ``model.init`` runs as is."""
    import jax

    def params(key):
        return model.init(key, input_shape)[1]

    if jax.default_backend() != "cpu":
        return params
    return jax.jit(params, compiler_options={"xla_backend_optimization_level": 1})


# the option that sizes each model's params (logreg's are the data's features)
SIZED_BY = {"mlp": "--hidden", "resmlp": "--hidden", "gru": "--hidden", "cnn": "--channels"}


def check_memory(args, model, input_shape: tuple[int, ...]) -> None:
    """Refuse, before anything is allocated, a model whose training state cannot fit in the
    device's memory: its params counted by ``jax.eval_shape`` of ``init`` (no allocation),
    times :data:`nnjax._host.PARAM_COPIES` (params, gradients, two optimizer moments). A huge
    ``--hidden`` used to end as XLA's "out of memory" naming no option; one so huge that a
    weight would have more than 2^63 - 1 elements is refused naming the option too."""
    import math

    import jax

    from nnjax._host import PARAM_COPIES, physical_memory, size_text

    option = SIZED_BY.get(args.model)
    given = f"{option} {_option_text(args, option)}: " if option else ""
    try:
        _, shapes = jax.eval_shape(lambda k: model.init(k, input_shape), jax.random.key(0))
    except ValueError as e:  # a weight past 2^63 - 1 elements: the layer's text names no option
        if "more than an array can hold" not in str(e):
            raise
        detail = str(e).rsplit(": ", 1)[-1]
        raise ValueError(
            f"{given}--model {args.model} cannot be built: a weight of {detail}"
            + (f"; use a smaller {option}" if option else "")
        ) from None
    have = (jax.devices()[0].memory_stats() or {}).get("bytes_limit") or physical_memory()
    if have is None:
        return
    n = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))
    need = PARAM_COPIES * n * jax.dtypes.canonicalize_dtype(float).itemsize
    if need > have:
        raise ValueError(
            f"{given}--model {args.model} has {n:,} parameters; training them needs about "
            f"{size_text(need)} (params, gradients, optimizer state), more than the "
            f"{size_text(have)} of this {jax.devices()[0].platform} device"
            + (f": use a smaller {option}" if option else "")
        )


def _option_text(args, option: str) -> str:
    value = args.hidden if option == "--hidden" else args.channels
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
