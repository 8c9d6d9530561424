"""Out-of-distribution inputs for `dropkit uncertainty --ood`: scikit-learn's digits shown to a 28x28-image model.

How the digits are made to look like the run's inputs: the 1,797 8x8 images of
sklearn.datasets.load_digits (grey levels 0-16, a bright digit on a dark
background, as Fashion-MNIST and MNIST are) are scaled to 0-255, upsampled to
28x28 by bilinear interpolation (torch.nn.functional.interpolate,
align_corners=False) and standardised with the scalar mean and standard
deviation of the run's own training images, exactly as the lab standardises
its test split (dropkit.lab.data).

Example:
    >>> x_ood = digits_like(data.load("fashion-mnist"))  # doctest: +SKIP
    >>> x_ood.shape  # doctest: +SKIP
    torch.Size([1797, 784])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import data

__all__ = ["OOD_SETS", "digits_like", "DIGITS_SIDE"]

OOD_SETS = ("digits",)
DIGITS_SIDE = 28  # the side the 8x8 digits are upsampled to


def _upsampled_digits() -> np.ndarray:
    """(1797, 28, 28) float32 digits on the 0-255 scale of the IDX images."""
    from sklearn.datasets import load_digits

    images = torch.from_numpy(load_digits().images.astype(np.float32) * (255.0 / 16.0))[:, None]
    up = torch.nn.functional.interpolate(images, size=(DIGITS_SIDE, DIGITS_SIDE), mode="bilinear", align_corners=False)
    return up[:, 0].numpy()  # convex combinations of 0-255 values: still on 0-255


def digits_like(ds: data.Dataset) -> torch.Tensor:
    """scikit-learn's digits as (1797, 784) float32 inputs preprocessed like the 28x28 data set `ds`.

    Raises:
        data.DataError: `ds` is not a 28x28 IDX data set (a digits run has no out-of-distribution digits).
    """
    directory = Path(ds.source)
    train_file = data._file(directory, "train-images-idx3-ubyte") if directory.is_dir() else None
    if ds.n_features != DIGITS_SIDE**2 or train_file is None:
        raise data.DataError(
            f"--ood digits needs a run trained on 28x28 images (fashion-mnist or mnist); this run's data is {ds.name} "
            f"with {ds.n_features} features"
        )
    train_images = data.read_idx(train_file, 0x00000803)
    _, digits = data._standardise(train_images, _upsampled_digits())
    return digits
