"""TensorFlow's XLA cache (Keras 3 on TF and tf_keras alike): ``tf.function(jit_compile=True)``
keeps its compiles on disk when TF_XLA_FLAGS names a persistent cache directory."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

FOLDER = "tensorflow-xla"
FLAG = "--tf_xla_persistent_cache_directory="
VARIABLES = ("TF_XLA_FLAGS",)


def environ(given: Mapping[str, str], folder: Path, keep: bool = True) -> dict[str, str]:
    flags = given.get("TF_XLA_FLAGS", "").split()
    if keep and any(f.startswith(FLAG) for f in flags):
        return {}
    return {"TF_XLA_FLAGS": " ".join([*(f for f in flags if not f.startswith(FLAG)), FLAG + str(folder / FOLDER)])}
