"""Hydra config groups (package data, found installed or editable)."""
