"""validate_frame: every loader error names its column and row; RouterBench's shape is accepted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from router.data.table import DataValidationError, validate_frame


def test_valid_frame_gives_pool_and_float_arrays(frame):
    table = validate_frame(frame, "tiny")
    assert table.models == ("cheap", "strong")
    assert table.quality.shape == table.cost.shape == (6, 2)
    assert table.quality.dtype == table.cost.dtype == np.float64
    assert table.prompts[0] == "prompt number 0"


def test_validate_does_not_mutate_input(frame):
    before = frame.copy()
    validate_frame(frame)
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize("column", ["sample_id", "prompt", "eval_name"])
def test_missing_required_column(frame, column):
    with pytest.raises(DataValidationError, match=f"missing required column '{column}'"):
        validate_frame(frame.drop(columns=[column]))


def test_missing_cost_column_names_the_model(frame):
    with pytest.raises(DataValidationError, match=r"column 'strong' looks like a model's quality but has no 'strong\|total_cost'"):
        validate_frame(frame.drop(columns=["strong|total_cost"]))


def test_missing_cost_column_detected_even_with_a_nan_score(frame):
    frame = frame.drop(columns=["strong|total_cost"])
    frame.loc[2, "strong"] = np.nan
    with pytest.raises(DataValidationError, match="column 'strong' looks like a model's quality"):
        validate_frame(frame)


def test_cost_column_without_quality_column(frame):
    with pytest.raises(DataValidationError, match=r"cost column 'strong\|total_cost' has no quality column 'strong'"):
        validate_frame(frame.drop(columns=["strong"]))


def test_no_models_at_all(frame):
    with pytest.raises(DataValidationError, match="no model columns"):
        validate_frame(frame[["sample_id", "prompt", "eval_name"]])


def test_empty_table(frame):
    with pytest.raises(DataValidationError, match="no rows"):
        validate_frame(frame.iloc[:0])


@pytest.mark.parametrize("bad", [1.5, -0.1])
def test_quality_outside_unit_interval(frame, bad):
    frame.loc[3, "strong"] = bad
    with pytest.raises(DataValidationError) as err:
        validate_frame(frame)
    msg = str(err.value)
    assert "column 'strong'" in msg and "quality outside [0, 1]" in msg
    assert "row 3 (sample_id='id3')" in msg and repr(bad) in msg


@pytest.mark.parametrize("column", ["cheap", "cheap|total_cost"])
def test_nan_names_column_and_row(frame, column):
    frame.loc[4, column] = np.nan
    with pytest.raises(DataValidationError) as err:
        validate_frame(frame)
    msg = str(err.value)
    assert f"column {column!r}" in msg and "NaN" in msg and "row 4 (sample_id='id4')" in msg
    assert "--drop-incomplete" in msg  # the way out is named


def test_infinite_cost_is_rejected(frame):
    frame.loc[1, "cheap|total_cost"] = np.inf
    with pytest.raises(DataValidationError, match=r"column 'cheap\|total_cost': NaN or infinite value inf at row 1"):
        validate_frame(frame)


def test_negative_cost(frame):
    frame.loc[5, "strong|total_cost"] = -0.01
    with pytest.raises(DataValidationError, match=r"column 'strong\|total_cost': negative cost \(-0.01\) at row 5 \(sample_id='id5'\)"):
        validate_frame(frame)


def test_non_numeric_score(frame):
    frame["cheap"] = frame["cheap"].astype(object)
    frame.loc[2, "cheap"] = "correct"
    with pytest.raises(DataValidationError, match=r"column 'cheap': non-numeric value 'correct' at row 2 \(sample_id='id2'\)"):
        validate_frame(frame)


def test_duplicate_sample_id_names_both_rows(frame):
    frame.loc[4, "sample_id"] = "id1"
    with pytest.raises(DataValidationError, match=r"column 'sample_id': duplicate value at row 4 \(sample_id='id1'\) \(first seen at row 1\)"):
        validate_frame(frame)


def test_missing_sample_id(frame):
    frame.loc[2, "sample_id"] = None
    with pytest.raises(DataValidationError, match="column 'sample_id': missing value at row 2"):
        validate_frame(frame)


@pytest.mark.parametrize("prompt", ["", "   ", None, np.nan])
def test_empty_prompt(frame, prompt):
    frame["prompt"] = frame["prompt"].astype(object)
    frame.loc[3, "prompt"] = prompt
    with pytest.raises(DataValidationError, match=r"column 'prompt': empty or missing prompt at row 3 \(sample_id='id3'\)"):
        validate_frame(frame)


def test_missing_eval_name(frame):
    frame.loc[0, "eval_name"] = None
    with pytest.raises(DataValidationError, match=r"column 'eval_name': missing value at row 0"):
        validate_frame(frame)


def test_bad_split_value(frame):
    frame["split"] = ["train", "test", "train", "holdout", "train", "test"]
    with pytest.raises(DataValidationError, match=r"column 'split': value 'holdout' at row 3"):
        validate_frame(frame)


def test_duplicate_column_name(frame):
    doubled = pd.concat([frame, frame[["cheap"]]], axis=1)
    with pytest.raises(DataValidationError, match="column 'cheap' appears more than once"):
        validate_frame(doubled)


def test_drop_incomplete_drops_only_missing_cells(frame):
    frame.loc[1, "cheap"] = np.nan
    frame.loc[4, "strong|total_cost"] = np.nan
    table = validate_frame(frame, drop_incomplete=True)
    assert table.sample_ids.tolist() == ["id0", "id2", "id3", "id5"]
    assert not np.isnan(table.quality).any() and not np.isnan(table.cost).any()
    # Everything else is still checked.
    frame.loc[0, "strong"] = 2.0
    with pytest.raises(DataValidationError, match="quality outside"):
        validate_frame(frame, drop_incomplete=True)


def test_drop_incomplete_keeps_rejecting_text(frame):
    frame["cheap"] = frame["cheap"].astype(object)
    frame.loc[2, "cheap"] = "oops"
    with pytest.raises(DataValidationError, match="non-numeric value 'oops'"):
        validate_frame(frame, drop_incomplete=True)


def test_routerbench_shape_object_scores_responses_and_oracle_column(rb_frame):
    assert rb_frame["gpt-4-1106-preview"].dtype == object
    table = validate_frame(rb_frame, "rb")
    assert table.models == ("gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat")
    assert table.quality.dtype == np.float64 and table.frame["gpt-4-1106-preview"].dtype == np.float64
    assert table.quality[:, 0].tolist() == [0.0, 1.0] * 4
    assert "gpt-4-1106-preview|model_response" in table.frame.columns
    assert "oracle_model_to_route_to" in table.frame.columns
    # Dropping a model drops its response column too.
    sub = table.with_models(["gpt-4-1106-preview"])
    assert "mistralai/mixtral-8x7b-chat|model_response" not in sub.frame.columns


def test_multi_turn_prompt_lists_become_one_text(frame):
    frame["prompt"] = frame["prompt"].astype(object)
    frame.at[0, "prompt"] = ["first turn", "second turn"]
    assert validate_frame(frame).prompts[0] == "first turn\n\nsecond turn"


def test_text_spellings_of_missing_count_as_nan(frame):
    frame["cheap"] = frame["cheap"].astype(object)
    frame.loc[1, "cheap"] = "NaN"
    with pytest.raises(DataValidationError, match=r"column 'cheap': NaN or infinite value 'NaN' at row 1"):
        validate_frame(frame)
    assert len(validate_frame(frame, drop_incomplete=True)) == 5
