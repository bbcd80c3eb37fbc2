"""Images: the embedded default photographs, decoding user images, and preprocessing.

The default images are real photographs that the scikit-image wheel ships as data files
(astronaut, Chelsea the cat, coffee, a rocket launch, the Hubble deep field). We read the files
directly with Pillow rather than importing scikit-image, which keeps start-up fast.

Every image becomes 8-bit RGB, the form preprocessing works on. Pillow's own ``convert("RGB")``
clips 16-bit grayscale to 255 (a 16-bit PNG turns solid white), so high-bit-depth grayscale is
scaled here instead; what decoding changed (bit depth, a dropped alpha channel) is kept in
``Image.notes`` so that predictions can say it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ImageLoadError

DEFAULT_IMAGE_FILES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg",
                       "hubble_deep_field.jpg")

#: File name extensions (lower-cased) that count as images when a folder is given; other
#: entries of the folder, subfolders included (folders are not searched recursively), are
#: skipped and listed in `ImageList.skipped`. A file named explicitly is decoded whatever its
#: extension.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

#: A resize by more than this factor in one axis is worth a note: the model sees little of
#: the photograph (or a blown-up thumbnail).
RESIZE_NOTE_FACTOR = 8.0


@dataclass(frozen=True, repr=False)
class Image:
    """A decoded photograph as 8-bit RGB (``pixels`` is HxWx3 uint8) and where it came from.

    ``mode`` is the file's own Pillow mode (``"RGB"``, ``"I;16"``, ``"RGBA"``, ...) before the
    conversion; ``notes`` say what the conversion changed that a user should know (a
    high-bit-depth image scaled to 8 bits, an alpha channel with transparent pixels dropped).
    """

    name: str
    path: str
    pixels: np.ndarray
    mode: str = "RGB"
    notes: tuple[str, ...] = ()

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, as Pillow reports sizes."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])

    def __repr__(self) -> str:
        width, height = self.size
        notes = f", notes={list(self.notes)!r}" if self.notes else ""
        return f"Image({self.name!r}, {width}x{height}, mode={self.mode!r}{notes})"


class ImageList(list):
    """The images `load_images` decoded, in order, plus ``skipped``: the entries of the given
    folders that were not read (not an image by extension, or a subfolder)."""

    def __init__(self, images=(), skipped=()):
        super().__init__(images)
        self.skipped: list[Path] = list(skipped)


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


#: Pillow modes holding one 16-bit channel (PNG, TIFF), scaled by 255/65535.
_GRAY16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def _high_bit_depth_to_rgb(im, path: Path) -> tuple[np.ndarray, str]:
    """8-bit RGB pixels of a one-channel image with more than 8 bits, and a note.

    16-bit modes scale by 255/65535 (rounded). Pillow's 32-bit modes ``I`` and ``F`` do not
    say the range the values use, so only ranges that are unambiguous are accepted: integers
    within 0..65535 (how older Pillow opens 16-bit PNGs) and floats within [0, 1].
    """
    values = np.asarray(im)
    if im.mode in _GRAY16_MODES:
        scaled, note = values.astype(np.float64) * (255.0 / 65535.0), \
            "16-bit grayscale scaled to 8 bits"
    elif im.mode == "I" and values.size and 0 <= values.min() and values.max() <= 65535:
        scaled, note = values.astype(np.float64) * (255.0 / 65535.0), \
            "16-bit grayscale scaled to 8 bits"
    elif im.mode == "F" and values.size and 0.0 <= values.min() and values.max() <= 1.0:
        scaled, note = values.astype(np.float64) * 255.0, \
            "floating-point grayscale in [0, 1] scaled to 8 bits"
    else:
        kind = "integer" if im.mode == "I" else "floating-point"
        low, high = (values.min(), values.max()) if values.size else (0, 0)
        raise ImageLoadError(f"{path}: a 32-bit {kind} image with values {low}..{high} has no "
                             "known 8-bit mapping; save it as 8- or 16-bit")
    gray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2), note


def _alpha_note(im) -> str:
    """A note when converting ``im`` to RGB drops an alpha channel (or a transparent palette
    entry) that hides pixels; '' when there is none or every pixel is opaque."""
    if im.mode not in _ALPHA_MODES and "transparency" not in im.info:
        return ""
    alpha = np.asarray(im.convert("RGBA"))[..., 3]
    hidden = float((alpha < 255).mean()) if alpha.size else 0.0
    if hidden == 0.0:
        return ""
    return (f"alpha channel dropped: {hidden:.0%} of pixels were transparent or translucent; "
            "the model sees their stored colour")


def load_image(path: str | Path) -> Image:
    """Decode one image file to 8-bit RGB; a missing or undecodable file is an
    `ImageLoadError`. High-bit-depth grayscale is scaled (not clipped) to 8 bits; 16-bit RGB
    keeps the high byte of each channel (Pillow's reading)."""
    from PIL import Image as PILImage, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: no such image file")
    notes = []
    try:
        with PILImage.open(path) as im:
            mode = im.mode
            if mode in _GRAY16_MODES + ("I", "F"):
                pixels, note = _high_bit_depth_to_rgb(im, path)
                notes.append(note)
            else:
                note = _alpha_note(im)
                notes += [note] if note else []
                pixels = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageLoadError(f"{path}: cannot decode image ({exc})") from None
    return Image(name=path.stem, path=str(path), pixels=pixels, mode=mode, notes=tuple(notes))


def path_images(path: str | Path) -> tuple[list[Path], list[Path]]:
    """The image files ``path`` names and the folder entries it skips: a folder's files whose
    extension is in `IMAGE_EXTENSIONS`, in name order, and its other entries; a file is
    itself, whatever its extension."""
    path = Path(path)
    if not path.is_dir():
        return [path], []
    files, skipped = [], []
    for entry in sorted(path.iterdir()):
        if entry.is_file() and entry.suffix.lower() in IMAGE_EXTENSIONS:
            files.append(entry)
        else:
            skipped.append(entry)
    return files, skipped


def load_images(paths=None) -> ImageList:
    """Decode ``paths`` (files or folders of images); ``None`` means the default images.

    In a folder, the files whose extension is in `IMAGE_EXTENSIONS` are read, in name order;
    the other entries are listed in the result's ``skipped``. A named file is read whatever
    its extension. No image at all is an `ImageLoadError`.
    """
    if paths is None:
        return ImageList(default_images())
    files, skipped = image_files(paths)
    return ImageList([load_image(f) for f in files], skipped)


def image_files(paths) -> tuple[list[Path], list[Path]]:
    """The image files ``paths`` name, in the order `load_images` reads them, and the folder
    entries it skips. No image at all is an `ImageLoadError`."""
    files: list[Path] = []
    skipped: list[Path] = []
    for p in paths:
        found, passed = path_images(p)
        files += found
        skipped += passed
    if not files:
        raise ImageLoadError(f"no images found in {', '.join(map(str, paths))} (image "
                             f"extensions: {' '.join(IMAGE_EXTENSIONS)})")
    return files, skipped


def skipped_summary(skipped: list[Path], shown: int = 5) -> str:
    """One line naming the folder entries a scan skipped (the first ``shown`` of them)."""
    names = [f"{p.name}/" if p.is_dir() else p.name for p in skipped]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return (f"skipped {len(names)} folder entr{'y' if len(names) == 1 else 'ies'} that "
            f"{'is' if len(names) == 1 else 'are'} not an image file ({', '.join(names[:shown])}"
            f"{more}); images end in {' '.join(IMAGE_EXTENSIONS)}")


def resize_note(image: Image, spec: Preprocess) -> str:
    """A note when resizing ``image`` to the model's input changes an axis by more than
    `RESIZE_NOTE_FACTOR` (either way); '' otherwise."""
    width, height = image.size
    parts = []
    for axis, source, target in (("width", width, spec.width), ("height", height,
                                                                   spec.height)):
        if source and target and max(source / target, target / source) > RESIZE_NOTE_FACTOR:
            smaller = source > target
            factor = source / target if smaller else target / source
            parts.append(f"{factor:.1f}x {'smaller' if smaller else 'larger'} in {axis}")
    if not parts:
        return ""
    return (f"resized {width}x{height} -> {spec.width}x{spec.height} px for the model's input "
            f"({', '.join(parts)})")


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
