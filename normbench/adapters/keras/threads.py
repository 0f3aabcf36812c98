"""TensorFlow's pools (Keras on TensorFlow, and tf_keras): TF_NUM_*_THREADS before import, the
tf.config.threading API after."""

from __future__ import annotations

import sys

MODULES = ("tensorflow",)
ENV_VARS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def apply(n: int) -> None:
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(n)
        except RuntimeError:  # TF already started its pools; TF_NUM_*_THREADS set them
            pass


def report() -> dict:
    if "tensorflow" not in sys.modules:
        return {}
    return {"tensorflow": sys.modules["tensorflow"].config.threading.get_intra_op_parallelism_threads() or "default"}
