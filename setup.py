"""Package layout (everything else is in pyproject.toml): the top-level `resources/` folder (bundled
checkpoints, the affine prior) ships inside the wheel as the package `vivim_resources`."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["vivim_core*", "vivim_studio*"]) + ["vivim_resources"],
    package_dir={"vivim_resources": "resources"},
    package_data={"vivim_core": ["py.typed"], "vivim_resources": ["*.safetensors", "*.json", "*.md", "*.png"]},
)
