"""Inputs checked before they mislead: high-bit-depth and transparent images, large resizes,
folder scans, label files that do not match the class count, models whose outputs ignore the
input, and `predict` flags that cannot work. Every model here is a small real ONNX graph
built and run by TVM."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import onnx
import pytest
from PIL import Image as PILImage

import mutatenn_passes as mn
from mutatenn_passes.cli import main
from mutatenn_passes.images import IMAGE_EXTENSIONS, load_image
from mutatenn_passes.output_checks import ignores_input

GRADIENT16 = np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)


def _png16_rgb(path, rgb: np.ndarray) -> None:
    """Write a 16-bit-per-channel RGB PNG (Pillow cannot save one)."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# --- images ---------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path, suffix):
    path = tmp_path / f"gray16{suffix}"
    PILImage.fromarray(GRADIENT16).save(path)
    image = load_image(path)
    assert image.mode.startswith("I;16") and image.pixels.dtype == np.uint8
    expected = np.rint(GRADIENT16 * (255 / 65535)).astype(np.uint8)
    np.testing.assert_array_equal(image.pixels, np.repeat(expected[..., None], 3, axis=2))
    assert (image.pixels == 255).mean() < 0.01  # Pillow's convert("RGB") made ~all 255
    assert image.notes == ("16-bit grayscale scaled to 8 bits",)


def test_16_bit_rgb_keeps_each_channel_within_one_step(tmp_path):
    import tifffile  # a dependency of scikit-image, which ships the default images

    rgb = np.stack([GRADIENT16, 65535 - GRADIENT16, np.full_like(GRADIENT16, 30000)], axis=-1)
    _png16_rgb(tmp_path / "rgb16.png", rgb)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb, photometric="rgb")
    for name in ("rgb16.png", "rgb16.tif"):
        pixels = load_image(tmp_path / name).pixels.astype(int)
        assert np.abs(pixels - rgb / 257).max() <= 1, name


def test_ambiguous_32_bit_images_are_refused(tmp_path):
    PILImage.fromarray((GRADIENT16.astype(np.int32) - 40000)).save(tmp_path / "i32.tif")
    with pytest.raises(mn.ImageLoadError, match="i32.tif: a 32-bit integer image"):
        load_image(tmp_path / "i32.tif")
    PILImage.fromarray((GRADIENT16 / 65535).astype(np.float32)).save(tmp_path / "f32.tif")
    assert load_image(tmp_path / "f32.tif").pixels.max() == 255


def test_dropped_alpha_is_noted_only_when_it_hid_pixels(tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 3] = 255
    PILImage.fromarray(rgba).save(tmp_path / "opaque.png")
    rgba[:3, :, 3] = 0
    PILImage.fromarray(rgba).save(tmp_path / "holes.png")
    assert load_image(tmp_path / "opaque.png").notes == ()
    [note] = load_image(tmp_path / "holes.png").notes
    assert note.startswith("alpha channel dropped: 30% of pixels")


def test_image_repr_is_short(tmp_path):
    PILImage.fromarray(GRADIENT16).save(tmp_path / "gray16.png")
    text = repr(load_image(tmp_path / "gray16.png"))
    assert text == ("Image('gray16', 64x48, mode='I;16', "
                    "notes=['16-bit grayscale scaled to 8 bits'])")


