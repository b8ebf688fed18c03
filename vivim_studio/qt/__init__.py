"""Vivim Studio's GUI (PySide6 + pyqtgraph): thin views over the Qt-free document model and services.

    app.py            `vivim-studio` GUI entry point (--demo, --screenshot)     main_window.py   window, documents
    opening.py        File > Open, recent files, drag and drop                 commands.py      edit, navigate, review
    model_jobs.py     propose, threshold, propagate, export, fine-tune         workers.py       QThread job runner
    canvas.py         frame, mask, heat map, brush cursor (pyqtgraph)           overlay.py       mask fill + contour
    tools.py          tools and the mouse gesture surface                       timeline.py      status strip + plots
    tool_panel.py     side panel and the frame's provenance                     status_bar.py    counts, device, jobs
    shortcuts.py      every command and key (menus, cheat sheet)                dialogs.py       export, fine-tune...
    document_bridge.py  document events -> queued Qt signals                   errors.py        dialogs, log, excepthook
    compat.py         PySide6 6.12 / Python 3.11 refcount guard                 demo.py          the demo video

Never imports torch (tests/test_layering.py): models run through `vivim_studio.services` in worker threads.
"""
