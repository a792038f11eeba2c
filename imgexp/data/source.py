"""What a dataset provides before any TensorFlow: class names and labelled splits."""

from dataclasses import dataclass

import numpy as np


@dataclass
class Split:
    """Labelled images, held in memory (`images`) or as files on disk (`paths`)."""

    labels: np.ndarray  # int32 class indices
    images: np.ndarray | None = None  # uint8 [N, H, W, 3]
    paths: list[str] | None = None
    ids: list[str] | None = None  # in-memory images: each one's name in its dataset (e.g. its original index)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices) -> "Split":
        """The images at `indices`, in that order."""
        return Split(labels=self.labels[indices],
                     images=self.images[indices] if self.images is not None else None,
                     paths=[self.paths[i] for i in indices] if self.paths is not None else None,
                     ids=[self.ids[i] for i in indices] if self.ids is not None else None)


@dataclass
class ImageSource:
    class_names: list[str]
    train: Split
    validation: Split
    test: Split | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def splits(self) -> dict[str, Split]:
        """train, validation and (when there is one) test, by name."""
        return {"train": self.train, "validation": self.validation,
                **({"test": self.test} if self.test is not None else {})}
