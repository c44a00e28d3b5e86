"""Image ingestion: a folder of PNG/JPEG files, or a NumPy ``.npz``/``.npy`` file, as one array.

:func:`read_images` returns an :class:`ImageSet`: ``uint8`` pixels shaped ``(N, H, W, C)``
(``C`` = 1 for grayscale, 3 for colour), optional class labels, and the input's SHA-256
for the budget ledger. Inputs it reads:

* **A folder of images** (``.png``, ``.jpg``, ``.jpeg``; case-insensitive). Either the
  images lie directly in the folder (no labels), or the folder holds one sub-folder per
  class and the images lie in those (the sub-folder's name is the class). Hidden entries
  (names starting with ``.``) and files of other types are ignored; a folder that mixes
  images and class sub-folders is refused. If every image is grayscale the set is ``"L"``,
  otherwise every image is converted to ``"RGB"`` (an alpha channel is dropped).
* **A .npz file**: the images under the key ``images`` (or ``x``/``X``; or ``arr_0``
  when it is the only array), the labels, optional, under ``labels`` (or ``y``/``Y``).
* **A .npy file**: the images alone.

Arrays are ``(N, H, W)`` (grayscale) or ``(N, H, W, C)`` with ``C`` 1 or 3. Pixel values:
``uint8`` is taken as is; other integer types must lie in 0..255; floats must lie in
[0, 1] and are scaled by 255. A non-``uint8`` integer array whose largest value is 16 or
less is refused as ambiguous (it looks like a 0..1 or 0..16 scale, such as scikit-learn's
raw digits, which read as 0..255 would be nearly black): convert it to ``uint8`` 0..255.

Images of different sizes are resized to ``size`` = ``(height, width)`` when it is given
(bilinear, after converting the mode); without it they are refused, naming two files that
differ. Labels become codes 0..K-1 into ``class_names`` (the distinct label values, sorted,
as text); a label set with a single class is refused, as there is nothing to condition on.

The fingerprint ``sha256`` is that of the file for ``.npz``/``.npy``; for a folder, of
every image's relative path and bytes, in sorted path order, so that renaming a class
folder or moving an image changes it.

Sizes are checked before anything is decoded, so a small file cannot inflate into
gigabytes: an image file is read only if it is a regular file (a FIFO or device with an
image's name is refused, never opened) of at most :data:`MAX_IMAGE_FILE_BYTES`; its
declared width x height (read from its header) must stay under :data:`MAX_IMAGE_PIXELS`;
an array's declared shape x item size (from its ``.npy`` header, and a ``.npz`` member's
declared uncompressed size) must stay under ``max_bytes``, as must all the decoded pixels
of a folder (default: :func:`synthdata.ingest.default_memory_limit`).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import open_regular_file, printable, read_regular_file, sha256_file
from ..ingest import default_memory_limit, format_size

__all__ = ["IMAGE_SUFFIXES", "ImageSet", "read_images", "is_image_input", "parse_image_size", "write_images",
           "grid_image", "class_folder_names", "declared_classes", "CLASSES_FILE"]

#: The public label list a steward may put beside the images (in the folder; beside an
#: array file as ``NAME.classes.json``).
CLASSES_FILE = "classes.json"
#: Largest class list file read.
MAX_CLASSES_BYTES = 1 << 20

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_IMAGE_KEYS = ("images", "x", "X")
_LABEL_KEYS = ("labels", "y", "Y")
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Largest image file read (a 50-megapixel JPEG is about 20 MB).
MAX_IMAGE_FILE_BYTES = 256 << 20
#: Most pixels one image may declare (below Pillow's own decompression-bomb limit).
MAX_IMAGE_PIXELS = 50_000_000
#: The formats a file named .png/.jpg/.jpeg may hold (never whatever else Pillow could decode).
_FORMATS = ("PNG", "JPEG")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


@dataclass(frozen=True)
class ImageSet:
    """Images ready for the image model: pixels, labels and where they came from."""

    images: np.ndarray  #: uint8, (N, H, W, C), C = 1 ("L") or 3 ("RGB")
    labels: np.ndarray | None  #: int64 codes 0..K-1 into class_names, or None
    class_names: list[str] | None
    source: str
    sha256: str
    mode: str  #: "L" or "RGB"

    def __len__(self) -> int:
        return len(self.images)


def is_image_input(path: str | os.PathLike) -> bool:
    """Whether ``path`` names image data (a folder, a .npz or a .npy file) rather than a table."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() in (".npz", ".npy")