def test_folder_scan_lists_what_it_skipped(tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    PILImage.new("RGB", (8, 8)).save(folder / "a.PNG")
    (folder / "notes.txt").write_text("not an image")
    images = mn.load_images([folder])
    assert [im.name for im in images] == ["a"]
    assert [p.name for p in images.skipped] == ["notes.txt", "sub"]
    assert ".png" in IMAGE_EXTENSIONS and ".tiff" in IMAGE_EXTENSIONS
    with pytest.raises(mn.ImageLoadError, match=r"no images found in .*\(image extensions: "):
        mn.load_images([folder / "sub"])


# --- models with tiny real graphs -----------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory, tiny_classifier):
    folder = tmp_path_factory.mktemp("tiny")
    files = {"thousand": folder / "thousand.onnx", "constant": folder / "constant.onnx",
             "ten": folder / "ten.onnx"}
    onnx.save(tiny_classifier(1000), str(files["thousand"]))
    onnx.save(tiny_classifier(10, constant_weights=True), str(files["constant"]))
    onnx.save(tiny_classifier(10), str(files["ten"]))
    labels = folder / "imagenet_1001.txt"
    labels.write_text("background\n" + "\n".join(f"class {i}" for i in range(1000)) + "\n")
    files["labels"] = labels
    return files


def _predict_json(capsys, *args) -> tuple[list[dict], str]:
    code = main(["predict", "--json", "--top", "2", *map(str, args)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_1001_labels_on_1000_classes_warn_unless_offset(tiny_files, capsys):
    model = mn.load_model(tiny_files["thousand"], labels=tiny_files["labels"])
    assert model.classes == 1000 and model.label(0) == "background"
    assert "1001 labels for 1000 classes" in model.label_mismatch
    assert "--label-offset" in model.label_mismatch
    assert model.describe()["label_mismatch"] == model.label_mismatch

    lines, err = _predict_json(capsys, "--model", tiny_files["thousand"], "--labels",
                               tiny_files["labels"])
    [warning] = lines[0]["warnings"]
    assert "1001 labels for 1000 classes" in warning
    assert err.count("warning:") == 1 and "1001 labels" in err

    shifted = mn.load_model(tiny_files["thousand"], labels=tiny_files["labels"],
                            label_offset=1)
    assert shifted.label_mismatch == "" and shifted.label(0) == "class 0"
    assert shifted.label(999) == "class 999" and shifted.label_offset == 1
    lines, err = _predict_json(capsys, "--model", tiny_files["thousand"], "--labels",
                               tiny_files["labels"], "--label-offset", "1")
    assert lines[0]["warnings"] == [] and "warning" not in err
    assert lines[0]["labels"][0] == f"class {lines[0]['classes'][0]}"


def test_label_offset_finds_the_file_beside_the_model(tiny_files, tmp_path):
    model_file = tmp_path / "thousand.onnx"
    model_file.write_bytes(tiny_files["thousand"].read_bytes())
    (tmp_path / "labels.txt").write_text(tiny_files["labels"].read_text())
    assert mn.load_model(model_file).labels is None  # 1001 lines do not fit 1000 classes
    model = mn.load_model(model_file, label_offset=1)
    assert model.label(5) == "class 5" and not model.label_mismatch
    with pytest.raises(mn.ModelLoadError, match="label_offset must be an integer"):
        mn.load_model(model_file, label_offset="1")


def test_fixture_labels_fit_the_1001_class_mobilenet(shared_fixtures):
    model = mn.load_model(shared_fixtures / "mobilenet_v1_0.25_128_quant.tflite",
                          labels=shared_fixtures / "imagenet_labels.txt")
    assert model.classes == 1001 and model.label_mismatch == ""
    assert model.label(283) == "tiger cat"
    assert repr(model) == ("Model('mobilenet_v1_0.25_128_quant', tflite, input "
                           "uint8[1, 128, 128, 3] NHWC, output uint8[1, 1001], 1001 labels)")


def test_outputs_that_ignore_the_input_are_flagged(tiny_files, capsys):
    lines, err = _predict_json(capsys, "--model", tiny_files["constant"])
    assert len(lines) == 5  # the default photographs
    for line in lines:
        [warning] = line["warnings"]
        assert "every class scores the same (0.1) on every image" in warning
    assert err.count("warning:") == 1

    lines, err = _predict_json(capsys, "--model", tiny_files["ten"])
    assert all(line["warnings"] == [] for line in lines) and "warning" not in err


def test_ignores_input_reads_scores_and_inputs():
    rng = np.random.default_rng(0)
    varied = rng.standard_normal((3, 10)).astype(np.float32)
    inputs = rng.standard_normal((3, 4)).astype(np.float32)
    assert ignores_input(varied, inputs) == ""
    assert "every class scores the same" in ignores_input(np.full((1, 10), 0.1, np.float32))
    same = np.repeat(varied[:1], 3, axis=0)
    assert ignores_input(same, inputs).startswith("all 3 different inputs got identical")
    # the same image twice legitimately scores the same: not evidence
    assert ignores_input(same[:2], np.repeat(inputs[:1], 2, axis=0)) == ""
    quantized = np.array([[3, 200, 7], [3, 200, 7]], np.uint8)
    assert "identical scores" in ignores_input(quantized)
    assert ignores_input(quantized + np.array([[0, 0, 0], [0, 0, 1]], np.uint8)) == ""


def test_predict_notes_resizes_and_transparency(tiny_files, tmp_path, capsys):
    rgba = np.full((400, 20, 4), 255, np.uint8)
    rgba[:100, :, 3] = 0
    PILImage.fromarray(rgba).save(tmp_path / "tall.png")
    PILImage.new("RGB", (20, 20)).save(tmp_path / "small.png")
    lines, _ = _predict_json(capsys, "--model", tiny_files["ten"], tmp_path / "tall.png",
                             tmp_path / "small.png")
    tall, small = lines
    assert tall["notes"][0].startswith("alpha channel dropped: 25% of pixels")
    assert tall["notes"][1] == ("resized 20x400 -> 16x16 px for the model's input "
                                "(25.0x smaller in height)")
    assert small["notes"] == []
    assert main(["predict", "--model", str(tiny_files["ten"]), str(tmp_path / "tall.png")]) == 0
    out = capsys.readouterr().out
    assert "note: tall: resized 20x400 -> 16x16 px" in out


def test_predict_says_what_a_folder_scan_skipped(tiny_files, tmp_path, capsys):
    PILImage.new("RGB", (16, 16)).save(tmp_path / "a.jpg")
    (tmp_path / "README.md").write_text("x")
    lines, err = _predict_json(capsys, "--model", tiny_files["ten"], tmp_path)
    assert [line["image"] for line in lines] == ["a"]
    [line] = [line for line in err.splitlines() if "skipped" in line]
    assert "skipped 1 folder entry that is not an image file (README.md)" in line


@pytest.mark.parametrize("top", ["0", "-3"])
def test_predict_rejects_a_top_below_one(top, capsys):
    assert main(["predict", "--top", top]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: --top must be at least 1, not {top}"
