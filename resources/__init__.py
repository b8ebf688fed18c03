"""Bundled assets (installed as the package `vivim_resources`): default checkpoints, the affine prior.

Find them with `vivim_core.resources.resource_path(name)`.
"""
