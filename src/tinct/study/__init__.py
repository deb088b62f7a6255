"""`tinct study`: a colorization Turing test (real photo or colorization?) and its report.

``pairs.py`` prepares the pairs (each truth beside its colorization by every model), ``answers.py``
appends answers atomically to a CSV, ``app.py`` serves the participants' page, ``report.py`` turns
the CSV into fooling rates with 95% confidence intervals and a picture of the most and least
convincing pairs.
"""
from .answers import AnswerLog
from .pairs import StudyConfig, prepare
from .report import fooling_rates, wilson_interval

__all__ = ["AnswerLog", "StudyConfig", "fooling_rates", "prepare", "wilson_interval"]
