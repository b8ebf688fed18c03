"""`vivim-studio`: the review app (GUI) and its headless commands.

    vivim-studio [VIDEO] [--demo] ...                       the GUI (any first argument that is not a verb)
    vivim-studio export WORKSPACE --format vtus --out DIR   write the corrected masks for training
    vivim-studio propose INPUT... [--checkpoint CKPT]       pre-annotate videos overnight

Only argparse is imported at module level; the document model, torch and Qt load after parsing, so `--help`
is instant. Errors meant for the user (VivimError) print as one line and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

VERBS = ("export", "propose")
PROG = "vivim-studio"


def _size(text: str) -> tuple[int, int]:
    """'WxH' -> (H, W)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
        if width > 0 and height > 0:
            return height, width
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 256x256, got {text!r}")


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"threshold must be a number between 0 and 1, got {text!r}")
    return value


def build_export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} export", description="Export a workspace's masks (read-only: the workspace is not changed). "
        "VTUS layout by default: OUT/<Split>/<video_id>/NNNN.jpg and OUT/<Split>_GT/<video_id>/NNNN.png, ready for "
        "`vivim-core finetune --data OUT`. A manifest with provenance goes to OUT/manifests/.")
    parser.add_argument("workspace", type=Path, metavar="WORKSPACE",
                        help="a workspace folder (<video>.vivim), or a video whose default workspace to export")
    parser.add_argument("--format", choices=("vtus", "png", "nifti"), default="vtus",
                        help="vtus: frames + masks (default); png: masks only; nifti: one H x W x T volume .nii.gz")
    parser.add_argument("--out", type=Path, required=True, help="output root folder (created, or added to)")
    parser.add_argument("--split", default="Train", help="VTUS split folder name (default Train)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--only-accepted", action="store_true", help="export only frames a human accepted")
    which.add_argument("--only-reviewed", action="store_true", help="export only frames a human edited or accepted")
    parser.add_argument("--size", type=_size, metavar="WxH", help="resize frames and masks (default: native size)")
    parser.add_argument("--video-id", help="name of the video in the export (default: the video's name)")
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
    parser.add_argument("--checkpoint", type=Path, help="Vivim .safetensors checkpoint (default: the bundled one)")
    parser.add_argument("--task", choices=("thyroid", "polyp"), help="which bundled checkpoint to use by default")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default: cuda if usable")
    parser.add_argument("--threshold", type=_threshold, help="probability threshold for the masks (default 0.5, or "
                        "the workspace's own)")
    parser.add_argument("--workspace-root", type=Path, metavar="DIR", help="put workspaces in DIR/<video_id>.vivim instead of "
                        "beside each video (e.g. for read-only media)")
    parser.add_argument("--size", type=_size, default=None, metavar="WxH",
                        help="frame size the model sees (default: the size the checkpoint was trained at, else "
                             "256x256, as vivim-core predict)")
    parser.add_argument("--batch-size", type=int, default=4, help="clips per forward pass (default 4)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    return parser


def build_gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Vivim Studio: review and correct Vivim's mask proposals for medical videos. "
        f"Headless commands: {PROG} export --help, {PROG} propose --help.")
    parser.add_argument("video", nargs="?", type=Path, metavar="VIDEO",
                        help="video file, frame folder, VTUS case folder or DICOM cine file to open")
    parser.add_argument("--demo", action="store_true", help="open the demo video")
    parser.add_argument("--checkpoint", type=Path, help="Vivim checkpoint for proposals")
    parser.add_argument("--workspace", type=Path, help="workspace folder (default: <video>.vivim beside it)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    from . import __version__
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def run_export(args: argparse.Namespace) -> int:
    from .document import VideoDocument
    from .document.export import ExportOptions, export_document
    from .document.workspace_format import WORKSPACE_FILE

    looks_like_workspace = args.workspace.is_dir() and (args.workspace.suffix == ".vivim"
                                                        or (args.workspace / "masks").is_dir())
    if (args.workspace / WORKSPACE_FILE).is_file() or looks_like_workspace:  # (the latter: a damaged one)
        document = VideoDocument.open_workspace(args.workspace, args.source, read_only=True)
    else:
        document = VideoDocument.open(args.source or args.workspace, read_only=True)
    selection = "accepted" if args.only_accepted else "reviewed" if args.only_reviewed else "all"
    options = ExportOptions(format=args.format, split=args.split, selection=selection, size=args.size,
                            video_id=args.video_id)
    from tqdm import tqdm

    with document, tqdm(total=0, desc=f"export {document.source.video_id}", unit="frame", leave=False) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
        result = export_document(document, args.out, options, progress=progress)
    print(f"exported {len(result.frames)} frame(s) of {document.source.name} ({args.format}, {selection}) to "
          + ", ".join(str(p) for p in result.outputs) + f"; manifest {result.manifest_path}")
    return 0


def _workspace_for(source_path: Path, root: Path | None) -> Path | None:
    if root is None:
        return None
    from .document.export import safe_video_id

    return root / f"{safe_video_id(source_path.stem if source_path.is_file() else source_path.name)}.vivim"


def run_propose(args: argparse.Namespace) -> int:
    from vivim_core.errors import VivimError

    from .document import VideoDocument
    from .document.sources import find_inputs
    from .services import InferenceService

    inputs = find_inputs(args.inputs)
    if args.workspace_root is not None:
        targets = [_workspace_for(p, args.workspace_root) for p in inputs]
        clashes = sorted({str(t) for t in targets if targets.count(t) > 1})
        if clashes:
            raise VivimError(f"several inputs would share the workspace(s) {', '.join(clashes)}; propose them in "
                             f"separate runs with different --workspace-root folders")
    service = InferenceService(args.checkpoint, args.device, task=args.task, size=args.size,
                               batch_size=args.batch_size)
    print(f"checkpoint {service.checkpoint_path}" + (" (bundled default)" if service.uses_default_checkpoint else "")
          + f", device {service.device}", file=sys.stderr)
    service.load()  # a bad checkpoint fails here, once (exit 2), before any workspace is created
    from tqdm import tqdm

    failures = []
    for number, path in enumerate(inputs, 1):
        try:
            with VideoDocument.open(path, _workspace_for(path, args.workspace_root)) as document:
                if args.threshold is not None:
                    document.proposal_threshold = args.threshold
                desc = f"[{number}/{len(inputs)}] {document.source.video_id}"
                with tqdm(total=document.num_frames, desc=desc, unit="frame") as bar:
                    result = service.propose(document, progress=lambda done, total: bar.update(done - bar.n))
                print(f"{path}: {result.proposed} frame(s) proposed, {result.kept} kept (human-reviewed), "
                      f"workspace {document.workspace.folder}", file=sys.stderr)
        except VivimError as exc:
            if args.debug:
                raise
            failures.append(path)
            print(f"{PROG} propose: {path}: error: {exc}", file=sys.stderr)
    if failures:
        print(f"{PROG} propose: {len(failures)} of {len(inputs)} input(s) failed: "
              + ", ".join(map(str, failures)), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in VERBS:
        verb = argv[0]
        parser = build_export_parser() if verb == "export" else build_propose_parser()
        args = parser.parse_args(argv[1:])
        runner = run_export if verb == "export" else run_propose
    else:  # the GUI: vivim_studio.qt.app parses build_gui_parser() + its GUI-only options, then starts Qt
        from .qt.app import run_gui as run_studio_gui

        return run_studio_gui(argv)
    from vivim_core.errors import VivimError

    if not getattr(args, "debug", False):  # FFmpeg's own log lines would bury our one-line error messages
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")  # AV_LOG_FATAL
    try:
        return int(runner(args) or 0)
    except VivimError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"{PROG}{' ' + verb if verb else ''}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (work done so far is saved)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
