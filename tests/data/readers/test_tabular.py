"""csv: (FER2013 and pixel-column layouts) and labeled: (image folder + labels CSV) readers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from smallvision.data.load import load_source
from smallvision.data.readers.common import BadItems
from smallvision.data.readers.tabular import FER_CLASSES, parse_cells, pixel_rows
from smallvision.errors import UserError

RNG = np.random.default_rng(3)


def write_fer(path, n=7, side=4) -> tuple[np.ndarray, np.ndarray]:
    """A FER2013-layout CSV of ``n`` side x side faces; returns (pixels, emotions)."""
    x = RNG.integers(0, 256, (n, side * side))
    y = np.arange(n) % 7
    usage = ["Training", "Training", "Training", "PublicTest", "PrivateTest", "Training", "PublicTest"]
    rows = [f"{y[i]},{' '.join(map(str, x[i]))},{usage[i % 7]}" for i in range(n)]
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    return x.reshape(n, side, side), y


def test_fer_layout_groups_classes_and_pixels(tmp_path):
    x, y = write_fer(tmp_path / "fer2013.csv")
    data = load_source(f"csv:{tmp_path / 'fer2013.csv'}")
    assert data.images.shape == (7, 1, 4, 4) and data.images.dtype == torch.uint8
    np.testing.assert_array_equal(data.images[:, 0].numpy(), x)
    assert data.targets["label"].tolist() == y.tolist() and data.info["label"].classes == FER_CLASSES
    assert {g: v.tolist() for g, v in data.groups.items()} == {
        "train": [0, 1, 2, 5],
        "val": [3, 6],
        "test": [4],
    }


def test_fer_truncated_last_line_names_the_line(tmp_path):
    path = tmp_path / "fer.csv"
    write_fer(path)
    path.write_text(path.read_text()[:-40])  # cut inside the last row's pixels
    with pytest.raises(UserError, match=r"fer.csv line 8: expected 3 cells"):
        load_source(f"csv:{path}")
    data = load_source(f"csv:{path}", {"skip_bad": True})
    assert len(data) == 6 and data.meta["skipped"] == 1 and data.meta["skipped_files"] == [f"{path} line 8"]


def test_fer_corrupt_pixels_and_label_outside_classes(tmp_path):
    path = tmp_path / "fer.csv"
    write_fer(path)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(" ", " x", 1)
    path.write_text("\n".join(lines))
    with pytest.raises(UserError, match=r"fer.csv line 3: a value that is not a number, expected 16"):
        load_source(f"csv:{path}")
    lines[2] = "9" + lines[2][1:].replace(" x", " ", 1)
    path.write_text("\n".join(lines))
    with pytest.raises(UserError, match=r"fer.csv line 3: column 'emotion': '9' is not one of the classes"):
        load_source(f"csv:{path}")
    data = load_source(f"csv:{path}", {"skip_bad": True})
    assert len(data) == 6 and data.groups["train"].tolist() == [0, 1, 4]


def test_fer_wrong_pixel_count_with_shape_option(tmp_path):
    write_fer(tmp_path / "fer.csv")
    with pytest.raises(UserError, match=r"fer.csv line 2: 16 pixel values, expected 9"):
        load_source(f"csv:{tmp_path / 'fer.csv'}", {"shape": [3, 3]})


def test_pixel_columns_layout_with_header(tmp_path):
    x = RNG.integers(0, 256, (5, 9))
    header = "label," + ",".join(f"pixel{i}" for i in range(9))
    body = "\n".join(f"{i % 2}," + ",".join(map(str, row)) for i, row in enumerate(x))
    (tmp_path / "train.csv").write_text(header + "\n" + body + "\n")
    data = load_source(f"csv:{tmp_path / 'train.csv'}")
    assert data.images.shape == (5, 1, 3, 3) and data.targets["label"].tolist() == [0, 1, 0, 1, 0]
    np.testing.assert_array_equal(data.images.reshape(5, 9).numpy(), x)
    unlabeled = load_source(f"csv:{tmp_path / 'train.csv'}", {"label_column": None, "shape": [1, 10]})
    assert unlabeled.targets == {} and unlabeled.images.shape == (5, 1, 1, 10)


def test_pixel_columns_without_header_float_values_rgb_and_last_label(tmp_path):
    x = RNG.random((4, 12))
    body = "\n".join(",".join(f"{v:.5f}" for v in row) + f",{i}" for i, row in enumerate(x))
    (tmp_path / "d.csv").write_text(body + "\n")
    data = load_source(f"csv:{tmp_path / 'd.csv'}", {"label_column": "12", "shape": [2, 2, 3]})
    assert data.images.dtype == torch.float32 and data.images.shape == (4, 3, 2, 2)
    np.testing.assert_allclose(data.images.permute(0, 2, 3, 1).reshape(4, 12).numpy(), x, atol=1e-5)
    assert data.targets["label"].tolist() == [0, 1, 2, 3]


def test_pixel_columns_short_row_and_non_square(tmp_path):
    (tmp_path / "d.csv").write_text("label,a,b,c,d\n0,1,2,3,4\n1,1,2,3\n")
    with pytest.raises(UserError, match=r"d.csv line 3: 3 pixel values, expected 4"):
        load_source(f"csv:{tmp_path / 'd.csv'}")
    (tmp_path / "e.csv").write_text("label,a,b,c,d,e\n0,1,2,3,4,5\n")
    with pytest.raises(UserError, match="5 pixels per row is not a square image; set option shape"):
        load_source(f"csv:{tmp_path / 'e.csv'}")


def test_parse_cells_whole_numbers_floats_and_errors():
    parsed = parse_cells(["1 22 255", "0 7", "", "0.5 2", "1 x 2"], " ")
    assert [None if p is None else p.tolist() for p in parsed] == [[1, 22, 255], [0, 7], [], [0.5, 2], None]
    assert parsed[0].dtype == np.int32 and parsed[3].dtype == np.float64
    rows, keep = pixel_rows(["1,2", "3,4", "5"], ",", None, "f.csv", [2, 3, 4], BadItems(skip_bad=True))
    assert rows[keep].tolist() == [[1, 2], [3, 4]] and keep.tolist() == [True, True, False]


# ---------------------------------------------------------------- labeled


@pytest.fixture
def labeled_dir(tmp_path):
    """imgs/ with 6 gray PNGs and labels.csv beside it: A ints, B words, C floats."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    rows = ["file,A,B,C"]
    for i in range(6):
        Image.fromarray(RNG.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"im{i}.png")
        rows.append(f"im{i}.png,{i % 3},{'yes' if i % 2 else 'no'},{i / 7:.4f}")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "extra.png")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_labeled_infers_kinds_per_column(labeled_dir):
    data = load_source(f"labeled:{labeled_dir}")
    assert data.images.shape == (6, 1, 8, 8) and set(data.targets) == {"A", "B", "C"}
    assert data.info["A"].classes == ("0", "1", "2") and data.targets["A"].tolist() == [0, 1, 2, 0, 1, 2]
    assert data.info["B"].classes == ("no", "yes") and data.targets["B"].tolist() == [0, 1, 0, 1, 0, 1]
    assert data.info["C"].kind == "regression" and data.targets["C"].dtype == torch.float32
    assert data.meta["unlisted"] == 1


