"""Every command of the Studio with its keyboard shortcut: one table that builds the QActions, the menus and
the cheat sheet (Help > Keyboard shortcuts), so they can never disagree.

Keys follow image-annotation habits (CVAT, ITK-SNAP): single letters for tools, brackets for brush size,
arrows for frames, A to accept, Ctrl+Z / Ctrl+Shift+Z for undo / redo.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class Command:
    id: str
    text: str  # menu text (with & mnemonic)
    keys: tuple[str, ...]  # QKeySequence strings; first is shown in menus
    group: str  # cheat-sheet section
    tip: str = ""
    checkable: bool = False
    button: str = ""  # shorter text for the side panel's button (QAction.iconText); default: the menu text


COMMANDS: tuple[Command, ...] = (
    # file
    Command("open", "&Open video or DICOM...", ("Ctrl+O",), "File", "Open a video file or DICOM cine"),
    Command("open_folder", "Open &folder or VTUS case...", ("Ctrl+Shift+O",), "File",
            "Open a folder of frames (a VTUS case brings its masks)"),
    Command("import_masks", "&Import masks...", ("Ctrl+I",), "File",
            "Bring in masks you already have: a folder of PNGs (binary or label maps), a VTUS _GT folder, or a "
            "NIfTI volume"),
    Command("export", "&Export masks...", ("Ctrl+E",), "File",
            "Write the masks as VTUS (default), PNG, NIfTI or DICOM-SEG"),
    Command("report", "Lesion size &report...", ("Ctrl+R",), "File",
            "Measure the reviewed frames into a folder: measurements.csv, summary.json, report.png"),
    Command("quit", "&Quit", ("Ctrl+Q",), "File", "Close (everything is already saved)"),
    # edit
    Command("undo", "&Undo", ("Ctrl+Z",), "Edit", "Undo the last change of this frame"),
    Command("redo", "&Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Edit", "Redo"),
    # tools
    Command("tool_brush", "&Brush", ("B",), "Tools", "Paint the lesion", True),
    Command("tool_eraser", "&Eraser", ("E",), "Tools", "Erase", True),
    Command("tool_lasso", "&Lasso add", ("L",), "Tools", "Draw an outline to add it to the mask", True),
    Command("tool_lasso_subtract", "Lasso &subtract", ("Shift+L",), "Tools", "Draw an outline to cut it out", True),
    Command("tool_pan", "&Pan / zoom", ("H",), "Tools", "Drag to pan; the wheel zooms in any tool", True),
    Command("tool_prompt", "P&rompt: click or box", ("Q",), "Tools",
            "The model draws the mask: click the lesion (left), the background (right or Shift+click), or drag a "
            "box around it", True, button="Prompt"),
    Command("tool_calibrate", "&Calibrate: line over a known length", ("R",), "Tools",
            "Drag a line over a known length (the scanner's depth ruler), then type that length in mm", True,
            button="Calibrate"),
    Command("clear_calibration", "Remove drawn calibration", (), "Tools",
            "Forget the line you drew (the file's own calibration, if any, applies again)"),
    Command("brush_smaller", "Brush smaller", ("[",), "Tools", "Decrease the brush size"),
    Command("brush_larger", "Brush larger", ("]",), "Tools", "Increase the brush size"),
    Command("fill_holes", "&Fill holes", ("F",), "Mask", "Fill holes inside the mask"),
    Command("keep_largest", "&Keep largest region", ("K",), "Mask", "Remove every region but the largest",
            button="Keep largest"),
    Command("smooth", "S&mooth outline", ("S",), "Mask", "Round the outline (morphological smoothing)"),
    Command("copy_previous", "Copy from &previous frame", ("C",), "Mask", "Replace this mask by the previous one",
            button="Copy previous"),
    Command("copy_next", "Copy from &next frame", ("Shift+C",), "Mask", "Replace this mask by the next one",
            button="Copy next"),
    Command("propagate", "P&ropagate to following frames", ("P",), "Mask",
            "Carry this mask forward by optical flow (stops at reviewed frames)", button="Propagate forward"),
    Command("clear", "&Clear frame (no lesion)", ("Del", "Backspace"), "Mask", "Empty mask: no lesion here",
            button="Clear (no lesion)"),
    # lesions
    Command("new_lesion", "&New lesion", ("Ctrl+N",), "Lesions",
            "Edit a lesion no frame has yet (the next free id): brush, lasso and Prompt draw it"),
    *(Command(f"lesion_{k}", f"Lesion &{k}", (str(k),), "Lesions", f"Edit lesion {k}: brush, eraser, lasso and "
              f"Prompt act on it", True) for k in range(1, 10)),
    Command("split_lesion", "&Split lesion into its pieces", (), "Lesions",
            "On this frame, each separate piece of the active lesion but the largest becomes a new lesion",
            button="Split"),
    # navigation
    Command("next_frame", "Next frame", ("Right",), "Navigate", "Next frame"),
    Command("previous_frame", "Previous frame", ("Left",), "Navigate", "Previous frame"),
    Command("first_frame", "First frame", ("Home",), "Navigate", "First frame"),
    Command("last_frame", "Last frame", ("End",), "Navigate", "Last frame"),
    Command("next_unreviewed", "Next &unreviewed frame", ("N",), "Navigate",
            "Next frame not yet edited or accepted"),
    Command("previous_unreviewed", "Previous unreviewed frame", ("Shift+N",), "Navigate",
            "Previous frame not yet edited or accepted"),
    Command("next_low_confidence", "Next &low-confidence frame", ("M",), "Navigate",
            "Next proposed frame whose confidence is below the line on the timeline"),
    Command("play", "&Play / pause", ("Space",), "Navigate", "Play the video at its frame rate", True),
    # review
    Command("accept", "&Accept frame", ("A", "Return"), "Review", "Confirm this frame's mask (also an empty one)"),
    Command("accept_range", "Accept proposals in a &range...", ("Shift+A",), "Review",
            "Accept every proposed frame between two frames", button="Accept range..."),
    # model
    Command("propose", "&Propose masks", ("Ctrl+P",), "Model", "Run the model on the frames not reviewed yet"),
    Command("cancel_job", "&Cancel running job", ("Esc",), "Model", "Stop the running job (work done is kept)"),
    Command("choose_checkpoint", "Choose &checkpoint...", (), "Model", "Pick the Vivim .safetensors to propose with"),
    Command("task_thyroid", "&Thyroid nodules (ultrasound)", (), "Model",
            "Use the bundled thyroid ultrasound checkpoint by default", True),
    Command("task_polyp", "&Polyps (endoscopy)", (), "Model", "Use the bundled polyp endoscopy checkpoint by default",
            True),
    Command("finetune", "&Fine-tune on my corrections...", ("Ctrl+T",), "Model",
            "Adapt the model to your edited and accepted frames, then re-propose the rest",
            button="Fine-tune on my corrections..."),
    Command("learn", "&Learn from my corrections", (), "Model",
            "After you accept or correct frames, adapt the model to them in the background and re-propose the "
            "frames you have not touched", True),
    # view
    Command("fit_view", "&Fit image", ("0",), "View", "Zoom to fit the frame"),
    Command("zoom_in", "Zoom &in", ("=", "+"), "View", "Zoom in"),
    Command("zoom_out", "Zoom &out", ("-",), "View", "Zoom out"),
    Command("toggle_mask", "Show &mask", ("O",), "View", "Show or hide the mask overlay", True),
    Command("toggle_heatmap", "Show probability &heat map", ("V",), "View", "The model's probability map", True),
    Command("toggle_calipers", "Show &calipers (long and short axis)", ("D",), "View",
            "Draw each lesion's long axis (maximum diameter) and short axis on the image", True),
    Command("toggle_long_axis_curve", "&Long axis on the timeline", ("Shift+D",), "View",
            "Plot the lesion's long axis over the video instead of the mask area", True),
    Command("window_level", "&Brightness / contrast...", ("W",), "View",
            "Window / level of the display only: the frames, measurements and exports are unchanged"),
    Command("reset_window_level", "&Reset brightness / contrast", ("Shift+W",), "View",
            "Show the frames as they are"),
    # help
    Command("shortcuts", "&Keyboard shortcuts", ("F1", "?"), "Help", "This list"),
    Command("about", "&About Vivim Studio", (), "Help", "Version, log file and licence"),
)

BY_ID = {c.id: c for c in COMMANDS}


def build_actions(parent: QWidget) -> dict[str, QAction]:
    """One QAction per command, parented to `parent` (the main window) so its shortcuts work everywhere in it."""
    actions = {}
    for command in COMMANDS:
        action = QAction(command.text, parent)
        action.setObjectName(f"action_{command.id}")
        if command.keys:
            action.setShortcuts([QKeySequence(k) for k in command.keys])
        tip = command.tip + (f" ({command.keys[0]})" if command.keys else "")
        action.setToolTip(tip)
        action.setStatusTip(command.tip)
        action.setCheckable(command.checkable)
        if command.button:
            action.setIconText(command.button)
        parent.addAction(action)  # shortcuts active even when the action is in no visible menu
        actions[command.id] = action
    return actions


def cheat_sheet_html() -> str:
    """The shortcut table grouped by section, as HTML for the Help dialog."""
    rows, group = [], None
    for command in COMMANDS:
        if not command.keys:
            continue
        if command.group != group:
            group = command.group
            rows.append(f"<tr><td colspan=2 style='padding-top:10px'><b>{group}</b></td></tr>")
        keys = " or ".join(f"<code>{QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText)}</code>"
                           for k in command.keys)
        rows.append(f"<tr><td style='padding-right:18px'>{keys}</td><td>{command.tip}</td></tr>")
    mouse = ("<tr><td colspan=2 style='padding-top:10px'><b>Mouse</b></td></tr>"
             "<tr><td>Left drag</td><td>use the current tool</td></tr>"
             "<tr><td>Prompt tool (Q)</td><td>left-click: lesion here · right-click or Shift+click: not lesion "
             "· drag: a box around the lesion</td></tr>"
             "<tr><td>Middle drag</td><td>pan (any tool)</td></tr>"
             "<tr><td>Wheel</td><td>zoom around the pointer</td></tr>"
             "<tr><td>Click on the timeline</td><td>go to that frame</td></tr>")
    return "<table>" + "".join(rows) + mouse + "</table>"
