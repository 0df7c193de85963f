"""What the evaluator accepts: segments that cannot be scored, the messages it prints, and
ground-truth files as other tools write them."""

from __future__ import annotations

import json

import pytest

from tsp_pretrain.evaluation.errors import EvaluationError
from tsp_pretrain.localization import (
    prepare_both,
    read_ground_truth,
    read_predictions,
    tiou_thresholds,
)
from tsp_pretrain.localization.score import main as score_main

ANET = tiou_thresholds("activitynet")


def write(path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def anet_gt(*annotations, taxonomy=None) -> dict:
    """An ActivityNet JSON with one validation video holding ``annotations``."""
    doc = {
        "version": "VERSION 1.3",
        "database": {
            "vid1": {"subset": "validation", "duration": 60.0, "annotations": list(annotations)},
            "vid2": {
                "subset": "validation",
                "duration": 30.0,
                "annotations": [{"segment": [1.0, 5.0], "label": "Long jump"}],
            },
        },
    }
    if taxonomy is not None:
        doc["taxonomy"] = taxonomy
    return doc


def results(*entries, video="vid1") -> dict:
    return {"version": "VERSION 1.3", "results": {video: list(entries)}}


# --- segments that cannot be scored ------------------------------------------------------------


def test_reversed_prediction_is_rejected_with_its_entry_and_the_fix(tmp_path):
    path = write(
        tmp_path / "reversed.json",
        results(
            {"label": "Long jump", "score": 0.9, "segment": [10.0, 20.0]},
            {"label": "Long jump", "score": 0.8, "segment": [20.0, 10.0]},
        ),
    )
    with pytest.raises(EvaluationError) as err:
        read_predictions(path)
    message = str(err.value)
    assert "reversed.json:results/vid1/1" in message  # the file and the entry
    assert "ends before it starts" in message and "start <= end" in message  # what and the fix

    csv = tmp_path / "reversed.csv"
    csv.write_text("video-id,t-start,t-end,label,score\nvid1,1.0,2.0,x,0.3\nvid1,5.0,4.0,x,0.2\n")
    with pytest.raises(EvaluationError, match=r"reversed.csv:row 3: .*ends before it starts"):
        read_predictions(csv)


def test_nan_prediction_is_rejected_with_its_entry(tmp_path):
    path = tmp_path / "nan.json"
    path.write_text('{"results": {"vid1": [{"label": "x", "score": NaN, "segment": [1.0, 2.0]}]}}')
    with pytest.raises(EvaluationError, match=r"nan.json:results/vid1/0: NaN or infinite"):
        read_predictions(path)


def test_negative_start_is_scored_as_official_with_a_note(tmp_path):
    truth = read_ground_truth(
        write(tmp_path / "gt.json", anet_gt({"segment": [0.0, 10.0], "label": "Long jump"})),
        "validation",
    )
    path = write(
        tmp_path / "early.json",
        results({"label": "Long jump", "score": 0.9, "segment": [-1.0, 10.0]}),
    )
    table = read_predictions(path)
    assert table["t_start"].tolist() == [-1.0]  # kept as given: tIoU 10 / 11
    detections, _, notes = prepare_both(table, None, truth)
    assert len(detections) == 1
    assert any("start before 0 s" in n and "vid1" in n for n in notes), notes


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ([None, 10.0], "missing \\(null\\), NaN or infinite"),
        ([12.0, 10.0], "ends before it starts"),
    ],
)
def test_ground_truth_that_cannot_be_a_segment_is_rejected(tmp_path, segment, expected):
    path = write(tmp_path / "gt.json", anet_gt({"segment": segment, "label": "Long jump"}))
    with pytest.raises(EvaluationError, match=expected) as err:
        read_ground_truth(path, "validation")
    assert "gt.json:database/vid1/annotations/0" in str(err.value)


def test_ground_truth_nan_in_a_canonical_table_names_the_row(tmp_path):
    folder = tmp_path / "ann"
    folder.mkdir()
    (folder / "videos.csv").write_text(
        "video_id,filename,subset,duration,fps,num_frames\na,a.mp4,validation,30.0,30.0,900\n"
    )
    (folder / "segments.csv").write_text(
        "video_id,t_start,t_end,label,label_id,region\na,1.0,2.0,jump,0,foreground\n"
        "a,5.0,,jump,0,foreground\n"
    )
    (folder / "labels.json").write_text('["jump"]')
    with pytest.raises(EvaluationError, match=r"segments.csv:row 3: ground truth with a missing"):
        read_ground_truth(folder, "validation")


