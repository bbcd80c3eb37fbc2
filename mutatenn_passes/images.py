"""Images: the embedded default photographs, decoding user images, and preprocessing.

The default images are real photographs that the scikit-image wheel ships as data files
(astronaut, Chelsea the cat, coffee, a rocket launch, the Hubble deep field). We read the files
directly with Pillow rather than importing scikit-image, which keeps start-up fast.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ImageLoadError

DEFAULT_IMAGE_FILES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
                       "hubble_deep_field.jpg")


@dataclass(frozen=True)
class Image:
    """A decoded RGB photograph (``pixels`` is HxWx3 uint8) and where it came from."""

    name: str
    path: str
    pixels: np.ndarray


@dataclass(frozen=True)
class Preprocess:
    """How a model expects its input: size, layout, channel order and value mapping.

    ``raw`` models take the resized uint8 pixels unchanged (quantized TFLite models);
    otherwise each channel becomes ``(pixel * scale - mean) / std`` in float32.
    """

    height: int
    width: int
    layout: str = "NCHW"  # or "NHWC"
    channel_order: str = "RGB"  # or "BGR"
    raw: bool = False
    dtype: str = "float32"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    resample: str = "bicubic"  # Pillow's default; or "bilinear", "nearest", "lanczos"

    def as_dict(self) -> dict:
        return {"height": self.height, "width": self.width, "layout": self.layout,
                "channel_order": self.channel_order, "raw": self.raw, "dtype": self.dtype,
                "scale": self.scale, "mean": list(self.mean), "std": list(self.std),
                "resample": self.resample}


def _skimage_data_dir() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ImageLoadError("the default images come from scikit-image's data files, but "
                             "scikit-image is not installed (pip install scikit-image)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def default_image_paths() -> list[Path]:
    """Paths of the embedded default photographs, in a fixed order."""
    data = _skimage_data_dir()
    return [data / name for name in DEFAULT_IMAGE_FILES]


def load_image(path: str | Path) -> Image:
    """Decode one image file to RGB; a missing or undecodable file is an `ImageLoadError`."""
    from PIL import Image as PILImage, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: no such image file")
    try:
        with PILImage.open(path) as im:
            pixels = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageLoadError(f"{path}: cannot decode image ({exc})") from None
    return Image(name=path.stem, path=str(path), pixels=pixels)


def load_images(paths=None) -> list[Image]:
    """Decode ``paths`` (files or folders of images); ``None`` means the default images."""
    if paths is None:
        return default_images()
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.iterdir()
                            if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif",
                                                    ".tif", ".tiff", ".webp"))
        else:
            files.append(p)
    if not files:
        raise ImageLoadError(f"no images found in {', '.join(map(str, paths))}")
    return [load_image(f) for f in files]


_DEFAULT_CACHE: list[Image] = []


def default_images() -> list[Image]:
    """The embedded default photographs (decoded once per process)."""
    if not _DEFAULT_CACHE:
        _DEFAULT_CACHE.extend(load_image(p) for p in default_image_paths())
    return list(_DEFAULT_CACHE)


def preprocess(images: list[Image], spec: Preprocess) -> np.ndarray:
    """Resize and convert a batch of images into one model-ready array."""
    from PIL import Image as PILImage

    methods = {"bicubic": PILImage.BICUBIC, "bilinear": PILImage.BILINEAR,
               "nearest": PILImage.NEAREST, "lanczos": PILImage.LANCZOS}
    if spec.resample not in methods:
        raise ImageLoadError(f"unknown resample method {spec.resample!r} "
                             f"(known: {', '.join(methods)})")
    batch = []
    for image in images:
        resized = PILImage.fromarray(image.pixels).resize((spec.width, spec.height),
                                                          methods[spec.resample])
        x = np.asarray(resized)
        if spec.channel_order == "BGR":
            x = x[..., ::-1]
        if spec.raw:
            x = x.astype(spec.dtype)
        else:
            x = ((x.astype(np.float32) * np.float32(spec.scale) - np.float32(spec.mean))
                 / np.float32(spec.std)).astype(spec.dtype)
        if spec.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        batch.append(x)
    return np.ascontiguousarray(np.stack(batch))
