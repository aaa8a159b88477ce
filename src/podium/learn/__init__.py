"""Learning from every run: task profiles from the event log, estimates that improve with
measured durations and memory, right-sized requests.

Pure functions (no store, no clock, no randomness): ``profile`` turns the events of past runs
into ``Sample``s per task; ``fit`` predicts a quantity (duration at speed 1, peak memory) of a
task from its samples and, where the samples' input sizes vary, from its current input size;
``rightsize`` suggests requests from measured peaks and CPU time. The runtime reads the store
and passes the events in (``runtime.profiles``); the planner's one rule (``planner.estimates``)
decides when a learned figure beats a declared one.
"""

from __future__ import annotations

from podium.learn.fit import MIN_SAMPLES, Model, Prediction, fit, predict
from podium.learn.profile import Sample, input_size, samples_of
from podium.learn.rightsize import Suggestion, suggest

__all__ = [
    "MIN_SAMPLES",
    "Model",
    "Prediction",
    "Sample",
    "Suggestion",
    "fit",
    "input_size",
    "predict",
    "samples_of",
    "suggest",
]
