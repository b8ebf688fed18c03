"""Published size thresholds beside a measured lesion: ACR TI-RADS for thyroid nodules, size categories for
polyps; information only, and nothing without millimetres."""

from __future__ import annotations

import pytest

from vivim_studio.document.size_information import (polyp_size_information, size_information,
                                                    thyroid_size_information)


def reached(long_axis_mm: float) -> dict[str, str]:
    return {level["level"]: level["this_size"] for level in thyroid_size_information(long_axis_mm)["levels"]}


@pytest.mark.parametrize("mm, fna, follow", [
    (4.9, [], []), (5.0, [], ["TR5"]), (10.0, ["TR5"], ["TR4"]), (14.9, ["TR5"], ["TR4"]),
    (15.0, ["TR5", "TR4"], ["TR3"]), (24.9, ["TR5", "TR4"], ["TR3"]), (25.0, ["TR5", "TR4", "TR3"], [])])
def test_tirads_thresholds_in_cm(mm, fna, follow):
    levels = reached(mm)
    assert sorted(k for k, v in levels.items() if v.startswith("at or above the FNA")) == sorted(fna)
    assert sorted(k for k, v in levels.items() if v.startswith("at or above the follow-up")) == sorted(follow)
    assert levels["TR1"] == levels["TR2"] == "no FNA or follow-up at any size"


def test_tirads_information_says_what_it_is_not():
    info = thyroid_size_information(17.0)
    assert info["long_axis_cm"] == 1.7 and "not a diagnosis" in info["note"] and "does not assess" in info["note"]
    assert "20 %" in info["growth"] and "2 mm" in info["growth"]


@pytest.mark.parametrize("mm, category", [(4.4, "diminutive"), (5.4, "diminutive"), (5.5, "small"), (9.4, "small"),
                                          (9.5, "large (10 to 19"), (19.4, "large (10 to 19"),
                                          (19.5, "large (20 mm or more)")])
def test_polyp_size_categories_on_the_rounded_millimetre(mm, category):
    info = polyp_size_information(mm)
    assert info["category"].startswith(category) and "not a diagnosis" in info["note"]


def test_no_size_no_task_no_information():
    assert size_information("thyroid", None) is None and size_information(None, 12.0) is None
    with pytest.raises(ValueError):
        size_information("liver", 12.0)
