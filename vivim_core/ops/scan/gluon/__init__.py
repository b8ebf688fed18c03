"""The scan's Gluon kernels: `one_pass` (channel-major inference, compute capability >= 8) and `one_pass_tma` (the
same with B and C staged by TMA, compute capability 9.x). Which runs when is `vivim_core.ops.scan.policy`'s
choice; `common.available()` says whether this Triton has Gluon at all."""
