"""TensorBoard records, run artifacts and plots."""
