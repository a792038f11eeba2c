"""Image sources (digits, folder) and the tf.data input pipeline."""
