"""Tools that read finished runs: compare, predict, evaluate, export (`python -m imgexp.<tool>`)."""
