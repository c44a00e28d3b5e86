"""Image ingestion: folders (flat or one sub-folder per class), .npz and .npy; every bad input in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthdata.errors import DataError
from synthdata.images import is_image_input, parse_image_size, read_images

DIGITS = Path(__file__).resolve().parents[1] / "sample_datasets" / "digits.npz"


def _png(path: Path, size=(8, 6), mode="L", value=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    shape = (size[0], size[1]) if mode == "L" else (size[0], size[1], 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path)
    return path


def _one_line(exc_info) -> str:
    message = exc_info.value.message
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------- happy paths


def test_flat_folder_of_grayscale_pngs(tmp_path):
    for i in range(3):
        _png(tmp_path / "in" / f"{i}.png", value=i)
    got = read_images(tmp_path / "in")
    assert got.images.shape == (3, 8, 6, 1) and got.images.dtype == np.uint8
    assert got.mode == "L" and got.labels is None and got.class_names is None
    assert np.array_equal(got.images[1, ..., 0], np.asarray(Image.open(tmp_path / "in" / "1.png")))


def test_class_subfolders_become_labels_and_rgb_wins(tmp_path):
    _png(tmp_path / "in" / "cat" / "a.png", mode="RGB")
    _png(tmp_path / "in" / "cat" / "b.jpg", mode="RGB", value=1)
    _png(tmp_path / "in" / "dog" / "c.PNG", value=2)
    (tmp_path / "in" / "dog" / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "in" / "empty").mkdir()
    got = read_images(tmp_path / "in")
    assert got.mode == "RGB" and got.images.shape == (3, 8, 6, 3)
    assert got.class_names == ["cat", "dog"] and got.labels.tolist() == [0, 0, 1]


def test_folder_fingerprint_covers_names_and_bytes(tmp_path):
    for i in range(2):
        _png(tmp_path / "a" / "x" / f"{i}.png", value=i)
        _png(tmp_path / "a" / "y" / f"{i}.png", value=i + 5)
    first = read_images(tmp_path / "a").sha256
    assert read_images(tmp_path / "a").sha256 == first
    (tmp_path / "a" / "y").rename(tmp_path / "a" / "z")
    assert read_images(tmp_path / "a").sha256 != first


def test_mixed_sizes_are_resized_when_asked(tmp_path):
    _png(tmp_path / "in" / "a.png", size=(8, 8))
    _png(tmp_path / "in" / "b.png", size=(10, 12))
    got = read_images(tmp_path / "in", size=(6, 5))
    assert got.images.shape == (2, 6, 5, 1)


def test_digits_npz_is_read_as_is():
    if not DIGITS.exists():
        pytest.skip(f"{DIGITS} is not present")
    got = read_images(DIGITS)
    assert got.images.shape == (1797, 8, 8, 1) and got.mode == "L"
    assert got.class_names == [str(d) for d in range(10)] and got.labels.shape == (1797,)
    assert got.images.max() == 255
    raw = np.load(DIGITS)
    assert np.array_equal(got.images[..., 0], raw["images"])


def test_npz_keys_floats_and_npy(tmp_path):
    rng = np.random.default_rng(0)
    floats = rng.random((5, 4, 4, 3))
    np.savez(tmp_path / "f.npz", x=floats, y=np.array(["a", "b", "a", "b", "b"]))
    got = read_images(tmp_path / "f.npz")
    assert got.mode == "RGB" and got.images.dtype == np.uint8
    assert np.array_equal(got.images, np.rint(floats * 255).astype(np.uint8))
    assert got.class_names == ["a", "b"] and got.labels.tolist() == [0, 1, 0, 1, 1]
    np.save(tmp_path / "g.npy", rng.integers(0, 256, (4, 6, 6)).astype(np.int32))
    got = read_images(tmp_path / "g.npy", size=(3, 3))
    assert got.images.shape == (4, 3, 3, 1) and got.labels is None


def test_is_image_input_and_size_parsing(tmp_path):
    assert is_image_input(tmp_path) and is_image_input("a.npz") and not is_image_input("a.csv")
    assert parse_image_size("28") == (28, 28) and parse_image_size("28x32") == (28, 32)
    with pytest.raises(DataError, match="HEIGHTxWIDTH"):
        parse_image_size("big")


# --------------------------------------------------------------------------- bad inputs


def test_mixed_sizes_without_size_name_two_files(tmp_path):
    _png(tmp_path / "in" / "a.png", size=(8, 8))
    _png(tmp_path / "in" / "b.png", size=(10, 12))
    with pytest.raises(DataError) as info:
        read_images(tmp_path / "in")
    message = _one_line(info)
    assert "a.png" in message and "b.png" in message and "--image-size" in message


def test_corrupt_file_is_named(tmp_path):
    _png(tmp_path / "in" / "good.png")
    _png(tmp_path / "in" / "good2.png")
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError) as info:
        read_images(tmp_path / "in")
    assert "broken.png" in _one_line(info)


def test_truncated_png_is_named(tmp_path):
    good = _png(tmp_path / "in" / "a.png", size=(40, 40))
    _png(tmp_path / "in" / "b.png", size=(40, 40))
    (tmp_path / "in" / "c.png").write_bytes(good.read_bytes()[:-200])
    with pytest.raises(DataError) as info:
        read_images(tmp_path / "in")
    assert "c.png" in _one_line(info)


def test_empty_folder(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="holds no image") as info:
        read_images(tmp_path / "in")
    _one_line(info)


def test_single_image(tmp_path):
    _png(tmp_path / "in" / "only.png")
    with pytest.raises(DataError, match="single image") as info:
        read_images(tmp_path / "in")
    _one_line(info)


def test_single_class_folder(tmp_path):
    _png(tmp_path / "in" / "cats" / "a.png")
    _png(tmp_path / "in" / "cats" / "b.png")
    (tmp_path / "in" / "dogs").mkdir()
    with pytest.raises(DataError, match="single class sub-folder") as info:
        read_images(tmp_path / "in")
    assert "cats" in _one_line(info)


def test_single_class_labels_in_npz(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((3, 4, 4), np.uint8), labels=np.ones(3))
    with pytest.raises(DataError, match="same label"):
        read_images(tmp_path / "d.npz")


def test_images_and_subfolders_mixed(tmp_path):
    _png(tmp_path / "in" / "a.png")
    _png(tmp_path / "in" / "cls" / "b.png")
    with pytest.raises(DataError, match="both images"):
        read_images(tmp_path / "in")


@pytest.mark.parametrize("array, fragment", [
    (np.zeros((3, 4, 4), np.int64) + 16, "ambiguous"),
    (np.full((3, 4, 4), 300, np.int64), "0..255"),
    (np.full((3, 4, 4), 2.0), "floats must lie in [0, 1]"),
    (np.full((3, 4, 4), np.nan), "NaN"),
    (np.zeros((3, 4, 4, 4), np.uint8), "C = 1 or 3"),
    (np.zeros((3, 4), np.uint8), "shape"),
    (np.zeros((0, 4, 4), np.uint8), "no image"),
])
def test_bad_arrays(tmp_path, array, fragment):
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(DataError) as info:
        read_images(tmp_path / "a.npy")
    assert fragment in _one_line(info)


def test_npz_without_known_keys_and_bad_labels(tmp_path):
    np.savez(tmp_path / "k.npz", pixels=np.zeros((3, 4, 4), np.uint8), other=np.zeros(3))
    with pytest.raises(DataError, match="'images'"):
        read_images(tmp_path / "k.npz")
    np.savez(tmp_path / "l.npz", images=np.zeros((3, 4, 4), np.uint8), labels=np.arange(4))
    with pytest.raises(DataError, match="one label per image"):
        read_images(tmp_path / "l.npz")


def test_corrupt_npz_and_missing_path(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DataError, match="bad.npz") as info:
        read_images(tmp_path / "bad.npz")
    _one_line(info)
    with pytest.raises(DataError, match="does not exist"):
        read_images(tmp_path / "nowhere")
