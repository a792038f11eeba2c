"""Pick a dataset by its config name."""

from imgexp.data.digits import load_digits_source
from imgexp.data.folder import load_folder_source
from imgexp.data.source import ImageSource


def load_source(name: str, path: str | None, validation_split: float, seed: int, on_bad_image: str) -> ImageSource:
    if name == "digits":
        return load_digits_source(validation_split, seed)
    if name == "folder":
        return load_folder_source(path, validation_split, seed, on_bad_image)
    raise ValueError(f"unknown dataset {name!r}")  # the config group offers only these
