"""The menu bar, built from the command table (`shortcuts.COMMANDS`), and the File > Open recent submenu."""

from __future__ import annotations

from functools import partial

from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QMainWindow

MENUS = (
    ("&File", ("open", "open_folder", "@recent", "-", "import_masks", "export", "report", "-", "quit")),
    ("&Edit", ("undo", "redo")),
    ("&Tools", ("tool_brush", "tool_eraser", "tool_lasso", "tool_lasso_subtract", "tool_pan", "tool_prompt", "-",
                "tool_calibrate", "clear_calibration", "-", "brush_smaller", "brush_larger")),
    ("&Mask", ("fill_holes", "keep_largest", "smooth", "-", "copy_previous", "copy_next", "propagate", "-", "clear")),
    ("&Lesions", ("new_lesion", "@lesions", "-", "@merge", "split_lesion", "@relabel")),
    ("&Navigate", ("next_frame", "previous_frame", "first_frame", "last_frame", "-", "next_unreviewed",
                   "previous_unreviewed", "next_low_confidence", "-", "play")),
    ("&Review", ("accept", "accept_range")),
    ("M&odel", ("propose", "cancel_job", "-", "@task", "choose_checkpoint", "-", "finetune", "learn")),
    ("&View", ("fit_view", "zoom_in", "zoom_out", "-", "toggle_mask", "toggle_heatmap", "toggle_calipers",
               "toggle_long_axis_curve", "-", "window_level", "reset_window_level")),
    ("&Help", ("shortcuts", "about")),
)


def build_menus(window: QMainWindow) -> None:
    actions = window.actions_by_id
    bar = window.menuBar()
    for title, entries in MENUS:
        menu = bar.addMenu(title)
        for entry in entries:
            if entry == "-":
                menu.addSeparator()
            elif entry == "@recent":
                window.recent_menu = menu.addMenu("Open &recent")
            elif entry == "@lesions":
                choose = menu.addMenu("&Active lesion")
                for k in range(1, 10):
                    choose.addAction(actions[f"lesion_{k}"])
            elif entry in ("@merge", "@relabel"):  # the lesion panel's menus (filled as they open)
                panel = window.panel.lesion_panel
                menu.addMenu(panel.merge_menu if entry == "@merge" else panel.relabel_menu)
            elif entry == "@task":
                task_menu = menu.addMenu("&Task (default checkpoint)")
                task_menu.addAction(actions["task_thyroid"])
                task_menu.addAction(actions["task_polyp"])
            else:
                menu.addAction(actions[entry])
    tools = QActionGroup(window)  # exactly one tool is checked
    for name in ("tool_brush", "tool_eraser", "tool_lasso", "tool_lasso_subtract", "tool_pan", "tool_prompt",
                 "tool_calibrate"):
        tools.addAction(actions[name])
    actions["tool_brush"].setChecked(True)
    tasks = QActionGroup(window)
    tasks.addAction(actions["task_thyroid"])
    tasks.addAction(actions["task_polyp"])
    actions["toggle_mask"].setChecked(True)
    window.rebuild_recent_menu = partial(rebuild_recent_menu, window)
    window.rebuild_recent_menu()


def rebuild_recent_menu(window: QMainWindow) -> None:
    menu = window.recent_menu
    menu.clear()
    paths = window.recent.paths()
    for number, path in enumerate(paths, 1):
        action = menu.addAction(f"&{number % 10} {path.name}")
        action.setToolTip(str(path))
        action.triggered.connect(lambda _checked=False, p=path: window.open_path(p))
    if paths:
        menu.addSeparator()
        menu.addAction("Clear list", lambda: (window.recent.clear(), window.rebuild_recent_menu()))
    menu.setEnabled(bool(paths))
