"""`vivim-core evaluate`: table, JSON, errors without traceback, and a --help that explains every flag."""

from __future__ import annotations

import json
import shutil

import numpy as np

from vivim_core.cli import build_parser, main
from vivim_core.data.readers import write_mask
from vivim_core.data.synthetic import write_vtus_dataset


def _folders(tmp_path):
    gt = write_vtus_dataset(tmp_path / "vtus", num_videos=2, frames_per_video=3, size=(16, 16)) / "Train_GT"
    pred = shutil.copytree(gt, tmp_path / "pred")
    return pred, gt


def test_evaluate_prints_a_table_and_writes_json(tmp_path, capsys):
    pred, gt = _folders(tmp_path)
    out = tmp_path / "reports" / "scores.json"
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--json", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "Dice" in text and "0001" in text and "overall" in text and "mean over videos" in text
    result = json.loads(out.read_text())
    assert result["protocol"] == "vtus" and result["overall"]["dice"] == 1.0
    assert set(result["videos"]) == {"0001", "0002"}

    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--protocol", "vps", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "maxDice" in text and "S-alpha" in text and "used" in text
    assert len(json.loads(out.read_text())["curves"]["dice"]) == 256


def test_evaluate_error_names_the_file_without_traceback(tmp_path, capsys):
    pred, gt = _folders(tmp_path)
    write_mask(pred / "0001" / "0002.png", np.zeros((8, 8), bool))
    assert main(["evaluate", "--pred", str(pred), "--gt", str(gt), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "vivim-core evaluate: error:" in err and "0002.png" in err and "Traceback" not in err


def test_help_explains_every_flag():
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["evaluate"]
    text = sub.format_help()
    for action in sub._actions:
        assert action.help, f"flag {action.option_strings} has no help"
    for word in ("--pred", "--gt", "--protocol", "--json", "--per-frame", "vtus", "vps", "examples"):
        assert word in text
