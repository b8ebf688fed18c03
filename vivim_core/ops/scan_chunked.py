"""Chunked, vectorised selective scan in plain PyTorch: CPU and any GPU, with a hand-written backward.

The recurrence (per batch b, channel d, state n; a_t = exp(dt_t A), x_t = dt_t u_t B_t):

    h_t = a_t h_{t-1} + x_t,        y_t = <C_t, h_t> + D u_t,        out_t = y_t silu(z_t)

is linear in h, so it is solved in two levels instead of L sequential steps:

1. the sequence is cut into chunks of K steps; inside every chunk at once, K - 1 in-place multiply-adds from a
   zero state give local states;
2. across chunks, one multiply-add per chunk gives the true state entering each chunk, E_c;
3. h = h_local + P * E_c, where P_k = exp(A * (dt_1 + ... + dt_k)) is the decay from the chunk's start. P comes
   from an in-chunk cumulative sum of dt (per channel, cheap) and one exp: its exponent is <= 0, so nothing
   overflows (unlike factorisations through exp(-cumsum), which divide by vanishing numbers).

Exponents are clamped at -80 before exp: exp(-80) ~ 2e-35 is zero for every purpose here, and x86 CPUs take a
~70x slower path for exp results that underflow.

Long sequences are processed in *segments* of several chunks, the state carried from segment to segment, so
the (N times larger) state tensors exist for one segment at a time. The backward pass runs the adjoint
recurrence lambda_t = C_t g_t + a_{t+1} lambda_{t+1} the same way in reverse, recomputing states segment by
segment, so memory stays at O(batch * dim * L) plus one segment of states, never O(batch * dim * L * N).

Inputs are rearranged once, for the whole sequence, into blocks (see `_Blocks`): segment s, step k of a chunk,
batch, G groups of dg channels sharing B and C (G = 1 for Mamba's (batch, N, L) B and C), N states, chunk c of
the segment, channel. Channels are innermost so that every elementwise operation runs over long contiguous
rows (a state-innermost layout made PyTorch loop over rows of 16 and ran 2x slower on a CPU).
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_scan_args

# State elements (K * batch * dim * N * chunks) of one segment on the CPU. Measured on a 2-core Xeon at (b 1,
# d 64, L 4096, N 16): 2**20 (1024 steps) beat 2**18 and 2**19 (more, smaller PyTorch calls, each running on
# one thread) and 2**22 (memory traffic beyond the caches).
CPU_SEGMENT_ELEMENTS = 2**20

# Exponents below this are clamped: exp(-80) ~ 1.8e-35 (see the module docstring).
MIN_EXPONENT = -80.0


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
    """(dim, N) -> (1, 1, G, N, 1, dg) float32, broadcasting against a segment's (K, b, G, N, nc, dg) states."""
    dim, n_state = A.shape
    return A.float().reshape(groups, dim // groups, n_state).permute(0, 2, 1)[None, None, :, :, None, :].contiguous()


class _Blocks:
    """The whole sequence rearranged once for segment-by-segment work: S segments of nc chunks of K steps,
    zero-padded at the end (a padded step has x = 0 and a = 1, so it changes nothing before it)."""

    def __init__(self, length: int, chunk: int, segment_length: int, groups: int):
        self.length, self.chunk, self.groups = length, chunk, groups
        self.chunks_per_segment = segment_length // chunk
        self.segments = -(-length // segment_length)
        self.padded_length = self.segments * segment_length

    def _pad(self, x: Tensor) -> Tensor:
        pad = self.padded_length - x.shape[-1]
        return F.pad(x, (0, pad)) if pad else x

    def chunk_cumsum(self, x: Tensor, reverse: bool = False) -> Tensor:
        """(..., L) -> (..., padded L): inclusive running sums inside each chunk, or with reverse=True the sums
        of the steps *after* each step in its chunk (exclusive, so no subtraction loses precision)."""
        x = self._pad(x)
        steps = x.reshape(*x.shape[:-1], -1, self.chunk)
        if not reverse:
            return steps.cumsum(-1).reshape(x.shape)
        after = steps.flip(-1).cumsum(-1).flip(-1)[..., 1:]
        return F.pad(after, (0, 1)).reshape(x.shape)

    def decay_exponents(self, dt: Tensor, with_after: bool = False) -> Tensor:
        """(S, 2 or 3, K, b, G, 1, nc, dg) from dt (b, d, L): dt, its running sum from the chunk's start, and with
        with_after the sum of the steps after each step in its chunk (the adjoint's decays)."""
        parts = [self._pad(dt), self.chunk_cumsum(dt)]
        if with_after:
            parts.append(self.chunk_cumsum(dt, reverse=True))
        return self.per_channel(torch.stack(parts))

    def per_channel(self, x: Tensor) -> Tensor:
        """(*lead, b, d, L) -> (S, *lead, K, b, G, 1, nc, dg), contiguous."""
        x = self._pad(x)
        *lead, b, d, _ = x.shape
        x = x.reshape(*lead, b, self.groups, d // self.groups, self.segments, self.chunks_per_segment, self.chunk)
        n = len(lead)
        order = (n + 3, *range(n), n + 5, n, n + 1, n + 4, n + 2)  # S, lead, K, b, G, nc, dg
        return x.permute(order).unsqueeze(-3).contiguous()

    def per_group(self, m: Tensor) -> Tensor:
        """(b, G, N, L) -> (S, K, b, G, N, nc, 1), contiguous."""
        m = self._pad(m)
        b, g, n, _ = m.shape
        m = m.reshape(b, g, n, self.segments, self.chunks_per_segment, self.chunk)
        return m.permute(3, 5, 0, 1, 2, 4)[..., None].contiguous()

    def to_sequence(self, y: Tensor) -> Tensor:
        """(S, K, b, G, nc, dg) -> (b, d, L)."""
        _, _, b, g, _, dg = y.shape
        return y.permute(2, 3, 5, 0, 4, 1).reshape(b, g * dg, self.padded_length)[..., : self.length]

    def group_to_sequence(self, g: Tensor) -> Tensor:
        """(S, K, b, G, N, nc) -> (b, G, N, L)."""
        _, _, b, groups, n, _ = g.shape
        return g.permute(2, 3, 4, 0, 5, 1).reshape(b, groups, n, self.padded_length)[..., : self.length]


class _Workspace:
    """Buffers reused from segment to segment (fresh multi-MiB tensors per segment cost page faults), and their
    per-step views (creating ~1,000 views per segment cost ~10 % of a CPU forward)."""

    def __init__(self, device: torch.device):
        self.device, self.buffers, self.views = device, {}, {}

    def unbind(self, t: Tensor, dim: int) -> tuple[Tensor, ...]:
        """t.unbind(dim), made once per view of a workspace buffer."""
        key = (t.data_ptr(), t.shape, t.stride(), dim)
        if key not in self.views:
            self.views[key] = t.unbind(dim)
        return self.views[key]

    def get(self, name: str, shape) -> Tensor:
        shape = torch.Size(shape)
        buf = self.buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self.buffers[name] = torch.empty(shape, dtype=torch.float32, device=self.device)
        return buf


def _decays(exponents: Tensor, A6: Tensor, out: Tensor) -> Tensor:
    """exp(clamp(exponents * A, MIN_EXPONENT)) into `out`; exponents (..., K, b, G, 1, nc, dg) are sums of dt."""
    return torch.mul(exponents, A6, out=out).clamp_min_(MIN_EXPONENT).exp_()


def _in_chunk_recurrence(x: Tensor, a: Tensor, reverse: bool, ws: _Workspace) -> None:
    """In place, inside every chunk: x[k] += a[k] * x[k - 1] or, reversed, x[k] += a[k + 1] * x[k + 1].
    x, a: (K, ...) workspace buffers."""
    xs, steps = ws.unbind(x, 0), ws.unbind(a, 0)
    if reverse:
        for k in range(len(xs) - 2, -1, -1):
            xs[k].addcmul_(steps[k + 1], xs[k + 1])
    else:
        for k in range(1, len(xs)):
            xs[k].addcmul_(steps[k], xs[k - 1])


class _States:
    """One segment's decays a, decays from each chunk's start P, true states h (all (K, b, G, N, nc, dg), in
    the workspace), the true state entering each chunk (nc, b, G, N, dg), and the state leaving the segment."""

    def __init__(self, exponents: Tensor, A6: Tensor, du: Tensor, Bk: Tensor, carry: Tensor, ws: _Workspace):
        """exponents: (2, K, b, G, 1, nc, dg), dt and its in-chunk running sum; du: (K, b, G, 1, nc, dg);
        Bk: (K, b, G, N, nc, 1); carry: (b, G, N, dg), the state entering the segment."""
        shape = torch.broadcast_shapes(exponents.shape[1:], A6.shape, Bk.shape)
        self.a, self.from_start = ws.unbind(_decays(exponents, A6, ws.get("decays", (2, *shape))), 0)
        self.h = torch.mul(du, Bk, out=ws.get("h", shape))
        _in_chunk_recurrence(self.h, self.a, reverse=False, ws=ws)
        # Across chunks: E_c = P_end[c-1] E_{c-1} + h_local_end[c-1], from the local (uncorrected) chunk ends.
        self.entering = ws.get("entering", (shape[4], *carry.shape))
        ends, end_decays = ws.unbind(self.h[-1], 3), ws.unbind(self.from_start[-1], 3)
        entering = ws.unbind(self.entering, 0)
        entering[0].copy_(carry)
        for c in range(1, len(entering)):
            torch.addcmul(ends[c - 1], end_decays[c - 1], entering[c - 1], out=entering[c])
        self.carry_out = torch.addcmul(ends[-1], end_decays[-1], entering[-1])
        self.h.addcmul_(self.from_start, self.entering.movedim(0, 3))


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
        blocks = _Blocks(length, chunk, seg_len, groups)
        exponents = blocks.decay_exponents(dt)
        du_b, B_b, C_b = blocks.per_channel(du), blocks.per_group(Bg), blocks.per_group(Cg)

        y_b = torch.empty(blocks.segments, chunk, batch, groups, blocks.chunks_per_segment, dim // groups,
                          dtype=torch.float32, device=u.device)
        carry = torch.zeros(batch, groups, n_state, dim // groups, dtype=torch.float32, device=u.device)
        carries = []
        ws = _Workspace(u.device)
        for s in range(blocks.segments):
            carries.append(carry)
            states = _States(exponents[s], A6, du_b[s], B_b[s], carry, ws)
            carry = states.carry_out
            torch.sum(states.h.mul_(C_b[s]), dim=3, out=y_b[s])
        y = blocks.to_sequence(y_b)
        if D is not None:
            y = y + uf * D.float()[:, None]
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

        blocks = _Blocks(length, chunk, seg_len, groups)
        exponents = blocks.decay_exponents(dt, with_after=True)
        du_b, B_b, C_b, gy_b = (blocks.per_channel(du), blocks.per_group(Bg), blocks.per_group(Cg),
                                blocks.per_channel(g_y))
        g_dt_b = torch.empty_like(du_b[:, :, :, :, 0])  # (S, K, b, G, nc, dg)
        g_du_b = torch.empty_like(g_dt_b)
        g_B_b = torch.empty_like(B_b[..., 0])  # (S, K, b, G, N, nc)
        g_C_b = torch.empty_like(g_B_b)
        g_A = torch.zeros_like(A6[0, 0, :, :, 0])  # (G, N, dg)
        right = torch.zeros_like(carries[0])  # adjoint flowing into the segment from its right
        ws = _Workspace(u.device)
        for s in reversed(range(blocks.segments)):
            states = _States(exponents[s, :2], A6, du_b[s], B_b[s], carries[s], ws)
            a, h = states.a, states.h
            # P is no longer needed: its buffer takes after_k = prod of a over the chunk's steps after k.
            after = _decays(exponents[s, 2], A6, out=states.from_start)

            # Adjoint lambda_t = C_t g_t + a_{t+1} lambda_{t+1}: locally inside chunks (in reverse), then the
            # adjoint entering each chunk from its right, F_c = a_first[c+1] lambda_first[c+1], right to left.
            lam = torch.mul(gy_b[s], C_b[s], out=ws.get("lam", a.shape))
            _in_chunk_recurrence(lam, a, reverse=True, ws=ws)
            from_right = ws.get("from_right", states.entering.shape)  # (nc, b, G, N, dg)
            firsts, after_firsts, a_firsts = (ws.unbind(t[0], 3) for t in (lam, after, a))
            flows = ws.unbind(from_right, 0)
            flows[-1].copy_(right)
            for c in range(len(flows) - 1, 0, -1):
                torch.addcmul(firsts[c], after_firsts[c], flows[c], out=flows[c - 1]).mul_(a_firsts[c])
            right = torch.addcmul(firsts[0], after_firsts[0], flows[0]).mul_(a_firsts[0])
            lam.addcmul_(after, from_right.movedim(0, 3))

            # Gradients of this segment's inputs (tmp: one scratch buffer for the products).
            tmp = ws.get("tmp", a.shape)
            dt_k, du_k = exponents[s, 0], du_b[s]
            torch.sum(torch.mul(gy_b[s], h, out=tmp), dim=5, out=g_C_b[s])
            h_prev = ws.get("h_prev", a.shape)
            h_prev[0] = states.entering.movedim(0, 3)
            h_prev[1:] = h[:-1]
            g_log = h_prev.mul_(lam).mul_(a)  # d loss / d (dt A)
            g_A += torch.mul(g_log, dt_k, out=tmp).sum(dim=(0, 1, 4))
            torch.sum(torch.mul(g_log, A6, out=tmp), dim=3, out=g_dt_b[s])
            torch.sum(torch.mul(lam, du_k, out=tmp), dim=5, out=g_B_b[s])
            torch.sum(torch.mul(lam, B_b[s], out=tmp), dim=3, out=g_du_b[s])

        g_du = blocks.to_sequence(g_du_b)
        g_dt = blocks.to_sequence(g_dt_b) + g_du * uf
        grad_u = g_du * dt
        grad_D = None
        if D is not None:
            grad_u += g_y * D.float()[:, None]
            if ctx.needs_input_grad[5]:
                grad_D = (g_y * uf).sum(dim=(0, 2)).to(D.dtype)
        g_raw = g_dt * torch.sigmoid(raw) if ctx.delta_softplus else g_dt
        grad_bias = g_raw.sum(dim=(0, 2)).to(delta_bias.dtype) if delta_bias is not None else None
        n_state = A.shape[1]
        return (
            grad_u.to(u.dtype),
            g_raw.to(delta.dtype),
            g_A.permute(0, 2, 1).reshape(dim, n_state).to(A.dtype),
            _grad_from_groups(_regroup(blocks.group_to_sequence(g_B_b), B, dim), B),
            _grad_from_groups(_regroup(blocks.group_to_sequence(g_C_b), C, dim), C),
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
