"""tinct: colorize grayscale photographs and film."""
__version__ = "0.1.0"

from .errors import TinctError  # noqa: E402
from .pipeline import ColorizeOptions, colorize  # noqa: E402
from . import restore  # noqa: E402  (callable: tinct.restore(image); tinct.restore.degrade, ...)
from .suggest import suggest_colors  # noqa: E402
from .weights import load_model  # noqa: E402

__all__ = ["ColorizeOptions", "TinctError", "colorize", "load_model", "restore", "suggest_colors"]
