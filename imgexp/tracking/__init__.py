"""TensorBoard records, the hyperparameters' names, plots and the classification report of a run."""
