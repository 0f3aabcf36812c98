"""Reports: results files in, pandas tables out, rendered as self-contained HTML and Markdown.

pandas and matplotlib are imported here, never by ``import normbench``.
"""

from .model import Results, load

__all__ = ["Results", "load"]
