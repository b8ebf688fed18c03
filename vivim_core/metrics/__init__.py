"""Evaluation metrics: the VTUS (thyroid) and VPS (polyp) protocols."""
