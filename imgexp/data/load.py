"""Pick a dataset by its config name, from a request that says everything its listing depends on."""

from dataclasses import dataclass
from pathlib import Path

from imgexp.data.source import ImageSource

BUILT_IN = ("digits", "folder", "csv")  # dataset.name: these, or a name in TensorFlow Datasets' catalogue


@dataclass(frozen=True)
class ListingRequest:
    """What decides a dataset's listing (its files, labels and splits); hashable, so a process lists it once."""

    name: str  # digits | folder | csv
    path: str | None
    validation_split: float
    seed: int
    on_bad_image: str
    test_split: float = 0.0  # folder, csv: a share carved out as the test split where none is given
    images: str | None = None  # csv: the folder its file names are relative to (default: the CSV's folder)
    file_column: str | None = None  # csv: null guesses from the usual headers
    label_column: str | None = None
    image_size: tuple[int, int] | None = None  # tfds: its images are held in memory at the run's size
    data_dir: str | None = None  # tfds: where prepared datasets are (null: TFDS' default, ~/tensorflow_datasets)
    ram_share: float = 0.5  # tfds: the share of the available memory its images may take
    max_pixels: int = 60_000_000  # folder, csv: larger images (by their header) are skipped or refused

    @property
    def root(self) -> str | None:
        """The folder image names are relative to (in split.csv, the fingerprint, the duplicates report)."""
        if self.name == "csv":
            return self.images or str(Path(self.path).parent)
        return self.path


def load_source(request: ListingRequest) -> ImageSource:
    if request.name == "digits":
        from imgexp.data.digits import load_digits_source

        return load_digits_source(request.validation_split, request.seed)
    if request.name == "folder":
        from imgexp.data.folder import load_folder_source

        return load_folder_source(request)
    if request.name == "csv":
        from imgexp.data.csv_source import load_csv_source

        return load_csv_source(request)
    from imgexp.data.tfds_source import load_tfds_source  # any other name is one of TFDS' catalogue

    return load_tfds_source(request)
