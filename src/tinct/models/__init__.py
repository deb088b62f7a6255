"""Colorization networks. Import a family module to register it."""
from . import autoencoder, cnn, unet  # noqa: F401  (registration side effect)
from .base import ColorModel
from .registry import create_model, list_models, model_class

__all__ = ["ColorModel", "create_model", "list_models", "model_class"]
