"""Colorization networks. Import a family module to register it."""
from . import autoencoder, cnn, unet  # noqa: F401  (registration side effect)
from . import encoder_decoder, classifier, pix2pix, dcgan  # noqa: F401,I001  (the zoo; this order is `tinct models` order)
from . import eccv16  # noqa: F401,I001  (the speed reference of bench/speed.py)
from ..restore import network as _restore  # noqa: F401,I001  (`restore`: old-photo restoration, not color)
from .base import ColorModel
from .registry import create_model, list_models, model_class

__all__ = ["ColorModel", "create_model", "list_models", "model_class"]
