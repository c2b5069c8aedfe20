"""``nnjax info``: versions, backend and devices."""

HELP = "print JAX/jaxlib versions, the backend, the devices and the compilation cache folder"


def add_arguments(parser) -> None:
    pass


def info() -> dict:
    """The facts ``nnjax info`` prints, as a dict."""
    import platform

    import jax
    import jaxlib
    import optax

    import nnjax
    from nnjax import cache

    return {
        "nnjax": nnjax.__version__,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "x64": bool(jax.config.jax_enable_x64),
        "jax_cache": cache.state(),
    }


def banner() -> str:
    """The line ``nnjax train`` and ``nnjax compare`` open with: versions and the first
    device; ``float64`` under ``jax_enable_x64`` (the params are drawn and trained in it); and
    a warning when jit is disabled (``JAX_DISABLE_JIT=1``: ops run one at a time in Python,
    for debugging, many times slower)."""
    import jax

    dev = info()
    line = f"nnjax {dev['nnjax']} | jax {dev['jax']} | {dev['backend']}: {dev['devices'][0]}"
    if jax.config.jax_enable_x64:
        line += " | float64 (jax_enable_x64 on)"
    if jax.config.jax_disable_jit:
        line += " | jit disabled (JAX_DISABLE_JIT): every op runs on its own, slowly"
    return line


def run(args) -> int:
    for k, v in info().items():
        print(f"{k:12s} {', '.join(v) if isinstance(v, list) else v}")
    return 0
