"""The command lines of `vivim-studio` (argparse only, so `--help` is instant): the GUI's and the headless
verbs'. `cli.main` routes a verb to its runner and anything else to the GUI (`qt.app.run_gui`); both import
their parser from here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import __version__

VERBS = ("export", "propose", "import", "report")
PROG = "vivim-studio"


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (H, W)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
        if width > 0 and height > 0:
            return height, width
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 256x256, got {text!r}")


def parse_threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"threshold must be a number between 0 and 1, got {text!r}")
    return value


def parse_pixel_spacing(text: str) -> float:
    """A square pixel's size in mm, as the calibration module accepts it."""
    from .document.calibration import MAX_MM, MIN_MM

    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not MIN_MM <= value <= MAX_MM:
        raise argparse.ArgumentTypeError(f"a pixel's size in mm between {MIN_MM:g} and {MAX_MM:g}, e.g. 0.08; got "
                                         f"{text!r}")
    return value


PIXEL_SPACING_HELP = ("the size of a (square) pixel in mm, for a video whose file states none (or to replace what it "
                      "states); without any calibration lengths are in pixels, marked uncalibrated")


def build_export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} export", description="Export a workspace's masks (read-only: the workspace is not changed). "
        "VTUS layout by default: OUT/<Split>/<video_id>/NNNN.jpg and OUT/<Split>_GT/<video_id>/NNNN.png, ready for "
        "`vivim-core finetune --data OUT`. Only the frames a human edited or accepted are exported unless "
        "--include-unreviewed-proposals is given. A manifest with provenance (per frame: status, origin) goes to "
        "OUT/manifests/. OUT must be apart from the video, its dataset and its workspace.")
    parser.add_argument("workspace", type=Path, metavar="WORKSPACE",
                        help="a workspace folder (<video>.vivim), or a video whose default workspace to export")
    parser.add_argument("--format", choices=("vtus", "png", "nifti", "dicom-seg"), default="vtus",
                        help="vtus: frames + masks (default); png: masks only; nifti: one H x W x T volume .nii.gz; "
                             "dicom-seg: a DICOM Segmentation of a DICOM cine, one segment per lesion (it carries the "
                             "source's patient and study identifiers, so that viewers link it to its images)")
    parser.add_argument("--lesions", choices=("union", "labels", "separate"),
                        help="how lesions are written: union (every lesion 255: the vtus default, what training "
                             "reads), labels (each pixel's lesion id: the png and nifti default) or separate (the "
                             "union plus a folder lesion<k>/ per lesion inside the masks folder; vtus and png)")
    parser.add_argument("--out", type=Path, required=True, help="output root folder (created, or added to)")
    parser.add_argument("--split", default="Train", help="VTUS split folder name (default Train)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--only-reviewed", action="store_true",
                       help="export the frames a human edited or accepted (the default: only those are ground truth)")
    which.add_argument("--only-accepted", action="store_true", help="export only frames a human accepted")
    which.add_argument("--include-unreviewed-proposals", action="store_true",
                       help="export EVERY frame, including the model's proposals nobody reviewed (not ground truth: "
                            "training on them teaches the model its own mistakes); the manifest lists which frames "
                            "were reviewed")
    parser.add_argument("--size", type=parse_size, metavar="WxH", help="resize frames and masks (default: native size)")
    parser.add_argument("--video-id", help="name of the video in the export, a plain folder name (default: the "
                                           "video's name; with another video's export of that name in --out, the "
                                           "name and a short hash of the video)")
    parser.add_argument("--source", type=Path, help="where the video is, if it moved since the workspace was made")
    parser.add_argument("--pixel-spacing", type=parse_pixel_spacing, metavar="MM",
                        help="NIfTI only: " + PIXEL_SPACING_HELP)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    return parser


def build_report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} report", description="Measure every lesion on every reviewed frame (area, long axis = maximum "
        "Feret diameter, short axis = longest chord perpendicular to it) and write OUT/measurements.csv, "
        "OUT/summary.json (per lesion, the frame with the largest long axis) and OUT/report.png. Millimetres only "
        "where a calibration backs them (the DICOM file's Pixel Spacing or ultrasound regions, a line drawn in the "
        "Studio, or --pixel-spacing); otherwise pixels, marked uncalibrated. Information, not a diagnosis. The "
        "workspace is not changed; OUT must be apart from the video, its dataset and its workspace.")
    parser.add_argument("workspace", type=Path, metavar="VIDEO_OR_WORKSPACE",
                        help="a workspace folder (<video>.vivim), or a video whose default workspace to measure")
    parser.add_argument("--out", type=Path, required=True, help="folder for the report (created; an earlier report "
                                                                "of the same video in it is replaced)")
    parser.add_argument("--pixel-spacing", type=parse_pixel_spacing, metavar="MM", help=PIXEL_SPACING_HELP)
    parser.add_argument("--task", choices=("thyroid", "polyp"),
                        help="show the size thresholds of the task beside each lesion, as information: thyroid: ACR "
                             "TI-RADS (FNA and follow-up sizes of each level); polyp: size category")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--only-accepted", action="store_true", help="measure only frames a human accepted")
    which.add_argument("--include-unreviewed-proposals", action="store_true",
                       help="measure EVERY frame, including the model's proposals nobody reviewed (their status is "
                            "in the table)")
    parser.add_argument("--source", type=Path, help="where the video is, if it moved since the workspace was made")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    return parser


