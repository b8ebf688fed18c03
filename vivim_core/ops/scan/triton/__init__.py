"""The scan's Triton kernels: `chunk` (training, forward and backward), `rows` (token-major inference) and
`one_pass` (channel-major inference). Which runs when is `vivim_core.ops.scan.policy`'s choice."""
