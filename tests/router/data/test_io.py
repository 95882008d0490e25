"""Readers: pickle, Parquet, CSV and JSONL round trips; bundled names; unreadable files."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from router.data.io import load_table, read_frame, resolve_path
from router.data.table import DataValidationError

WRITERS = {
    "pkl": lambda f, p: f.to_pickle(p),
    "parquet": lambda f, p: f.to_parquet(p, index=False),
    "csv": lambda f, p: f.to_csv(p, index=False),
    "jsonl": lambda f, p: f.to_json(p, orient="records", lines=True),
    "json": lambda f, p: f.to_json(p, orient="records"),
}


def awkward_frame(make_frame) -> pd.DataFrame:
    """Text that type inference likes to mangle: leading zeros, "NA", a date, a comma and quotes."""
    frame = make_frame(4)
    frame["sample_id"] = ["007", "1e3", "NA", "x,y"]
    frame["prompt"] = ["2024-01-01", "NA", 'say "hi", then\nstop', "null"]
    frame["split"] = ["train", "train", "test", "test"]
    return frame


@pytest.mark.parametrize("ext", sorted(WRITERS))
def test_round_trip(tmp_path, ext, make_frame):
    frame = awkward_frame(make_frame)
    path = tmp_path / f"table.{ext}"
    WRITERS[ext](frame, path)
    table = load_table(path)
    assert table.name == "table"
    assert table.models == ("cheap", "strong")
    assert table.sample_ids.tolist() == frame["sample_id"].tolist()
    assert table.prompts == frame["prompt"].tolist()
    assert table.eval_names.tolist() == frame["eval_name"].tolist()
    assert table.frame["split"].tolist() == frame["split"].tolist()
    np.testing.assert_allclose(table.quality, frame[["cheap", "strong"]].to_numpy())
    np.testing.assert_allclose(table.cost, frame[["cheap|total_cost", "strong|total_cost"]].to_numpy())


def test_routerbench_pickle_with_object_scores(tmp_path, rb_frame):
    path = tmp_path / "routerbench_0shot.pkl"
    rb_frame.to_pickle(path)
    table = load_table(path)
    assert table.name == "routerbench_0shot"
    assert len(table.models) == 2 and table.quality.dtype == np.float64


def test_csv_empty_cell_is_nan_and_named(tmp_path, make_frame):
    frame = make_frame()
    frame.loc[2, "strong"] = np.nan
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataValidationError, match=r"column 'strong': NaN .* at row 2"):
        load_table(tmp_path / "t.csv")
    assert len(load_table(tmp_path / "t.csv", drop_incomplete=True)) == 5


def test_bundled_names_resolve():
    assert resolve_path("dcrouter").name == "dcrouter.parquet"
    assert resolve_path("routellm").name == "routellm.parquet"


@pytest.mark.parametrize("name, rows, models", [("dcrouter", 5608, 9), ("routellm", 15361, 2)])
def test_bundled_datasets_load(name, rows, models):
    table = load_table(name)
    assert (len(table), len(table.models), table.name) == (rows, models, name)


def test_missing_file_lists_bundled_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such data file.*dcrouter, routellm"):
        load_table(tmp_path / "nope.parquet")


def test_unsupported_extension(tmp_path):
    path = tmp_path / "table.xlsx"
    path.write_bytes(b"whatever")
    with pytest.raises(DataValidationError, match=r"unsupported file type '.xlsx'"):
        load_table(path)


@pytest.mark.parametrize("ext", ["pkl", "parquet", "csv", "jsonl"])
def test_corrupt_file_is_a_data_error(tmp_path, ext):
    path = tmp_path / f"broken.{ext}"
    path.write_bytes(b"\x00\x01 not a table \xff" if ext != "csv" else b"")
    with pytest.raises(DataValidationError, match=f"broken.{ext}: cannot be read"):
        read_frame(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path, make_frame):
    path = tmp_path / "secret.parquet"
    make_frame().to_parquet(path)
    path.chmod(0)
    try:
        with pytest.raises(DataValidationError, match="secret.parquet: cannot be read"):
            load_table(path)
    finally:
        path.chmod(0o600)


def test_pickle_of_something_else(tmp_path):
    path = tmp_path / "list.pkl"
    pd.to_pickle([1, 2, 3], path)
    with pytest.raises(DataValidationError, match="holds a list, not a table"):
        load_table(path)


def test_directory_instead_of_file(tmp_path):
    (tmp_path / "table.csv").mkdir()
    with pytest.raises(DataValidationError, match="table.csv: cannot be read"):
        load_table(tmp_path / "table.csv")


def test_permission_error_is_a_data_error(tmp_path, make_frame, monkeypatch):
    """The same as test_unreadable_file, also when the tests run as root (who can read anything)."""
    from router.data import io

    path = tmp_path / "locked.parquet"
    make_frame().to_parquet(path)

    def denied(p):
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setitem(io.READERS, ".parquet", denied)
    with pytest.raises(DataValidationError, match="locked.parquet: cannot be read as .parquet: .*Permission denied"):
        load_table(path)
