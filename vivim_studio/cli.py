"""`vivim-studio`: the review app (GUI) and its headless commands.

    vivim-studio [VIDEO] [--demo] ...                       the GUI (any first argument that is not a verb)
    vivim-studio export WORKSPACE --format vtus --out DIR   write the corrected masks for training
    vivim-studio propose INPUT... [--checkpoint CKPT]       pre-annotate videos overnight
    vivim-studio import VIDEO_OR_WORKSPACE --masks PATH     bring in masks a site already has
    vivim-studio report WORKSPACE --out DIR                 lesion sizes: measurements.csv, summary.json, PNG

Only argparse is imported at module level; the document model, torch and Qt load after parsing, so `--help`
is instant. Errors meant for the user (VivimError) print as one line and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from .arguments import PROG, VERBS, build_export_parser, build_import_parser, build_propose_parser, \
    build_report_parser



@contextlib.contextmanager
def _frame_progress(document, verb: str, label: str):
    """A progress callback (done, total) that draws a frame progress bar, after printing the document's notes."""
    from tqdm import tqdm

    for warning in document.warnings:
        print(f"{PROG} {verb}: note: {warning}", file=sys.stderr)
    with tqdm(total=0, desc=f"{label} {document.source.video_id}", unit="frame", leave=False) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
        yield progress

def _looks_like_workspace(path: Path) -> bool:
    """A workspace folder (or a damaged one: a .vivim folder, or one with masks/ inside), not a video."""
    from .document.workspace_format import WORKSPACE_FILE

    return (path / WORKSPACE_FILE).is_file() or (path.is_dir() and (path.suffix == ".vivim"
                                                                    or (path / "masks").is_dir()))


def _open_read_only(path: Path, source: Path | None):
    """The document of a workspace folder, or of a video's default workspace, opened read-only."""
    from .document import VideoDocument

    if _looks_like_workspace(path):
        return VideoDocument.open_workspace(path, source, read_only=True)
    return VideoDocument.open(source or path, read_only=True)


def run_export(args: argparse.Namespace) -> int:
    from .document.export import ExportOptions, export_document
    from .document.export_dicom_seg import PRIVACY_NOTE

    document = _open_read_only(args.workspace, args.source)
    selection = "accepted" if args.only_accepted else "all" if args.include_unreviewed_proposals else "reviewed"
    options = ExportOptions(format=args.format, split=args.split, selection=selection, size=args.size,
                            video_id=args.video_id, lesions=args.lesions, pixel_spacing_mm=args.pixel_spacing)
    with document, _frame_progress(document, "export", "export") as progress:
        result = export_document(document, args.out, options, progress=progress)
    unreviewed = result.manifest.get("unreviewed_frames", [])
    if unreviewed:
        print(f"{PROG} export: warning: {len(unreviewed)} exported frame(s) are unreviewed model proposals, not "
              f"ground truth (listed in the manifest)", file=sys.stderr)
    if args.format == "dicom-seg":
        print(f"{PROG} export: note: {PRIVACY_NOTE}", file=sys.stderr)
    print(f"exported {len(result.frames)} frame(s) of {document.source.name} as {result.manifest['video_id']!r} "
          f"({args.format}, {selection}) to " + ", ".join(str(p) for p in result.outputs)
          + f"; manifest {result.manifest_path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from .document import VideoDocument
    from .document.mask_import import import_masks

    if _looks_like_workspace(args.target):
        document = VideoDocument.open_workspace(args.target, args.source)
    else:
        document = VideoDocument.open(args.source or args.target, args.workspace)
    with document, _frame_progress(document, "import", "import") as progress:
        result = import_masks(document, args.masks, args.status, args.replace_reviewed, progress)
        folder = document.workspace.folder
    lesions = ", ".join(map(str, result.lesion_ids)) or "none"
    print(f"imported {len(result.imported)} frame(s) from {args.masks} into {folder} as {args.status} (lesions "
          f"{lesions})" + (f"; {len(result.unchanged)} already held these masks" if result.unchanged else ""))
    if result.kept:
        print(f"{PROG} import: note: {len(result.kept)} frame(s) a human edited or accepted were kept as they are "
              f"(frames {_frame_list(result.kept)}); add --replace-reviewed to replace them", file=sys.stderr)
    return 0


def _frame_list(frames: list[int], limit: int = 8) -> str:
    """1-based frame numbers, the first few."""
    shown = ", ".join(str(i + 1) for i in frames[:limit])
    return shown + (f" and {len(frames) - limit} more" if len(frames) > limit else "")


def run_report(args: argparse.Namespace) -> int:
    from .document.report import ReportOptions, describe, write_report

    document = _open_read_only(args.workspace, args.source)
    selection = "accepted" if args.only_accepted else "all" if args.include_unreviewed_proposals else "reviewed"
    options = ReportOptions(selection=selection, pixel_spacing_mm=args.pixel_spacing, task=args.task)
    with document, _frame_progress(document, "report", "measure") as progress:
        result = write_report(document, args.out, options, progress=progress)
    frames = result.summary["frames_measured"]
    print(f"measured {len(result.lesions)} lesion(s) on {len(frames)} frame(s) of {document.source.name} "
          f"({selection}); information, not a diagnosis")
    for lesion in result.lesions:
        print(f"  {describe(lesion)}")
    if result.summary["includes_unreviewed_proposals"]:
        print(f"{PROG} report: warning: unreviewed model proposals were measured (their status is in the table)",
              file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in result.files))
    return 0


