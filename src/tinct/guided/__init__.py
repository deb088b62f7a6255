"""Guided and classical colorization: scribbles (Levin et al. 2004), reference photos (Reinhard et al. 2001,
Welsh et al. 2002), per-pixel learning (Cheng et al. 2015), and user points into the deep model.

``colorize.py`` dispatches between them for the CLI; each method lives in its own module.
"""