def test_labeled_declared_kinds_classes_and_target_subset(labeled_dir):
    data = load_source(
        f"labeled:{labeled_dir}",
        {"targets": ["A", "B"], "kinds": {"A": "regression"}, "classes": {"B": ["yes", "no"]}, "size": 4},
    )
    assert set(data.targets) == {"A", "B"} and data.info["A"].kind == "regression"
    assert data.targets["B"].tolist() == [1, 0, 1, 0, 1, 0] and data.images.shape == (6, 1, 4, 4)
    with pytest.raises(UserError, match="option targets: .*labels.csv has no column 'D'"):
        load_source(f"labeled:{labeled_dir}", {"targets": ["D"]})


def test_labeled_bad_rows_name_file_and_line(labeled_dir):
    csv_path = labeled_dir.parent / "labels.csv"
    lines = csv_path.read_text().splitlines()
    lines[3] = lines[3].replace(",0.", ",oops0.")  # C not a number
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"labels.csv line 4: column 'C': 'oops0.*' is not a number"):
        load_source(f"labeled:{labeled_dir}", {"kinds": {"C": "regression"}})
    with pytest.raises(UserError, match=r"labels.csv line 2: column 'A': '0' is not one of the classes"):
        load_source(f"labeled:{labeled_dir}", {"classes": {"A": ["1", "2"]}, "kinds": {"C": "regression"}})


def test_labeled_missing_or_corrupt_image_is_named(labeled_dir):
    (labeled_dir / "im2.png").write_bytes(b"broken")
    (labeled_dir / "im4.png").unlink()
    with pytest.raises(UserError, match=r"im2.png \(labels.csv line 4\): not a readable image"):
        load_source(f"labeled:{labeled_dir}")
    data = load_source(f"labeled:{labeled_dir}", {"skip_bad": True})
    assert len(data) == 4 and data.meta["skipped"] == 2 and data.targets["A"].tolist() == [0, 1, 0, 2]


def test_labeled_missing_labels_file(tmp_path):
    with pytest.raises(UserError, match="no labels file; looked for"):
        load_source(f"labeled:{tmp_path}")
