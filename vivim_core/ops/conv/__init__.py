"""The model's convolutions with kernels of their own: the causal conv1d of the scan branches (`causal`, Triton
kernel in `causal_triton`) and the DSF's depthwise 3x3x3 conv + GELU (`dwconv3d`, Triton kernels in
`dwconv3d_triton`). Each non-Triton module says which implementation runs for which call."""
