"""One run's training: device settings, inputs, optimizers, callbacks, fit with resume, evaluation and artifacts."""
