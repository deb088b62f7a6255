"""Old-photo restoration: the degradation model, the restoration network, classical steps, the entry points.

``tinct.restore(image)`` restores a PIL image or array (this package is callable: it is ``run.restore``);
``degrade`` (synthetic damage), ``network`` (the ``restore`` model family), ``classical`` (OpenCV steps),
``color`` (faded color prints), ``run`` (the flow), ``batch`` (file and folder runs).
"""
from __future__ import annotations

import sys
import types

from .run import RestoreOptions, restore

__all__ = ["RestoreOptions", "restore"]


class _CallableModule(types.ModuleType):
    def __call__(self, image, options: RestoreOptions | None = None, **kw):
        """``tinct.restore(image, **options)``: see ``tinct.restore.run.restore``."""
        return restore(image, options, **kw)


sys.modules[__name__].__class__ = _CallableModule
