"""Optimizers, callbacks and the fit/evaluate loop of one run."""
