"""The README's Python example runs as written, beside the fixture MobileNet and its labels."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_example() -> str:
    """The first ```python block after "From Python" in the README."""
    text = README.read_text(encoding="utf-8")
    start = text.index("From Python")
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match, "README has no Python example after 'From Python'"
    return match.group(1)


def test_readme_python_example_runs_on_the_fixture_mobilenet(shared_fixtures, tmp_path,
                                                             monkeypatch):
    for name in ("mobilenet_v1_0.25_128_quant.tflite", "imagenet_labels.txt", "cat.bmp"):
        (tmp_path / name).symlink_to(shared_fixtures / name)
    (tmp_path / "photos").mkdir()
    for name in ("bird.bmp", "parrot.jpg"):
        (tmp_path / "photos" / name).symlink_to(shared_fixtures / name)
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(python_example(), str(README), "exec"), {"__name__": "readme"})
    lines = printed.getvalue().splitlines()
    assert lines[0].startswith("Model('mobilenet_v1_0.25_128_quant', tflite, input uint8[1, "
                               "128, 128, 3] NHWC")
    assert "Image('cat', " in lines[0] and "Image('parrot', " in lines[0]
    assert lines[1] == ("MutationReport(add_to_subtract, sites=[0,3]: 28 found, 2 applied, "
                        "0 skipped)")
    assert "'applicable': True" in lines[2] and "'sites_found': 20" in lines[2]
    assert re.fullmatch(r"\[\d+, \d+, \d+\]", lines[3])  # top-1 of the three photographs
    assert lines[4].startswith("False not applicable: relu_to_sigmoid finds no site")
    assert (tmp_path / "out" / "model.so").is_file()
    assert (tmp_path / "out" / "ir" / "relax.py").is_file()