def parse_image_size(text: str) -> tuple[int, int]:
    """``"28"`` or ``"28x32"`` (height x width) as ``(height, width)``."""
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 1:
        numbers = numbers * 2
    if len(numbers) != 2 or min(numbers) < 1:
        raise DataError(f"image size {text!r}: give HEIGHTxWIDTH in pixels, such as 28x28, or one number, such as 28")
    return numbers[0], numbers[1]


def declared_classes(data: str | os.PathLike, option: str | None) -> list[str] | None:
    """The public label domain a steward declares, as class names; None if none is declared.

    ``option`` (``--classes``) is a comma-separated list (``cat,dog,bird``) or the path of a
    JSON file holding a list of names (or ``{"classes": [...]}``). Without it, a
    ``classes.json`` inside an image folder (or ``NAME.classes.json`` beside ``NAME.npz``)
    declares them. Names are compared with the class sub-folders' names (or, for arrays,
    with the label values written as text). A declared domain is public: every declared
    class is released, no threshold, nothing paid for which classes exist.
    """
    path = Path(data)
    if option is None:
        beside = path / CLASSES_FILE if path.is_dir() else path.with_name(f"{path.stem}.{CLASSES_FILE}")
        return _read_class_file(beside) if os.path.lexists(beside) else None
    text = str(option).strip()
    if text.lower().endswith(".json"):
        return _read_class_file(Path(text))
    names = [part.strip() for part in text.split(",")]
    if not names or any(not name for name in names):
        raise DataError(f"--classes {printable(text)!r}: give the class names separated by commas (a,b,c), or a "
                        ".json file holding a list of names")
    return _unique_names(names, "--classes")


def _read_class_file(path: Path) -> list[str]:
    from ..files import load_json

    raw = read_regular_file(path, max_bytes=MAX_CLASSES_BYTES, what="class list", error=DataError)
    value = load_json(raw, what=f"class list {printable(path)}", error=DataError)
    if isinstance(value, dict):
        value = value.get("classes")
    if not isinstance(value, list) or not value or not all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise DataError(f"{printable(path)} must hold a non-empty JSON list of class names (or {{\"classes\": [...]}})")
    return _unique_names([str(v) for v in value], printable(path))


def _unique_names(names: list[str], where: str) -> list[str]:
    seen = set()
    for name in names:
        if name in seen:
            raise DataError(f"{where} names the class {printable(name)!r} twice")
        seen.add(name)
    if len(names) < 2:
        raise DataError(f"{where} declares a single class; labels need at least two classes")
    return names


