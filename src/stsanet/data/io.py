"""Reading ground-truth maps and fixations, writing 8-bit PNGs atomically.

Every reader raises :class:`DataFileError` naming the file, so a bad dataset ends in one
line that says which file to fix rather than a traceback from PIL or scipy.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from stsanet.atomic import atomic_path
from stsanet.errors import InputError

# Variable names of the fixation matrices in the released datasets: DHF1K stores `I`,
# DIEM (STAViS layout) stores `eyeMap`; other files are accepted when they hold one 2-D array.
FIXATION_MAT_KEYS = ("I", "eyeMap", "fixLocs", "fixationPts")


class DataFileError(InputError):
    """A dataset file is missing, unreadable or has the wrong content."""


def read_grey_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as a 2-D uint8 array (colour images are converted to luminance)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    try:
        with Image.open(path) as image:
            if image.mode in ("I;16", "I;16B", "I"):
                raise DataFileError(
                    f"{path}: {image.mode} image; saliency maps must be 8-bit grey PNG/JPG"
                )
            array = np.asarray(image.convert("L"))
    except DataFileError:
        raise
    except Exception as error:  # PIL raises many types for truncated/corrupt files
        raise DataFileError(f"{path}: cannot read image ({error})") from None
    if array.ndim != 2 or array.size == 0:
        raise DataFileError(f"{path}: expected a non-empty 2-D image, got shape {array.shape}")
    return array


def read_saliency_map(path: str | os.PathLike) -> np.ndarray:
    """An 8-bit grey saliency map as float32 H×W in [0, 1] (value / 255)."""
    return read_grey_image(path).astype(np.float32) / np.float32(255.0)


def _fixations_from_mat(path: Path) -> np.ndarray:
    import scipy.io

    try:
        contents = scipy.io.loadmat(str(path))
    except NotImplementedError:
        # MATLAB v7.3 files are HDF5; scipy cannot read them.
        raise DataFileError(
            f"{path}: MATLAB v7.3 (HDF5) file; re-save it with save(..., '-v7') or as PNG"
        ) from None
    except Exception as error:
        raise DataFileError(f"{path}: cannot read .mat file ({error})") from None
    arrays = {k: v for k, v in contents.items() if not k.startswith("__")}
    for key in FIXATION_MAT_KEYS:
        if key in arrays and np.ndim(arrays[key]) == 2:
            return np.asarray(arrays[key])
    # MATLAB saves scalars and vectors as 2-D too; only a real image-shaped matrix counts.
    two_d = [
        k for k, v in arrays.items()
        if isinstance(v, np.ndarray) and v.ndim == 2 and min(v.shape) > 1
    ]
    if len(two_d) == 1:
        return np.asarray(arrays[two_d[0]])
    raise DataFileError(
        f"{path}: expected a variable {' or '.join(repr(k) for k in FIXATION_MAT_KEYS[:2])} "
        f"or a single 2-D array, found {sorted(arrays) or 'no variables'}"
    )


def read_fixations(path: str | os.PathLike) -> np.ndarray:
    """A binary fixation map as bool H×W (PNG/JPG: any non-zero pixel; .mat: see module doc)."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        if not path.is_file():
            raise DataFileError(f"{path}: file not found")
        array = _fixations_from_mat(path)
        if array.size == 0:
            raise DataFileError(f"{path}: empty fixation matrix")
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise DataFileError(f"{path}: fixation matrix has non-numeric type {array.dtype}")
        return array != 0
    return read_grey_image(path) != 0


def write_png_atomic(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 H×W (grey) or H×W×3 (RGB) array as PNG; readers never see a partial file."""
    path = Path(path)
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"write_png_atomic({path}): expected uint8, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"write_png_atomic({path}): expected H×W or H×W×3, got {image.shape}")
    with atomic_path(path) as temporary:
        Image.fromarray(image).save(temporary, format="PNG")