def _workspace_for(source_path: Path, root: Path | None) -> Path | None:
    """ROOT/<video id>.vivim for --workspace-root (None: the default workspace beside the video). A name with
    nothing usable in it gets a short hash of the video's path."""
    if root is None:
        return None
    import hashlib

    from vivim_core.file_safety import confined

    from .document.export_targets import safe_video_id

    path_hash = hashlib.sha256(str(source_path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()
    name = safe_video_id(source_path.stem if source_path.is_file() else source_path.name, path_hash)
    return confined(root, f"{name}.vivim")


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
                for warning in document.warnings:
                    print(f"{PROG} propose: note: {warning}", file=sys.stderr)
                if args.threshold is not None:
                    document.proposal_threshold = args.threshold
                chosen = _service_for(service, document, args.replace_adapted_proposals)
                desc = f"[{number}/{len(inputs)}] {document.source.video_id}"
                with tqdm(total=document.num_frames, desc=desc, unit="frame") as bar:
                    result = chosen.propose(document, progress=lambda done, total: bar.update(done - bar.n))
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


def _service_for(service, document, replace_adapted: bool):
    """The workspace's adapted model unless a checkpoint was chosen; a chosen one never silently replaces the
    proposals of the model adapted to this video."""
    from vivim_core.errors import VivimError

    chosen = service.for_document(document)
    if chosen is not service:
        print(f"{document.source.name}: proposing with the model adapted to this video "
              f"({chosen.checkpoint_path.name} in its workspace)", file=sys.stderr)
        return chosen
    adapted = document.model
    latest = (document.checkpoint or {}).get("sha256")
    if adapted is not None and latest == adapted["sha256"] and service.checkpoint_sha256 != latest \
            and not replace_adapted:
        raise VivimError(f"{document.source.name}: its proposals come from the model adapted to this video "
                         f"(models/{adapted['file']} in its workspace), newer than {service.checkpoint_path.name}; "
                         f"leave out --checkpoint to propose with the adapted model, or add "
                         f"--replace-adapted-proposals to replace them")
    return service


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in VERBS:
        verb = argv[0]
        parser, runner = {"export": (build_export_parser, run_export), "propose": (build_propose_parser, run_propose),
                          "import": (build_import_parser, run_import),
                          "report": (build_report_parser, run_report)}[verb]
        args = parser().parse_args(argv[1:])
    else:  # the GUI parses its own arguments (`arguments.build_gui_parser`) before it imports Qt
        from .qt.app import run_gui

        return run_gui(argv)
    from vivim_core.errors import VivimError

    for stream in (sys.stdout, sys.stderr):  # a file name with undecodable bytes must not crash a print
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
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
