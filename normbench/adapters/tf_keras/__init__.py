"""tf_keras: legacy Keras 2 on TensorFlow; synchronized BatchNorm under a MirroredStrategy."""

from ..framework import Framework

FRAMEWORK = Framework("tf_keras", {"tf_keras": ".layers:TfKerasAdapter"},
                      distributions=("tensorflow", "tensorflow-cpu", "tf-keras"), extra="tf_keras")