def test_ground_truth_negative_start_is_kept_with_a_note(tmp_path, capsys):
    gt = write(tmp_path / "gt.json", anet_gt({"segment": [-2.0, 10.0], "label": "Long jump"}))
    truth = read_ground_truth(gt, "validation")
    assert truth.segments["t_start"].min() == -2.0
    assert any("start before 0 s" in n for n in truth.notes), truth.notes
    preds = write(
        tmp_path / "p.json", results({"label": "Long jump", "score": 0.9, "segment": [0.0, 10.0]})
    )
    score_main(["--ground-truth", gt, "--predictions", preds])
    assert "note: 1 ground-truth segment(s) with start before 0 s" in capsys.readouterr().out


# --- messages ----------------------------------------------------------------------------------


def test_results_file_without_results_key_says_so(tmp_path):
    path = write(tmp_path / "noresults.json", {"version": "VERSION 1.3", "external_data": {}})
    with pytest.raises(EvaluationError, match=r'noresults.json: the "results" key is missing'):
        read_predictions(path)
    # a bare mapping (ActionFormer's results_to_dict) is still read
    bare = write(tmp_path / "bare.json", {"vid1": [{"label": "x", "score": 1, "segment": [0, 1]}]})
    assert len(read_predictions(bare)) == 1


def _outside_case(tmp_path):
    gt = write(tmp_path / "gt.json", anet_gt({"segment": [10.0, 20.0], "label": "Long jump"}))
    detections = {
        "results": {
            "vid1": [{"label": "Long jump", "score": 0.9, "segment": [10.0, 20.0]}],
            "other": [{"label": "Long jump", "score": 0.95, "segment": [0.0, 5.0]}],
        }
    }
    return gt, write(tmp_path / "det.json", detections)


def test_outside_note_says_what_predictions_change_in_each_metric(tmp_path, capsys):
    gt, det = _outside_case(tmp_path)
    # --proposals: the detections outside are false positives in mAP only; proposals outside
    # the ground truth count in the official AR budget, they are not false positives
    props = write(
        tmp_path / "props.json",
        {
            "results": {
                "vid1": [{"score": 1.0, "segment": [10.0, 20.0]}],
                "elsewhere": [{"score": 1.0, "segment": [0.0, 1.0]}],
            }
        },
    )
    score_main(["--ground-truth", gt, "--predictions", det, "--proposals", props])
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    about_other = [n for n in notes if "['other']" in n]
    about_elsewhere = [n for n in notes if "['elsewhere']" in n]
    assert len(about_other) == 1 and "false positives in mAP" in about_other[0]
    assert "budget" not in about_other[0]  # these detections are not the proposals
    assert len(about_elsewhere) == 1 and "proposal budget" in about_elsewhere[0]
    assert "false positives" not in about_elsewhere[0]
    # without --proposals the same predictions serve both: one note, both effects
    score_main(["--ground-truth", gt, "--predictions", det])
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len([n for n in notes if "['other']" in n]) == 1
    assert any("false positives in mAP and count in the proposal budget" in n for n in notes)


def test_empty_taxonomy_is_no_taxonomy(tmp_path, caplog):
    from tsp_pretrain.annotations import parse_activitynet

    gt = anet_gt({"segment": [10.0, 20.0], "label": "Long jump"}, taxonomy=[])
    raw = parse_activitynet(write(tmp_path / "gt.json", gt))
    assert raw.labels == ["Long jump"]  # the labels used, not the leaves of an empty taxonomy
    assert "empty taxonomy" in caplog.text
    with_taxonomy = anet_gt(
        {"segment": [10.0, 20.0], "label": "Long jump"},
        taxonomy=[
            {"nodeId": 1, "nodeName": "Root", "parentId": None},
            {"nodeId": 2, "nodeName": "Long jump", "parentId": 1},
            {"nodeId": 3, "nodeName": "Archery", "parentId": 1},
        ],
    )
    assert parse_activitynet(write(tmp_path / "t.json", with_taxonomy)).labels == [
        "Archery",
        "Long jump",
    ]


def test_score_command_prints_the_official_ar_unless_asked_otherwise(tmp_path, capsys):
    """vid1 has 1 proposal, vid2 has 9, each recalled by its first: AR@1 is 50% officially,
    100% as the top proposal of every video (which the report then says it is)."""
    gt = write(tmp_path / "gt.json", anet_gt({"segment": [10.0, 20.0], "label": "Long jump"}))
    props = {"vid1": [{"score": 0.9, "segment": [10.0, 20.0]}]}
    props["vid2"] = [{"score": 0.9, "segment": [1.0, 5.0]}] + [
        {"score": 0.5, "segment": [20.0 + i, 21.0 + i]} for i in range(8)
    ]
    path = write(tmp_path / "props.json", {"version": "VERSION 1.3", "results": props})
    score_main(["--ground-truth", gt, "--predictions", path])
    official = capsys.readouterr().out
    assert "proposals: AR@1 50.00," in official
    score_main(["--ground-truth", gt, "--predictions", path, "--ar-scheme", "per-video"])
    assert "proposals (top AN per video): AR@1 100.00," in capsys.readouterr().out
