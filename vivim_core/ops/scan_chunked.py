"""Chunked, vectorised selective scan in plain PyTorch: CPU and any GPU, with a hand-written backward.

The recurrence (per batch b, channel d, state n; a_t = exp(dt_t A), x_t = dt_t u_t B_t):

    h_t = a_t h_{t-1} + x_t,        y_t = <C_t, h_t> + D u_t,        out_t = y_t silu(z_t)

is linear in h, so it is solved in two levels instead of L sequential steps:

1. the sequence is cut into chunks of K steps; inside every chunk at once, K in-place multiply-adds from a
   zero state give local states. The same multiply-add also carries P, the running product of a inside the
   chunk: the pair (h, P) is one tensor, so each step is one operation;
2. across chunks, one multiply-add per chunk gives the true state entering each chunk, H_c;
3. h = h_local + P * H_c (P is a product of numbers in (0, 1]: nothing overflows, unlike the exp(-cumsum)
   factorisation).

Long sequences are processed in *segments* sized for the CPU cache, the state carried from segment to
segment. The backward pass runs the adjoint recurrence
lambda_t = C_t g_t + a_{t+1} lambda_{t+1} the same way, in reverse, recomputing states segment by segment,
so memory stays at O(batch * dim * L) plus one segment of states, never O(batch * dim * L * N).

Inside, tensors of a segment have shape (K, b, G, N, nc, dg): K steps per chunk, batch, G groups of dg
channels sharing B and C (G = 1 for Mamba's (batch, N, L) B and C), N states, nc chunks. The channels are
innermost so that every elementwise operation runs over long contiguous rows (a state-innermost layout
made PyTorch loop over rows of 16 and ran 2x slower on a CPU).
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_scan_args

# Elements of one segment's (K, b, G, N, nc, dg) state tensor on the CPU: 2**19 floats = 2 MiB, an L2 cache.
# Measured on a 2-core Xeon at (b 1, d 64, L 4096, N 16): 2**18 and 2**20 were both ~1.5x slower (more
# PyTorch calls; memory traffic beyond the cache).
CPU_SEGMENT_ELEMENTS = 2**19


def _pow2_near_sqrt(n: int) -> int:
    return max(1, 2 ** round(math.log2(math.sqrt(max(n, 1)))))


def plan_chunks(length: int, state_elems_per_step: int, on_cuda: bool) -> tuple[int, int]:
    """(K, S): chunk length K and segment length S (a multiple of K) for a sequence of `length` steps.

    state_elems_per_step = batch * dim * N. On the GPU one segment covers the whole sequence. K near
    sqrt(S) balances the K in-chunk steps against the S / K across-chunk steps.
    """
    if on_cuda:
        segment = length
    else:
        fit = max(16, CPU_SEGMENT_ELEMENTS // max(state_elems_per_step, 1))
        segment = min(length, 2 ** int(math.log2(fit)))
    chunk = min(_pow2_near_sqrt(segment), 256)
    segment = -(-segment // chunk) * chunk
    return chunk, segment


def _as_groups(m: Tensor, batch: int, length: int) -> Tensor:
    """B or C as (batch, G, N, L) float32: (batch, N, L) -> G=1; (dim, N) time-invariant -> G=dim."""
    m = m.float()
    if m.dim() == 3:
        return m[:, None]
    if m.dim() == 2:
        return m[None, :, :, None].expand(batch, m.shape[0], m.shape[1], length)
    return m


def _grad_from_groups(g: Tensor, like: Tensor) -> Tensor:
    """Reduce a (batch, G, N, L) gradient back to the shape B or C was given in."""
    if like.dim() == 3:
        return g[:, 0].to(like.dtype)
    if like.dim() == 2:
        return g.sum(dim=(0, 3)).to(like.dtype)
    return g.to(like.dtype)


def _A_layout(A: Tensor, groups: int) -> Tensor:
    """(dim, N) -> (1, 1, G, N, 1, dg) float32."""
    dim, n_state = A.shape
    return A.float().reshape(groups, dim // groups, n_state).permute(0, 2, 1)[None, None, :, :, None, :].contiguous()


class _Segment:
    """One segment's inputs in the (K, b, G, N, nc, dg) layout, and its results back in sequence order."""

    def __init__(self, start: int, stop: int, chunk: int, groups: int):
        self.start, self.stop, self.chunk, self.groups = start, stop, chunk, groups
        self.n_chunks = -(-(stop - start) // chunk)
        self.pad = self.n_chunks * chunk - (stop - start)

    def _cut(self, x: Tensor) -> Tensor:
        x = x[..., self.start : self.stop]
        return F.pad(x, (0, self.pad)) if self.pad else x

    def per_channel(self, x: Tensor) -> Tensor:
        """(b, d, L) slice -> (K, b, G, 1, nc, dg), zero-padded to whole chunks."""
        x = self._cut(x)
        b, d, _ = x.shape
        x = x.reshape(b, self.groups, d // self.groups, self.n_chunks, self.chunk).permute(4, 0, 1, 3, 2)
        return x[:, :, :, None].contiguous()

    def per_group(self, m: Tensor) -> Tensor:
        """(b, G, N, L) slice -> (K, b, G, N, nc, 1)."""
        m = self._cut(m)
        b, g, n, _ = m.shape
        return m.reshape(b, g, n, self.n_chunks, self.chunk).permute(4, 0, 1, 2, 3)[..., None].contiguous()

    def to_sequence(self, y: Tensor) -> Tensor:
        """(K, b, G, nc, dg) -> (b, d, stop - start)."""
        k, b, g, nc, dg = y.shape
        return y.permute(1, 2, 4, 3, 0).reshape(b, g * dg, nc * k)[..., : self.stop - self.start]

    def group_to_sequence(self, g: Tensor) -> Tensor:
        """(K, b, G, N, nc) -> (b, G, N, stop - start)."""
        k, b, groups, n, nc = g.shape
        return g.permute(1, 2, 3, 4, 0).reshape(b, groups, n, nc * k)[..., : self.stop - self.start]


class _Workspace:
    """Buffers reused from segment to segment: fresh multi-MiB tensors per segment cost page faults."""

    def __init__(self, device: torch.device):
        self.device, self.buffers = device, {}

    def get(self, name: str, shape) -> Tensor:
        shape = torch.Size(shape)
        buf = self.buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self.buffers[name] = torch.empty(shape, dtype=torch.float32, device=self.device)
        return buf


def _chunk_recurrence(pair: Tensor, a: Tensor, reverse: bool) -> None:
    """In place, inside every chunk: pair[k] += a[k] * pair[k - 1] (or, reversed, pair[k] += a[k + 1] *
    pair[k + 1]). pair: (K, 2, ...) holding two recurrences that share the decay a: (K, ...)."""
    steps = pair.shape[0]
    if reverse:
        for k in range(steps - 2, -1, -1):
            pair[k].addcmul_(a[k + 1], pair[k + 1])
    else:
        for k in range(1, steps):
            pair[k].addcmul_(a[k], pair[k - 1])


def _segment_states(dt: Tensor, du: Tensor, A6: Tensor, Bk: Tensor, carry: Tensor, ws: _Workspace):
    """States of one segment. dt, du: (K,b,G,1,nc,dg); A6: (1,1,G,N,1,dg); Bk: (K,b,G,N,nc,1); carry: (b,G,N,dg).

    Returns (a, h, entering, carry_out): decays a and true states h (K,b,G,N,nc,dg), the state entering each
    chunk (b,G,N,nc,dg) and the state leaving the segment (b,G,N,dg). a and h live in the workspace.
    """
    shape = torch.broadcast_shapes(dt.shape, A6.shape, Bk.shape)
    a = torch.mul(dt, A6, out=ws.get("a", shape)).exp_()
    pair = ws.get("h_and_prod", (shape[0], 2, *shape[1:]))  # [:, 0] states, [:, 1] running products of a
    torch.mul(du, Bk, out=pair[:, 0])
    pair[1:, 1].zero_()
    pair[0, 1].copy_(a[0])
    _chunk_recurrence(pair, a, reverse=False)
    h, prod = pair[:, 0], pair[:, 1]
    h_end, prod_end = h[-1].movedim(3, 0), prod[-1].movedim(3, 0)  # (nc, b, G, N, dg)
    entering = []
    for c in range(shape[4]):  # true state entering each chunk
        entering.append(carry)
        carry = torch.addcmul(h_end[c], prod_end[c], carry)
    entering = torch.stack(entering, dim=3)
    h.addcmul_(prod, entering)
    return a, h, entering, carry


@contextlib.contextmanager
def _flush_denormals():
    """Decay products and states underflow towards zero; on x86 CPUs arithmetic on the subnormal numbers
    on the way is ~100x slower (a forward of vivim-tiny went from 0.8 s to 28 s). Values below 1.2e-38 do
    not matter here, so flush them to zero while the scan runs (PyTorch's default, off, is restored)."""
    flushed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)


class _ChunkedScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        with _flush_denormals():
            return _ChunkedScan._forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus)

    @staticmethod
    def backward(ctx, grad_out):
        with _flush_denormals():
            return _ChunkedScan._backward(ctx, grad_out)

    @staticmethod
    def _prepare(u, delta, A, B, C, delta_bias, delta_softplus, groups=None):
        """Float32 inputs shared by forward and backward: B, C as (b, G, N, L), raw delta, dt, dt * u, A6."""
        batch, dim, length = u.shape
        Bg, Cg = _as_groups(B, batch, length), _as_groups(C, batch, length)
        if groups is None:
            groups = Bg.shape[1] if Bg.shape[1] == Cg.shape[1] else dim  # mixed conventions: a group per channel
        if Bg.shape[1] != groups:
            Bg = Bg.repeat_interleave(dim // Bg.shape[1], dim=1)
        if Cg.shape[1] != groups:
            Cg = Cg.repeat_interleave(dim // Cg.shape[1], dim=1)
        raw = delta.float() + (delta_bias.float()[:, None] if delta_bias is not None else 0.0)
        dt = F.softplus(raw) if delta_softplus else raw
        uf = u.float()
        return Bg, Cg, groups, raw, dt, uf, dt * uf, _A_layout(A, groups)

    @staticmethod
    def _forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        batch, dim, length = u.shape
        n_state = A.shape[1]
        Bg, Cg, groups, _, dt, uf, du, A6 = _ChunkedScan._prepare(u, delta, A, B, C, delta_bias, delta_softplus)
        chunk, seg_len = plan_chunks(length, batch * dim * n_state, u.is_cuda)

        y = torch.empty(batch, dim, length, dtype=torch.float32, device=u.device)
        carry = torch.zeros(batch, groups, n_state, dim // groups, dtype=torch.float32, device=u.device)
        carries = []
        ws = _Workspace(u.device)
        for start in range(0, length, seg_len):
            seg = _Segment(start, min(start + seg_len, length), chunk, groups)
            carries.append(carry)
            _, h, _, carry = _segment_states(seg.per_channel(dt), seg.per_channel(du), A6, seg.per_group(Bg), carry, ws)
            y[..., seg.start : seg.stop] = seg.to_sequence(h.mul_(seg.per_group(Cg)).sum(3))
        if D is not None:
            y += uf * D.float()[:, None]
        out = y * F.silu(z.float()) if z is not None else y

        ctx.delta_softplus = delta_softplus
        ctx.plan = (chunk, seg_len, groups)
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, y, torch.stack(carries))
        return out.to(u.dtype)

    @staticmethod
    def _backward(ctx, grad_out):
        u, delta, A, B, C, D, z, delta_bias, y, carries = ctx.saved_tensors
        chunk, seg_len, groups = ctx.plan
        batch, dim, length = u.shape
        n_state = A.shape[1]
        Bg, Cg, _, raw, dt, uf, du, A6 = _ChunkedScan._prepare(u, delta, A, B, C, delta_bias, ctx.delta_softplus,
                                                             groups)

        g_out = grad_out.float()
        grad_z = None
        if z is not None:
            sig = torch.sigmoid(z.float())
            g_y = g_out * z.float() * sig
            if ctx.needs_input_grad[6]:
                grad_z = (g_out * y * sig * (1 + z.float() * (1 - sig))).to(z.dtype)
        else:
            g_y = g_out

        g_dt = torch.zeros_like(dt)
        g_du = torch.zeros_like(dt)
        g_A = torch.zeros_like(A6[0, 0, :, :, 0])  # (G, N, dg)
        g_B = torch.zeros_like(Bg)
        g_C = torch.zeros_like(Cg)
        right = torch.zeros(batch, groups, n_state, dim // groups, dtype=torch.float32, device=u.device)
        starts = list(range(0, length, seg_len))
        ws = _Workspace(u.device)
        for index in reversed(range(len(starts))):
            seg = _Segment(starts[index], min(starts[index] + seg_len, length), chunk, groups)
            dt_k, du_k, Bk, Ck = seg.per_channel(dt), seg.per_channel(du), seg.per_group(Bg), seg.per_group(Cg)
            a, h, entering, _ = _segment_states(dt_k, du_k, A6, Bk, carries[index], ws)
            gy_k = seg.per_channel(g_y)

            # Adjoint lambda_t = C_t g_t + a_{t+1} lambda_{t+1}: in-chunk (reverse) together with
            # after_t = prod_{j>t} a_j inside the chunk, then across chunks.
            shape = a.shape
            pair = ws.get("lam_and_after", (shape[0], 2, *shape[1:]))
            torch.mul(gy_k, Ck, out=pair[:, 0])
            pair[:-1, 1].zero_()
            pair[-1, 1].fill_(1.0)
            _chunk_recurrence(pair, a, reverse=True)
            lam, after = pair[:, 0], pair[:, 1]
            lam_first, after_first, a_first = (t[0].movedim(3, 0) for t in (lam, after, a))  # (nc, b, G, N, dg)
            from_right = [right] * seg.n_chunks
            for c in reversed(range(seg.n_chunks)):
                from_right[c] = right
                right = a_first[c] * (lam_first[c] + after_first[c] * right)
            lam.addcmul_(after, torch.stack(from_right, dim=3))

            # Gradients of this segment's inputs (tmp: one scratch buffer for the products).
            tmp = ws.get("tmp", shape)
            g_C_k = torch.mul(gy_k, h, out=tmp).sum(5)  # (K, b, G, N, nc)
            h_prev = ws.get("h_prev", shape)
            h_prev[0] = entering
            h_prev[1:] = h[:-1]
            g_log = h_prev.mul_(lam).mul_(a)  # d loss / d (dt A)
            g_A += torch.mul(g_log, dt_k, out=tmp).sum(dim=(0, 1, 4))
            g_dt_k = torch.mul(g_log, A6, out=tmp).sum(3)  # (K, b, G, nc, dg)
            g_B_k = torch.mul(lam, du_k, out=tmp).sum(5)
            g_du_k = torch.mul(lam, Bk, out=tmp).sum(3)
            sl = slice(seg.start, seg.stop)
            g_dt[..., sl] = seg.to_sequence(g_dt_k)
            g_du[..., sl] = seg.to_sequence(g_du_k)
            g_B[..., sl] = seg.group_to_sequence(g_B_k)
            g_C[..., sl] = seg.group_to_sequence(g_C_k)

        g_dt += g_du * uf
        grad_u = g_du * dt
        grad_D = None
        if D is not None:
            grad_u += g_y * D.float()[:, None]
            if ctx.needs_input_grad[5]:
                grad_D = (g_y * uf).sum(dim=(0, 2)).to(D.dtype)
        g_raw = g_dt * torch.sigmoid(raw) if ctx.delta_softplus else g_dt
        grad_bias = g_raw.sum(dim=(0, 2)).to(delta_bias.dtype) if delta_bias is not None else None
        return (
            grad_u.to(u.dtype),
            g_raw.to(delta.dtype),
            g_A.permute(0, 2, 1).reshape(dim, n_state).to(A.dtype),
            _grad_from_groups(_regroup(g_B, B, dim), B),
            _grad_from_groups(_regroup(g_C, C, dim), C),
            grad_D,
            grad_z,
            grad_bias,
            None,
        )


def _regroup(g: Tensor, original: Tensor, dim: int) -> Tensor:
    """Undo the per-channel regrouping done for mixed B/C conventions: sum channels back into groups."""
    if original.dim() == 4 and g.shape[1] != original.shape[1]:
        b, _, n, length = g.shape
        return g.reshape(b, original.shape[1], -1, n, length).sum(2)
    if original.dim() == 3 and g.shape[1] != 1:
        return g.sum(1, keepdim=True)
    return g


def selective_scan_chunked(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
) -> Tensor:
    """Chunked selective scan; same arguments and result as `selective_scan_reference`, differentiable.

    Computes in float32 whatever the input dtype; returns (batch, dim, L) in u's dtype.
    """
    check_scan_args(u, delta, A, B, C, D, z, delta_bias)
    return _ChunkedScan.apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
