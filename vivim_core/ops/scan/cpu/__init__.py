"""The scan without Triton: `numba_scan` (compiled CPU kernels, what `auto` takes on a CPU) and `chunked` (plain
PyTorch on any device: the fallback where numba, or on a GPU mamba-ssm and Triton, are missing)."""