def read_images(path: str | os.PathLike, *, size: tuple[int, int] | None = None,
                max_bytes: int | None = None) -> ImageSet:
    """Read an image folder, .npz or .npy file (see the module's docstring for the rules).

    ``max_bytes`` caps the pixels decoded (and an array file's declared arrays), checked
    before decoding; default :func:`synthdata.ingest.default_memory_limit`.
    """
    path = Path(path)
    if size is not None:
        if len(size) != 2 or min(int(s) for s in size) < 1:
            raise DataError(f"size must be (height, width) in whole pixels, got {size!r}")
        size = (int(size[0]), int(size[1]))
        if size[0] * size[1] > MAX_IMAGE_PIXELS:
            raise DataError(f"image size {size[0]}x{size[1]} is more than {MAX_IMAGE_PIXELS:,} pixels; choose a "
                            "smaller --image-size")
    cap = default_memory_limit() if max_bytes is None else int(max_bytes)
    if not os.path.lexists(path):
        raise DataError(f"{printable(path)} does not exist")
    if path.is_dir():
        images, labels, names, sha, mode = _read_folder(path, size, cap)
    elif path.suffix.lower() in (".npz", ".npy"):
        images, labels, names, sha, mode = _read_array_file(path, size, cap)
    else:
        raise DataError(f"{printable(path)} is not an image folder, a .npz or a .npy file")
    if len(images) == 1:
        raise DataError(f"{printable(path)} holds a single image; a generator needs many images to learn from")
    return ImageSet(images=images, labels=labels, class_names=names, source=str(path), sha256=sha, mode=mode)


# --------------------------------------------------------------------------- folders


