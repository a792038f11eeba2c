"""Searches: YAML spaces as KerasTuner hyperparameters, oracles, and the tuner whose trials are runs."""