def build_propose_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} propose", description="Propose masks for each video with the model and save them in its "
        "workspace (created beside the video, or resumed) as 'proposed' frames; frames a human edited or accepted "
        "are never overwritten. Masks equal `vivim-core predict` at the same threshold.")
    parser.add_argument("inputs", type=Path, nargs="+", metavar="INPUT",
                        help="video files, DICOM cine files, frame folders, VTUS case folders, or folders of these")
    parser.add_argument("--checkpoint", type=Path,
                        help="Vivim .safetensors checkpoint (default: for each video, the model adapted to it in its "
                             "workspace when it has one, else the bundled one)")
    parser.add_argument("--replace-adapted-proposals", action="store_true",
                        help="let --checkpoint replace proposals made by the model adapted to a video (refused "
                             "otherwise)")
    parser.add_argument("--task", choices=("thyroid", "polyp"), help="which bundled checkpoint to use by default")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default: cuda if usable")
    parser.add_argument("--threshold", type=parse_threshold,
                        help="probability threshold for the masks (default 0.5, or the workspace's own)")
    parser.add_argument("--workspace-root", type=Path, metavar="DIR",
                        help="put workspaces in DIR/<video_id>.vivim instead of beside each video (e.g. for "
                             "read-only media)")
    parser.add_argument("--size", type=parse_size, default=None, metavar="WxH",
                        help="frame size the model sees (default: the size the checkpoint was trained at, else "
                             "256x256, as vivim-core predict)")
    parser.add_argument("--batch-size", type=int, default=4, help="clips per forward pass (default 4)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    return parser


def build_import_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} import", description="Bring masks a site already has into a video's workspace (created "
        "beside the video, or resumed): a folder of PNG masks (binary or label maps, named like the video's frames "
        "or by 1-based frame number, e.g. a VTUS _GT case folder; lesion<k>/ sub-folders give lesion k), or a NIfTI "
        "volume (H x W x frames, values the lesion ids). Every file is checked (size, frame number, values) before "
        "anything is written. Imported frames become human frames with provenance imported:<file>; a frame a human "
        "edited or accepted is kept unless --replace-reviewed.")
    parser.add_argument("target", type=Path, metavar="VIDEO_OR_WORKSPACE",
                        help="a workspace folder (<video>.vivim), or a video whose workspace to import into")
    parser.add_argument("--masks", type=Path, required=True, metavar="PATH",
                        help="a folder of PNG masks or a NIfTI volume (.nii, .nii.gz)")
    parser.add_argument("--status", choices=("edited", "accepted"), default="edited",
                        help="status of the imported frames (default edited: reviewed work; accepted: confirmed)")
    parser.add_argument("--replace-reviewed", action="store_true",
                        help="let imported masks replace frames a human edited or accepted (kept otherwise)")
    parser.add_argument("--workspace", type=Path, help="workspace folder of VIDEO (default: <video>.vivim beside it)")
    parser.add_argument("--source", type=Path, help="where the video is, if it moved since the workspace was made")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    return parser


def build_gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Vivim Studio: review and correct Vivim's mask proposals for medical videos. "
        f"Headless commands: {PROG} export --help, {PROG} propose --help, {PROG} import --help, "
        f"{PROG} report --help.")
    parser.add_argument("video", nargs="?", type=Path, metavar="VIDEO",
                        help="video file, frame folder, VTUS case folder or DICOM cine file to open")
    parser.add_argument("--demo", action="store_true", help="open the demo video")
    parser.add_argument("--checkpoint", type=Path, help="Vivim checkpoint for proposals")
    parser.add_argument("--workspace", type=Path, help="workspace folder (default: <video>.vivim beside it)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--task", choices=("thyroid", "polyp"),
                        help="thyroid ultrasound or polyp endoscopy: picks the bundled default checkpoint and the "
                             "demo video (default thyroid for --demo)")
    parser.add_argument("--screenshot", type=Path, metavar="FILE",
                        help="save a PNG of the main window once the view has settled (after the proposals, when "
                             "started) and exit: a headless smoke test (renders off screen when there is no display)")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser
