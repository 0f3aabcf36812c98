"""TensorFlow's execution modes, shared by Keras 3 on TF and tf_keras: eager (the default), under
``tf.function``, and under ``tf.function(jit_compile=True)`` (XLA).

Keras's own ``jit_compile="auto"`` turns XLA on only where a GPU exists (``keras/src/trainers/
trainer.py``), so on a CPU-only machine its users get the plain ``tf.function`` unless they ask;
both are modes here, judged by the oracle like eager. XLA expands training-mode BatchNorm itself
(``BatchNormExpander``), with its own variance algorithm.
"""

from __future__ import annotations

from typing import Any

from .base import Mode

EAGER = Mode("eager", "eager TensorFlow ops (benchmarks time tf.function, as Keras users on TF run)")
FUNCTION = Mode("function", "tf.function(fn) (a TF graph, no XLA)")
XLA = Mode("xla", "tf.function(fn, jit_compile=True) (XLA's CPU backend)", compiled=True)
MODES = (EAGER, FUNCTION, XLA)


def tf_function(fn: Any, mode: Mode) -> Any:
    """``fn`` under tf.function as ``mode`` says, retracing for each new shape as users' do."""
    import tensorflow as tf

    return tf.function(fn, jit_compile=mode.name == XLA.name)
