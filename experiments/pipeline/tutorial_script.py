"""The tutorial's training script, as users copy it, with one addition: each epoch's time and batch count.

    python experiments/pipeline/tutorial_script.py DATA_DIR EPOCHS OUT.json

Kept as the tutorial writes it (ImageDataGenerator with rescale=1/255 and its
augmentations, flow_from_directory at 150x150, the three-block CNN,
steps_per_epoch = samples // batch_size), so experiments/pipeline/epochs.py
can time it beside `python -m imgexp experiment=seed_tutorial`.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
from keras import layers
from keras.src.legacy.preprocessing.image import ImageDataGenerator

data_dir, epochs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
img_width, img_height, batch_size = 150, 150, 32


class EpochTimes(keras.callbacks.Callback):
    """Wall time (training + validation) and training batches of each epoch."""

    def __init__(self):
        super().__init__()
        self.epochs: list[dict] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.batches = time.perf_counter(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append({"seconds": time.perf_counter() - self.started, "batches": self.batches})


train_datagen = ImageDataGenerator(rescale=1.0 / 255, rotation_range=40, width_shift_range=0.2,
                                   height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
                                   horizontal_flip=True, fill_mode="nearest")
test_datagen = ImageDataGenerator(rescale=1.0 / 255)
train_generator = train_datagen.flow_from_directory(f"{data_dir}/train", target_size=(img_width, img_height),
                                                    batch_size=batch_size, class_mode="binary")
validation_generator = test_datagen.flow_from_directory(f"{data_dir}/validation", target_size=(img_width, img_height),
                                                        batch_size=batch_size, class_mode="binary")

model = keras.Sequential([
    keras.Input((img_width, img_height, 3)),
    layers.Conv2D(32, (3, 3), activation="relu"), layers.MaxPooling2D(2, 2),
    layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D(2, 2),
    layers.Conv2D(128, (3, 3), activation="relu"), layers.MaxPooling2D(2, 2),
    layers.Flatten(), layers.Dropout(0.5), layers.Dense(512, activation="relu"), layers.Dense(1, activation="sigmoid"),
])
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
timer = EpochTimes()
model.fit(train_generator, steps_per_epoch=train_generator.samples // batch_size, epochs=epochs,
          validation_data=validation_generator, validation_steps=validation_generator.samples // batch_size,
          callbacks=[timer], verbose=0)
with open(out, "w") as f:
    json.dump({"epochs": timer.epochs, "batch_size": batch_size, "train_samples": train_generator.samples}, f)
