"""Vivim Studio's GUI (PySide6 + pyqtgraph): thin views over the Qt-free document model and services.

    app.py            `vivim-studio` GUI entry point (--demo, --screenshot)     main_window.py   window, documents
    display.py        no display / no Qt platform: a message, not an abort      opening.py       File > Open, drops
    commands.py       edit, navigate, review                                    model_jobs.py    propose, export...
    workers.py        QThread job runner                                        canvas.py        frame, mask, brush
    overlay.py        mask fill + contour                                       tools.py         tools, mouse gestures
    timeline.py       status strip + plots, frame-number axis                   tool_panel.py    side panel, provenance
    status_bar.py     message, counts, device, jobs                             shortcuts.py     commands and keys
    dialogs.py        export, fine-tune, accept range, about                    document_bridge.py  events -> signals
    error_reporting.py  error dialogs, log file, excepthook                     compat.py        PySide6 refcount guard
    prefetch.py       frames decoded ahead of the scrubbing                     frame_item.py    the frame's image item
    menus.py          the menu bar                                              recent.py        recent files
    theme.py          colours and the dark theme                               elided_label.py  one-line text, never cut

The views reach the document (`vivim_studio.document`) and the jobs (`vivim_studio.services`), never vivim_core
itself (its `errors` aside), and never import torch (tests/test_layering.py): models run through the services in
worker threads.
"""
