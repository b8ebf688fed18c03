"""Tests of the Qt-free Studio document model and services."""
