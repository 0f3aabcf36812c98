"""A throwaway framework package, registered by one entry point (see test_registry): its adapter
wraps the numpy reference; it names a distribution of its own and a thread variable."""

from normbench.adapters.framework import Framework

FRAMEWORK = Framework("toy", {"toy": ".layers:ToyAdapter"}, distributions=("thirdparty-toy",))
