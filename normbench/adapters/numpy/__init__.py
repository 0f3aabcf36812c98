"""The float64 reference as an adapter: numpy, no threads of its own to set, no known divergences."""

from ..framework import Framework

FRAMEWORK = Framework("numpy", {"numpy": ".layers:NumpyAdapter"}, distributions=("numpy", "ml_dtypes"))
