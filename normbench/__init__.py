"""normbench: verify and benchmark BatchNorm and LayerNorm across frameworks.

Importing normbench imports no deep-learning framework; adapters import theirs when used.

PYTEST_DONT_REWRITE: the CLI imports normbench before it starts pytest with this plugin.
"""

__version__ = "0.1.0"

from .adapters import Adapter, Layer, NotInstalled, UnknownAdapter, Unsupported  # noqa: E402
from .numerics.reference import Grads  # noqa: E402
from .ops.spec import NormSpec  # noqa: E402

__all__ = ["Adapter", "Grads", "Layer", "NormSpec", "NotInstalled", "Unsupported",
           "UnknownAdapter", "__version__"]
