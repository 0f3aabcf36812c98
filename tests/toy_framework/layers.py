"""The toy framework's one adapter: numpy's LayerNorm under another name."""

from normbench.adapters.numpy.layers import NumpyAdapter, NumpyLayer


class ToyAdapter(NumpyAdapter):
    name = "toy"
    builders = {"layer_norm": NumpyLayer}
    version_of = "thirdparty-toy"