def _read_folder(folder: Path, size, cap: int):
    entries = sorted(e for e in _list(folder) if not e.name.startswith("."))
    classes = [e for e in entries if e.is_dir()]
    # Not only regular files: a FIFO or device named like an image is refused when read, never skipped.
    loose = [e for e in entries if not e.is_dir() and e.suffix.lower() in IMAGE_SUFFIXES]
    if classes and loose:
        raise DataError(f"{printable(folder)} holds both images ({printable(loose[0].name)}) and sub-folders ({printable(classes[0].name)}); put "
                        "every image in a class sub-folder, or none")
    files: list[Path] = []
    codes: list[int] = []
    for code, sub in enumerate(classes):
        found = sorted(f for f in _list(sub)
                       if not f.name.startswith(".") and not f.is_dir() and f.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        codes += [code] * len(found)
    files = files if classes else loose
    if not files:
        raise DataError(f"{printable(folder)} holds no image ({', '.join(IMAGE_SUFFIXES)} files"
                        + (", directly or in class sub-folders)" if not classes else " in its class sub-folders)"))
    names = None
    if classes:
        used = sorted(set(codes))
        if len(used) < 2:
            only = classes[used[0]].name
            raise DataError(f"{printable(folder)} has images in a single class sub-folder ({printable(only)}); labels need at least two "
                            "classes: add the other classes, or put the images directly in the folder")
        # Class sub-folders with no image carry no class.
        remap = {old: new for new, old in enumerate(used)}
        codes = [remap[c] for c in codes]
        names = [classes[c].name for c in used]

    from PIL import Image

    digest = hashlib.sha256()
    decoded = []
    total = 0
    for file in files:
        relative = file.relative_to(folder).as_posix()
        raw = read_regular_file(file, max_bytes=MAX_IMAGE_FILE_BYTES, what="image file", follow_symlinks=True,
                                error=DataError)
        digest.update(relative.encode("utf-8", "surrogateescape") + b"\0" + len(raw).to_bytes(8, "big") + raw)
        image = _decode(raw, f"{printable(relative)} in {printable(folder)}")
        if size is not None and image.size != (size[1], size[0]):
            # Resized at once, so memory holds small images only; in its own colour family first
            # (as below), and a grey image made RGB later gets the same pixels either way.
            image = image.convert("L" if image.mode in _GRAY_MODES else "RGB")
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        total += image.size[0] * image.size[1] * len(image.getbands())
        if total > cap:
            raise DataError(f"the images in {printable(folder)} take more than {format_size(cap)} decoded (by "
                            f"{printable(relative)}); pass a smaller --image-size, or use fewer images")
        decoded.append((relative, image))
    grayscale = all(image.mode in _GRAY_MODES for _, image in decoded)
    mode = "L" if grayscale else "RGB"
    arrays = []
    first = None
    for relative, image in decoded:
        image = image.convert(mode)
        if size is not None and image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        elif first is None:
            first = (relative, image.size)
        elif image.size != first[1]:
            raise _size_error(folder, first, (relative, image.size))
        arrays.append(np.asarray(image, dtype=np.uint8))
    images = np.stack(arrays)
    if images.ndim == 3:
        images = images[..., None]
    labels = np.asarray(codes, dtype=np.int64) if names is not None else None
    return images, labels, names, digest.hexdigest(), mode


def _list(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as exc:
        raise DataError(f"cannot list {printable(folder)}: {exc.strerror}; check its permissions") from None


def _decode(raw: bytes, where: str):
    """A PNG or JPEG from its bytes; the declared size checked before the pixels are decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow warns (an error under -W error) above its own limit; ours is lower and checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw), formats=_FORMATS)
    except Image.DecompressionBombError:
        raise DataError(f"{where} declares an image of more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels (a "
                        "decompression bomb?); remove or replace it") from None
    except UnidentifiedImageError:
        raise DataError(f"{where} is not a readable image (PNG or JPEG); remove or replace it") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"{where} is corrupt ({_reason(exc)}); remove or replace it") from None
    width, height = image.size
    if width < 1 or height < 1 or width * height > MAX_IMAGE_PIXELS:
        raise DataError(f"{where} declares {width}x{height} pixels (width x height), more than the "
                        f"{MAX_IMAGE_PIXELS:,} synthdata decodes; remove it or scale it down first")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise DataError(f"{where} is corrupt ({_reason(exc)}); remove or replace it") from None
    if image.mode.startswith("I"):
        # A 16-bit grayscale PNG ("I;16", or "I" holding 0..65535): Pillow's convert("L") clips
        # every value above 255 to white, so scale the 16 bits to 8 instead (v / 257, rounded).
        wide = np.asarray(image, dtype=np.int64)
        image = Image.fromarray(((np.clip(wide, 0, 65535) + 128) // 257).astype(np.uint8), "L")
    return image


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return printable(text[:200]) if text else type(exc).__name__


def _size_error(folder: Path, first, other) -> DataError:
    (a, (wa, ha)), (b, (wb, hb)) = first, other
    return DataError(f"{printable(folder)} holds images of different sizes: {a} is {ha}x{wa}, {b} is {hb}x{wb} (height x width); "
                     "pass --image-size HxW (size= in Python) to resize them all")


# --------------------------------------------------------------------------- arrays


def _read_array_file(path: Path, size, cap: int):
    shown = printable(path)
    sha = sha256_file(path, what="image array file", error=DataError)
    labels_raw = None
    try:
        # An open handle of ours (a regular file: never a FIFO): np.load leaks its own when the archive is corrupt.
        with open_regular_file(path, what="image array file", follow_symlinks=True, error=DataError) as handle:
            if path.suffix.lower() == ".npy":
                _check_npy_header(handle, f"{shown}", cap)
                handle.seek(0)
                images_raw = np.load(handle, allow_pickle=False)
            else:
                archive = np.load(handle, allow_pickle=False)
                keys = list(archive.files)
                image_key = next((k for k in _IMAGE_KEYS if k in keys), None)
                if image_key is None and keys == ["arr_0"]:
                    image_key = "arr_0"
                if image_key is None:
                    raise DataError(f"{shown} holds no images array: name it 'images' (or 'x'), and the labels "
                                    f"'labels' (or 'y'); it holds {printable(', '.join(keys)) or 'no array'}")
                images_raw = _member(archive, image_key, shown, cap)
                label_key = next((k for k in _LABEL_KEYS if k in keys), None)
                if label_key is not None:
                    labels_raw = _member(archive, label_key, shown, cap)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, zipfile.LargeZipFile,
            NotImplementedError) as exc:
        raise DataError(f"{shown} is not a readable NumPy file ({_reason(exc)}); it may be corrupt") from None
    images = _pixels(images_raw, path)
    if len(images) == 0:
        raise DataError(f"{printable(path)} holds no image (its images array is empty)")
    mode = "L" if images.shape[-1] == 1 else "RGB"
    if size is not None and images.shape[1:3] != size:
        images = _resize(images, size, mode)
    labels, names = (None, None) if labels_raw is None else _labels(labels_raw, len(images), path)
    return images, labels, names, sha, mode


def _pixels(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype == object or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{printable(path)}: the images array has type {array.dtype}; expected uint8 0..255 or floats in [0, 1]")
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise DataError(f"{printable(path)}: the images array has shape {array.shape}; expected N x H x W or N x H x W x C with "
                        "C = 1 or 3 (channels last)")
    if array.size == 0:
        return array.astype(np.uint8)
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise DataError(f"{printable(path)}: pixel values run from {low} to {high}; integers must lie in 0..255")
        if high <= 16:
            raise DataError(f"{printable(path)}: integer pixel values run only from {low} to {high}, which is ambiguous (a 0..1 "
                            "or 0..16 scale?); store 0..255 values as uint8, or floats in [0, 1]")
        return array.astype(np.uint8)
    if not np.isfinite(array).all():
        raise DataError(f"{printable(path)}: the images array holds NaN or infinite values")
    low, high = float(array.min()), float(array.max())
    if low < 0 or high > 1:
        raise DataError(f"{printable(path)}: float pixel values run from {low:g} to {high:g}; floats must lie in [0, 1] "
                        "(store 0..255 values as uint8)")
    return np.rint(array * 255.0).astype(np.uint8)


def _resize(images: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    from PIL import Image

    out = []
    for image in images:
        pil = Image.fromarray(image[..., 0] if mode == "L" else image, mode=mode)
        out.append(np.asarray(pil.resize((size[1], size[0]), Image.Resampling.BILINEAR), dtype=np.uint8))
    stacked = np.stack(out)
    return stacked[..., None] if stacked.ndim == 3 else stacked


def _labels(raw: np.ndarray, n: int, path: Path) -> tuple[np.ndarray, list[str]]:
    raw = np.asarray(raw)
    if raw.ndim != 1 or len(raw) != n:
        raise DataError(f"{printable(path)}: the labels array has shape {raw.shape}; expected one label per image ({n},)")
    if raw.dtype == object:
        raise DataError(f"{printable(path)}: the labels array holds Python objects; store numbers or strings")
    if np.issubdtype(raw.dtype, np.floating) and not np.isfinite(raw).all():
        raise DataError(f"{printable(path)}: the labels array holds NaN or infinite values")
    values, codes = np.unique(raw, return_inverse=True)
    if len(values) < 2:
        raise DataError(f"{printable(path)}: every image has the same label ({values[0]}); labels need at least two classes: "
                        "drop the labels array to generate without them")
    return codes.astype(np.int64), [str(v) for v in values.tolist()]


def _member(archive, key: str, shown: str, cap: int) -> np.ndarray:
    """One array of a .npz, its declared sizes checked before it is inflated."""
    name = f"{key}.npy"
    where = f"{shown}: the array {printable(key)!r}"
    try:
        info = archive.zip.getinfo(name)
    except KeyError:  # stored without the .npy suffix: np.load reads it as raw bytes, no header to check
        raise DataError(f"{where} is not stored as a .npy member; save the file with numpy.savez") from None
    if info.file_size > cap + (64 << 10):
        raise DataError(f"{where} declares {format_size(info.file_size)} uncompressed, more than the "
                        f"{format_size(cap)} synthdata loads; it cannot be read whole (a compression bomb?)")
    with archive.zip.open(name) as member:
        _check_npy_header(member, where, cap)
    return archive[key]


def _check_npy_header(handle, where: str, cap: int) -> None:
    """Refuse an array whose header declares more than ``cap`` bytes, or Python objects, before reading it."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(handle)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = npy.read_array_header_2_0(handle)
        else:
            raise ValueError(f"unknown .npy format version {version}")
    except (ValueError, EOFError, OSError, SyntaxError, TypeError) as exc:
        raise DataError(f"{where} is not a readable .npy array ({_reason(exc)}); it may be corrupt") from None
    if dtype.hasobject:
        raise DataError(f"{where} holds Python objects; store numbers (uint8 pixels, integer or text labels)")
    declared = math.prod(int(n) for n in shape) * dtype.itemsize
    if declared > cap:
        raise DataError(f"{where} declares shape {tuple(shape)} of {dtype} ({format_size(declared)}), more than the "
                        f"{format_size(cap)} synthdata loads; store it as uint8 pixels, or use fewer or smaller "
                        "images")


# --------------------------------------------------------------------------- writing a release


def class_folder_names(class_names: list[str]) -> list[str]:
    """A safe folder name per class: the class name when it is a plain name, else ``class_<code>``."""
    safe = []
    for code, name in enumerate(class_names):
        plain = bool(_PLAIN.fullmatch(name)) and not name.startswith(".")
        safe.append(name if plain and name not in safe else f"class_{code}")
    return safe


def write_images(directory: str | os.PathLike, images: np.ndarray, labels: np.ndarray | None,
                 class_names: list[str] | None) -> list[str]:
    """Write synthetic images as a release: PNGs, ``images.npz`` and ``grid.png``; returns the names written.

    PNGs go to ``images/00000.png``… or, with labels, ``images/<class>/00000.png``… (the
    layout :func:`read_images` reads back, one sub-folder per class; a class name that is not
    a plain file name becomes ``class_<code>``). ``images.npz`` holds ``images`` (uint8
    N×H×W×C) and, with labels, ``labels`` (codes) and ``class_names``. ``grid.png`` shows
    up to 100 of them, sorted by class.
    """
    from PIL import Image

    directory = Path(directory)
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim == 3:
        images = images[..., None]
    mode = "L" if images.shape[-1] == 1 else "RGB"
    folders = class_folder_names(class_names) if labels is not None and class_names is not None else None
    width = max(5, len(str(len(images) - 1)))
    names = []
    for index, image in enumerate(images):
        folder = "images" if folders is None else f"images/{folders[int(labels[index])]}"
        name = f"{printable(folder)}/{index:0{width}d}.png"
        (directory / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0] if mode == "L" else image, mode=mode).save(directory / name)
        names.append(name)
    arrays = {"images": images}
    if labels is not None:
        arrays["labels"] = np.asarray(labels, dtype=np.int64)
        if class_names is not None:
            arrays["class_names"] = np.asarray(class_names, dtype=str)
    np.savez_compressed(directory / "images.npz", **arrays)
    grid_image(images, labels).save(directory / "grid.png")
    return [*names, "images.npz", "grid.png"]


def grid_image(images: np.ndarray, labels: np.ndarray | None = None, *, count: int = 100, columns: int = 10):
    """Up to ``count`` images side by side (sorted by label), enlarged to at least 32 pixels a side."""
    from PIL import Image

    chosen = np.arange(min(count, len(images)))
    if labels is not None:
        chosen = chosen[np.argsort(np.asarray(labels)[chosen], kind="stable")]
    tiles = images[chosen]
    height, width, channels = tiles.shape[1:]
    scale = max(1, int(np.ceil(32 / max(height, width))))
    tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    rows = int(np.ceil(len(tiles) / columns))
    gap = 2
    h, w = height * scale, width * scale
    canvas = np.full((rows * (h + gap) + gap, min(columns, len(tiles)) * (w + gap) + gap, channels), 255, np.uint8)
    for i, tile in enumerate(tiles):
        top, left = gap + (i // columns) * (h + gap), gap + (i % columns) * (w + gap)
        canvas[top:top + h, left:left + w] = tile
    return Image.fromarray(canvas[..., 0] if channels == 1 else canvas, mode="L" if channels == 1 else "RGB")
