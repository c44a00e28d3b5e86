"""Image ingestion: folders (flat or one sub-folder per class), .npz and .npy; every bad input in one line."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
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


# --------------------------------------------------------------------------- planted files and bombs (issue 17)

posix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")


def _png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims width x height pixels (its IDAT holds 8x8)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(("width", "height", "fragment"), [
    (50_000, 50_000, "decompression bomb"),  # past Pillow's own error limit
    (10_000, 10_000, "more than the 50,000,000"),  # in Pillow's warning zone: no warning escapes
])
def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(tmp_path, width, height, fragment):
    _png(tmp_path / "in" / "a.png")
    _png_declaring(tmp_path / "in" / "b.png", width, height)
    with pytest.raises(DataError) as info:
        read_images(tmp_path / "in")
    message = _one_line(info)
    assert "b.png" in message and fragment in message


def test_a_png_named_file_holding_another_format_is_refused(tmp_path):
    _png(tmp_path / "in" / "a.png")
    Image.new("L", (8, 8)).save(tmp_path / "in" / "b.png", format="TIFF")
    with pytest.raises(DataError, match="b.png.*not a readable image"):
        read_images(tmp_path / "in")


def test_folder_images_are_capped_in_total(tmp_path):
    for i in range(3):
        _png(tmp_path / "in" / f"{i}.png", size=(40, 40), value=i)
    with pytest.raises(DataError, match="more than") as info:
        read_images(tmp_path / "in", max_bytes=2 * 40 * 40)
    assert "--image-size" in _one_line(info)
    assert read_images(tmp_path / "in", size=(8, 8), max_bytes=2 * 40 * 40).images.shape == (3, 8, 8, 1)


@posix_only
def test_a_fifo_among_the_images_is_refused_without_blocking(tmp_path):
    _png(tmp_path / "in" / "a.png")
    _png(tmp_path / "in" / "b.png", value=1)
    os.mkfifo(tmp_path / "in" / "c.png")
    with pytest.raises(DataError, match="c.png is a FIFO"):
        read_images(tmp_path / "in")  # a blocking open would hang here


@posix_only
@pytest.mark.parametrize("name", ["a.npz", "a.npy"])
def test_a_fifo_or_device_array_file_is_refused_without_blocking(tmp_path, name):
    os.mkfifo(tmp_path / name)
    with pytest.raises(DataError, match="FIFO"):
        read_images(tmp_path / name)
    os.symlink("/dev/zero", tmp_path / f"zero{Path(name).suffix}")
    with pytest.raises(DataError, match="device"):
        read_images(tmp_path / f"zero{Path(name).suffix}")


def _npz_declaring(path: Path, shape, *, member_bytes: int | None = None) -> Path:
    """A .npz whose images member declares ``shape`` uint8 (zeros, deflated: a few KB on disk)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    size = int(np.prod(shape)) if member_bytes is None else member_bytes
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive, \
            archive.open("images.npy", "w", force_zip64=True) as member:
        member.write(header.getvalue())
        for start in range(0, size, 1 << 20):
            member.write(bytes(min(1 << 20, size - start)))
    return path


def test_an_npz_member_too_large_when_inflated_is_refused_before_inflating(tmp_path):
    bomb = _npz_declaring(tmp_path / "bomb.npz", (2000, 64, 64))  # 8 MB of zeros in ~10 KB
    assert bomb.stat().st_size < 100_000
    with pytest.raises(DataError) as info:
        read_images(bomb, max_bytes=1 << 20)
    assert "declares" in _one_line(info) and "compression bomb" in _one_line(info)


def test_an_npy_header_declaring_too_much_is_refused_before_reading(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10**6, 512, 512)})
    (tmp_path / "a.npy").write_bytes(header.getvalue() + bytes(64))  # 2 TB declared, 64 bytes present
    with pytest.raises(DataError, match=r"declares shape \(1000000, 512, 512\) of float64"):
        read_images(tmp_path / "a.npy")
    # Inside an .npz, a member whose header lies about its shape is caught by the header check too.
    _npz_declaring(tmp_path / "b.npz", (10**6, 512, 512), member_bytes=64)
    with pytest.raises(DataError, match="declares shape"):
        read_images(tmp_path / "b.npz")
