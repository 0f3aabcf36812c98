"""Keras 3 on its TensorFlow, JAX and torch backends, one backend per process. Its distributions
lead with TensorFlow's wheels, the backend its synchronized path runs on; its extra is its
TensorFlow backend's (keras[jax] and keras[torch] name theirs on the adapter)."""

from ..framework import Framework

FRAMEWORK = Framework(
    "keras",
    {"keras[tensorflow]": ".layers:KerasTensorflowAdapter", "keras[jax]": ".jax_backend:KerasJaxAdapter",
     "keras[torch]": ".torch_backend:KerasTorchAdapter"},
    distributions=("tensorflow", "tensorflow-cpu", "keras"), extra="tensorflow",
    family=("Keras/TF", "keras[tensorflow]"),
)
