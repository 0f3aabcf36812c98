"""The toy framework reads its thread count from a variable of its own."""

MODULES: tuple[str, ...] = ()
ENV_VARS = ("TOY_NUM_THREADS",)
