"""One declared divergence, so the registry's collection of entries is seen to include it."""

from normbench.numerics.divergence import Known, within

KNOWN = (
    Known("toy-example", "the toy framework declares this entry to show that a package's known.py is collected",
          "https://github.com/example/toy", lambda r: within(r, adapter=("toy",), dtype=("float16",)),
          raises=("RuntimeError",)),
)
