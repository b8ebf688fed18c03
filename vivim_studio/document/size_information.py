"""Published size thresholds set beside a measured lesion, as information for the clinician: never a diagnosis.

    thyroid_size_information(17.0)   # ACR TI-RADS: which levels' size thresholds a 17 mm long axis reaches
    polyp_size_information(7.2)      # size category of a colorectal polyp: "small (6-9 mm)"

Both take the long axis (maximum diameter) in millimetres, which only a calibration gives: an uncalibrated
lesion has no size information at all.

ACR TI-RADS (Tessler et al., J Am Coll Radiol 2017) recommends fine-needle aspiration (FNA) or follow-up from a
size that depends on the TI-RADS level, and the level depends on the nodule's composition, echogenicity, shape,
margin and echogenic foci, which Vivim Studio does not assess. So every level's thresholds are listed.
"""

from __future__ import annotations

from typing import Any

NOT_A_DIAGNOSIS = "Information, not a diagnosis: a clinician decides."

# level: (FNA from cm, follow-up from cm); None: no FNA or follow-up at any size
TIRADS_THRESHOLDS_CM: dict[str, tuple[float | None, float | None]] = {
    "TR1": (None, None), "TR2": (None, None), "TR3": (2.5, 1.5), "TR4": (1.5, 1.0), "TR5": (1.0, 0.5)}
TIRADS_GROWTH = ("significant growth: an increase of at least 20 % in at least two dimensions, with a minimal "
                 "increase of 2 mm, or of at least 50 % in volume")

POLYP_CATEGORIES_MM = ((5, "diminutive (5 mm or less)"), (9, "small (6 to 9 mm)"), (19, "large (10 to 19 mm)"),
                       (None, "large (20 mm or more)"))


def thyroid_size_information(long_axis_mm: float) -> dict[str, Any]:
    """ACR TI-RADS size thresholds against a nodule's long axis (mm): for each level, whether the size reaches
    its FNA or follow-up threshold."""
    cm = long_axis_mm / 10.0
    levels = []
    for level, (fna, follow) in TIRADS_THRESHOLDS_CM.items():
        if fna is None:
            reached = "no FNA or follow-up at any size"
        elif cm >= fna:
            reached = f"at or above the FNA threshold ({fna:g} cm)"
        elif cm >= follow:
            reached = f"at or above the follow-up threshold ({follow:g} cm), below FNA ({fna:g} cm)"
        else:
            reached = f"below the follow-up threshold ({follow:g} cm)"
        levels.append({"level": level, "fna_from_cm": fna, "follow_up_from_cm": follow, "this_size": reached})
    return {"guideline": "ACR TI-RADS 2017, size thresholds (maximum diameter)", "long_axis_cm": round(cm, 2),
            "levels": levels, "growth": TIRADS_GROWTH,
            "note": "The TI-RADS level depends on the nodule's composition, echogenicity, shape, margin and "
                    "echogenic foci, which Vivim Studio does not assess. " + NOT_A_DIAGNOSIS}


def polyp_size_information(long_axis_mm: float) -> dict[str, Any]:
    """The size category of a colorectal polyp from its long axis (mm), rounded to the millimetre first."""
    rounded = int(long_axis_mm + 0.5)
    category = next(name for limit, name in POLYP_CATEGORIES_MM if limit is None or rounded <= limit)
    return {"guideline": "polyp size categories (diminutive 5 mm or less, small 6 to 9 mm, large 10 mm or more)",
            "long_axis_mm_rounded": rounded, "category": category, "note": NOT_A_DIAGNOSIS}


def size_information(task: str | None, long_axis_mm: float | None) -> dict[str, Any] | None:
    """The thresholds of `task` ("thyroid" | "polyp") for a long axis in mm; None without a task or a size."""
    if long_axis_mm is None or task is None:
        return None
    if task == "thyroid":
        return thyroid_size_information(long_axis_mm)
    if task == "polyp":
        return polyp_size_information(long_axis_mm)
    raise ValueError(f"unknown task {task!r}; expected thyroid or polyp")
