"""Vivim Studio: review and correct Vivim's mask proposals for medical videos.

Layers: `document` and `services` are Qt-free (testable headless); `qt` holds the PySide6 views and never
imports torch (it talks to `services`).
"""

__version__ = "0.1.0"
