"""Chunked, vectorised selective scan in plain PyTorch, with a hand-written backward: the fallback on every
device (the CPU's scan where numba is missing, the GPU's where neither mamba-ssm nor Triton is).

The recurrence (per batch b, channel d, state n; a_t = exp(dt_t A), x_t = dt_t u_t B_t):

    h_t = a_t h_{t-1} + x_t,        y_t = <C_t, h_t> + D u_t,        out_t = y_t silu(z_t)

is linear in h, so it is solved in three sweeps instead of L sequential steps (see `_States`):

1. the sequence is cut into chunks of K steps; inside every chunk at once, the recurrence from a zero state
   gives each chunk's local end state (K - 1 steps, each covering all chunks);
2. across chunks, one multiply-add per chunk gives the true state entering each chunk,
   E_c = P_c E_{c-1} + end_{c-1}, where P_c = exp(A * the chunk's sum of dt) is the decay over a whole chunk;
3. inside every chunk at once, the recurrence again, now from E_c: the true states, contracted with C.

Decay exponents are clamped at -80 where they can fall that low: exp(-80) ~ 2e-35 is zero for every purpose
here, and x86 CPUs take a ~100x slower path for exp results that underflow. (Flushing denormals to zero does
not help there: `torch.set_flush_denormal` sets the calling thread only, not PyTorch's worker threads.)

Long sequences are processed in *segments* of several chunks, the state carried from segment to segment, so
the (N times larger) state tensors exist for one segment at a time. The backward pass runs the adjoint
recurrence lambda_t = C_t g_t + a_{t+1} lambda_{t+1} the same way in reverse, recomputing states segment by
segment, so memory stays at O(batch * dim * L) plus one segment of states, never O(batch * dim * L * N).

Inputs are rearranged once, for the whole sequence, into blocks (see `_Blocks`): segment s, step k of a chunk,
chunk c of the segment, batch, G groups of dg channels sharing B and C (G = 1 for Mamba's (batch, N, L) B and
C), N states, channel. One step of every chunk is then one contiguous slab, channels are innermost so that
elementwise operations run over contiguous rows, and sums over N or over channels are batched matrix products
over (N, dg) blocks (one pass, no temporary). On the CPU, scratch buffers persist between calls (one
workspace per thread, see `_Workspace`).
"""

from __future__ import annotations

import contextlib
import math
import threading

import torch
import torch.nn.functional as F
from torch import Tensor

from ..common import as_groups, check_scan_args, grad_from_groups, regroup

# State elements (batch * dim * N * segment length) of one segment on the CPU, and the chunk length there
# (chosen by timing `vivim-core benchmark --suite scan --device cpu` at b1 d64 L4096 N16). What matters most is that
# one step of all chunks, CPU_SEGMENT_ELEMENTS / K elements, is large enough for PyTorch to split over the cores (it
# keeps operations below 32,768 elements on one thread); the state buffers then live in the last-level cache.
CPU_SEGMENT_ELEMENTS = 2**22
CPU_CHUNK = 32

# Decay exponents below this are clamped, where they can occur: exp(-80) ~ 1.8e-35 is zero for every purpose
# here, and PyTorch's vectorised exp on x86 takes a ~100x slower path for results that underflow.
MIN_EXPONENT = -80.0


def _pow2_near_sqrt(n: int) -> int:
    return max(1, 2 ** round(math.log2(math.sqrt(max(n, 1)))))


def plan_chunks(length: int, state_elems_per_step: int, on_cuda: bool) -> tuple[int, int]:
    """(K, S): chunk length K and segment length S (a multiple of K) for a sequence of `length` steps.

    state_elems_per_step = batch * dim * N. On the GPU one segment covers the whole sequence. K near
    sqrt(S) balances the 2 (K - 1) in-chunk steps against the S / K across-chunk steps; on the CPU K is at most
    CPU_CHUNK, so that each in-chunk step covers many chunks (see CPU_SEGMENT_ELEMENTS).
    """
    if on_cuda:
        segment = length
        chunk = min(_pow2_near_sqrt(segment), 256)
    else:
        fit = max(16, CPU_SEGMENT_ELEMENTS // max(state_elems_per_step, 1))
        segment = min(length, 2 ** int(math.log2(fit)))
        chunk = min(_pow2_near_sqrt(segment), CPU_CHUNK)
    segment = -(-segment // chunk) * chunk
    return chunk, segment


def _A_layout(A: Tensor, groups: int) -> Tensor:
    """(dim, N) -> (1, 1, 1, G, N, dg) float32, broadcasting against a segment's (K, nc, b, G, N, dg) states."""
    dim, n_state = A.shape
    return A.float().reshape(groups, dim // groups, n_state).permute(0, 2, 1)[None, None, None].contiguous()


def _laid_out(view: Tensor, ws: "_Workspace | None", name: str) -> Tensor:
    """A contiguous copy of a permuted view: fresh, or in a workspace buffer."""
    if ws is None:
        return view.contiguous()
    return ws.get(name, view.shape).copy_(view)


class _Blocks:
    """The whole sequence rearranged once for segment-by-segment work: S segments of nc chunks of K steps,
    zero-padded at the end (a padded step has x = 0 and a = 1, so it changes nothing before it).

    A segment's states are laid out (K, nc, b, G, N, dg): step k of the chunk outermost, so that one step of all
    chunks is one contiguous slab, and (N, dg) innermost, so that contracting over N (with C) or over dg is one
    batched matrix product over the K * nc * b * G positions.
    """

    def __init__(self, length: int, chunk: int, segment_length: int, groups: int):
        self.length, self.chunk, self.groups = length, chunk, groups
        self.chunks_per_segment = segment_length // chunk
        self.segments = -(-length // segment_length)
        self.padded_length = self.segments * segment_length

    def _pad(self, x: Tensor) -> Tensor:
        pad = self.padded_length - x.shape[-1]
        return F.pad(x, (0, pad)) if pad else x

    @staticmethod
    def chunk_sums(x_blocks: Tensor, skip_first: bool = False) -> Tensor:
        """(S, K, nc, b, G, 1, dg) -> (S, nc, b, G, 1, dg): the sum of x over each chunk's steps (with
        skip_first, over the steps after the chunk's first). A sum over an outer axis of the block layout: ~5x
        faster on a CPU than summing the sequence layout's innermost axis and rearranging."""
        return (x_blocks[:, 1:] if skip_first else x_blocks).sum(dim=1)

    def per_channel(self, x: Tensor, ws: _Workspace | None = None, name: str = "") -> Tensor:
        """(*lead, b, d, L) -> (S, *lead, K, nc, b, G, 1, dg), contiguous (in workspace buffer `name` if given)."""
        x = self._pad(x)
        *lead, b, d, _ = x.shape
        x = x.reshape(*lead, b, self.groups, d // self.groups, self.segments, self.chunks_per_segment, self.chunk)
        n = len(lead)
        order = (n + 3, *range(n), n + 5, n + 4, n, n + 1, n + 2)  # S, lead, K, nc, b, G, dg
        return _laid_out(x.permute(order).unsqueeze(-2), ws, name)

    def per_group(self, m: Tensor, ws: _Workspace | None = None, name: str = "") -> Tensor:
        """(b, G, N, L) -> (S, K, nc, b, G, N), contiguous (in workspace buffer `name` if given)."""
        m = self._pad(m)
        b, g, n, _ = m.shape
        m = m.reshape(b, g, n, self.segments, self.chunks_per_segment, self.chunk)
        return _laid_out(m.permute(3, 5, 4, 0, 1, 2), ws, name)

    def to_sequence(self, y: Tensor, ws: _Workspace | None = None, u: Tensor | None = None,
                    D: Tensor | None = None) -> Tensor:
        """(S, K, nc, b, G, dg) -> (b, d, L): a tensor of its own, or with ws in scratch buffer "y_seq". Given
        u (b, d, L) and D (d,), returns y + D u, added while rearranging (one pass instead of two)."""
        b, g, dg = y.shape[3:]
        y = y.permute(3, 4, 5, 0, 2, 1)  # (b, G, dg, S, nc, K): the sequence's order
        out = ws.get("y_seq", y.shape) if ws is not None else torch.empty(y.shape, dtype=y.dtype, device=y.device)
        if D is None:
            out.copy_(y)
        else:
            torch.addcmul(y, self._pad(u).view(y.shape), D.float().view(1, g, dg, 1, 1, 1), out=out)
        return out.view(b, g * dg, self.padded_length)[..., : self.length]

    def group_to_sequence(self, g: Tensor) -> Tensor:
        """(S, K, nc, b, G, N) -> (b, G, N, L)."""
        b, groups, n = g.shape[3:]
        return g.permute(3, 4, 5, 0, 2, 1).reshape(b, groups, n, self.padded_length)[..., : self.length]


class _Workspace:
    """Scratch buffers for one scan's segments, and cached per-step views of them.

    On the CPU the buffers outlive the call (one workspace per thread, see `_workspace`): a forward allocating
    its scratch afresh spends much of its time in page faults. Each name
    owns one flat buffer, grown to the largest size asked for and viewed in the shape asked for, so that scans
    of several shapes in turn (a model's stages) share it instead of reallocating. On a GPU a workspace lives
    for one call: its buffers cover the whole sequence there and can be large.
    """

    def __init__(self, device: torch.device):
        self.device, self.flat, self.views = device, {}, {}

    def unbind(self, t: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
        """t.unbind(dim), made once per view of a workspace buffer (creating ~1,000 views per segment cost
        ~10 % of a CPU forward)."""
        key = (t.data_ptr(), t.shape, t.stride(), dim)
        if key not in self.views:
            if len(self.views) >= MAX_CACHED_VIEWS:  # calls of ever new shapes (a long-lived CPU workspace)
                self.views.clear()
            self.views[key] = t.unbind(dim)
        return self.views[key]

    def get(self, name: str, shape) -> Tensor:
        """A float32 buffer of this shape, contents undefined; the same memory each time for a name."""
        shape = torch.Size(shape)
        flat = self.flat.get(name)
        if flat is None or flat.numel() < shape.numel():
            with torch.inference_mode(False):  # a normal tensor, usable in and out of inference mode later
                flat = self.flat[name] = torch.empty(shape.numel(), dtype=torch.float32, device=self.device)
            self.views.clear()  # cached views may hold the old buffer
        return flat[: shape.numel()].view(shape)


_cpu_workspaces = threading.local()
MAX_CACHED_VIEWS = 256  # unbound tuples kept per workspace; one forward of a segment uses ~15


def _workspace(device: torch.device) -> _Workspace:
    """This thread's persistent CPU workspace, or a fresh one for a GPU."""
    if device.type != "cpu":
        return _Workspace(device)
    ws = getattr(_cpu_workspaces, "ws", None)
    if ws is None:
        ws = _cpu_workspaces.ws = _Workspace(device)
    return ws


def _steps_may_underflow(dt: Tensor, A: Tensor, nonnegative: bool = False) -> bool:
    """Whether some step's exponent dt * A may fall below MIN_EXPONENT, so that the per-step decays need the
    clamp (a pass over the state). A bound from the largest |dt| and |A| (nonnegative: dt >= 0, as after
    softplus, so one reduction instead of two); always True on a GPU, where the clamp is cheap and asking would
    wait for the device. (The decays over whole chunks are always clamped: they are small.)"""
    if dt.is_cuda:
        return True
    largest = float(dt.amax()) if nonnegative else max(float(dt.amax()), -float(dt.amin()))
    return largest * float(A.abs().amax()) > -MIN_EXPONENT


def _decays(exponents: Tensor, A: Tensor, out: Tensor, clamp: bool = True) -> Tensor:
    """exp(exponents * A) into `out`; exponents (..., 1, dg) are dt or sums of dt, A as laid out by `_A_layout`
    (or its [0]); clamp: at MIN_EXPONENT first."""
    torch.mul(exponents, A, out=out)
    if clamp:
        out.clamp_min_(MIN_EXPONENT)
    return out.exp_()


def _contract(left: Tensor, right: Tensor, out: Tensor) -> Tensor:
    """Batched matrix product over all leading positions: left (..., p, q) @ right (..., q, r) into out
    (..., p, r), the positions flattened (all three contiguous). Sums over N or dg without a temporary."""
    def flat(t):
        return t.view(-1, *t.shape[-2:])
    return torch.bmm(flat(left), flat(right), out=flat(out))


def _in_chunk_recurrence(x: Tensor, a: Tensor, reverse: bool, ws: _Workspace) -> None:
    """In place, inside every chunk: x[k] += a[k] * x[k - 1] or, reversed, x[k] += a[k + 1] * x[k + 1].
    x, a: (K, ...) workspace buffers."""
    xs, steps = ws.unbind(x), ws.unbind(a)
    if reverse:
        for k in range(len(xs) - 2, -1, -1):
            xs[k].addcmul_(steps[k + 1], xs[k + 1])
    else:
        for k in range(1, len(xs)):
            xs[k].addcmul_(steps[k], xs[k - 1])


def _local_end(xs: tuple[Tensor, ...], steps: tuple[Tensor, ...], out: Tensor, reverse: bool = False) -> Tensor:
    """The recurrence from zero over every chunk's steps with only the running state kept, into `out`: each
    chunk's local end state (x[k] += a[k] x[k-1], ending at the last step) or, reversed, its local value at the
    first step (x[k] += a[k+1] x[k+1], ending at step 0). xs, steps: per-step slabs, as `_Workspace.unbind`."""
    if reverse:
        out.copy_(xs[-1])
        for k in range(len(xs) - 2, -1, -1):
            torch.addcmul(xs[k], steps[k + 1], out, out=out)
    else:
        out.copy_(xs[0])
        for k in range(1, len(xs)):
            torch.addcmul(xs[k], steps[k], out, out=out)
    return out


def _across_chunks(ends: Tensor, chunk_dt: Tensor, A: Tensor, carry: Tensor, ws: _Workspace) -> tuple[Tensor, Tensor]:
    """The true state entering every chunk of a segment, (nc, b, G, N, dg), and the state leaving it:
    entering[0] = carry, entering[c] = P_{c-1} entering[c-1] + ends[c-1], with P_c = exp(A * chunk_dt[c]) the
    decay over chunk c. ends: (nc, b, G, N, dg), each chunk's local end state; chunk_dt: (nc, b, G, 1, dg); A:
    (1, G, N, dg)."""
    decays = _decays(chunk_dt, A, ws.get("chunk_decays", ends.shape))
    entering = ws.get("entering", ends.shape)
    steps, ends, decays = ws.unbind(entering), ws.unbind(ends), ws.unbind(decays)
    steps[0].copy_(carry)
    for c in range(1, len(steps)):
        torch.addcmul(ends[c - 1], decays[c - 1], steps[c - 1], out=steps[c])
    return entering, torch.addcmul(ends[-1], decays[-1], steps[-1])


def _fuse_steps(device: torch.device) -> bool:
    """Whether the sweeps form decays, inputs and outputs step by step (see `_States`): on the CPU."""
    return device.type == "cpu"


class _States:
    """One segment of the recurrence: decays a, true states h (both (K, nc, b, G, N, dg), in the workspace), the
    true state entering each chunk (nc, b, G, N, dg) and the state leaving the segment; or, given C and an
    output, y = <C, h> at every step without keeping a or h (streamed: the forward pass on the CPU).

    Three sweeps: (1) every chunk's local end state, the recurrence run from zero over the chunk's steps with
    only the running state kept; (2) across chunks, the true state entering each, E_c = P_c E_{c-1} + end_{c-1},
    with P_c = exp(A * the chunk's sum of dt) the decay over a whole chunk; (3) the recurrence run again inside
    every chunk, now from E_c. Each step of a sweep covers all chunks: a (nc, b, G, N, dg) slab.

    Streamed, each step's decays, its input x = dt u B and its contraction with C are computed inside the
    sweeps, on slabs that stay in cache from one operation to the next; decays are computed again in sweep 3
    rather than stored (on a CPU, writing them to a state-sized buffer costs more than a second exp). Otherwise (states kept for the backward, or on a GPU,
    where each operation is a kernel launch) decays and x are formed for all steps at once and the sweeps are
    one multiply-add per step.
    """

    def __init__(self, dt: Tensor, chunk_dt: Tensor, A6: Tensor, du: Tensor, Bk: Tensor, carry: Tensor,
                 ws: _Workspace, clamp: bool = True, C: Tensor | None = None, y: Tensor | None = None):
        """dt, du: (K, nc, b, G, 1, dg); chunk_dt: (nc, b, G, 1, dg), dt summed over each chunk; Bk, C:
        (K, nc, b, G, N), B and C at each step; carry: (b, G, N, dg), the state entering the segment; clamp:
        whether a step's decay exponent may fall below MIN_EXPONENT (see `_steps_may_underflow`); y:
        (K, nc, b, G, 1, dg), written with <C, h> when C is given."""
        Bk = Bk[..., None]
        shape = torch.broadcast_shapes(dt.shape, A6.shape, Bk.shape)
        K, slab = shape[0], shape[1:]
        A = A6[0]
        dus, Bs = ws.unbind(du), ws.unbind(Bk)
        streamed = C is not None and _fuse_steps(dt.device)
        if streamed:  # this step's and the last's
            self.a, self.h = ws.get("a", (2, *slab)), ws.get("h", (2, *slab))
        else:
            self.a = _decays(dt, A6, ws.get("a", shape), clamp)
            self.h = torch.mul(du, Bk, out=ws.get("h", shape))  # x, turned into h in place by sweep 3
        a_steps, h_steps = ws.unbind(self.a), ws.unbind(self.h)
        dts = ws.unbind(dt)

        ends = ws.get("ends", slab)
        if streamed:
            torch.mul(dus[0], Bs[0], out=ends)
            for k in range(1, K):
                ends.mul_(_decays(dts[k], A, a_steps[k % 2], clamp)).addcmul_(dus[k], Bs[k])
        else:
            _local_end(h_steps, a_steps, ends)

        self.entering, self.carry_out = _across_chunks(ends, chunk_dt, A, carry, ws)

        if streamed:  # y_k = <C_k, h_k> as (1, N) @ (N, dg) over the slab's positions
            previous = self.entering
            Cs, ys = ws.unbind(C.view(K, -1, 1, C.shape[-1])), ws.unbind(y.view(K, -1, 1, y.shape[-1]))
            h_matrices = ws.unbind(self.h.view(2, -1, *slab[-2:]))
            for k in range(K):
                h_k = h_steps[k % 2]
                decay = _decays(dts[k], A, a_steps[k % 2], clamp)
                torch.mul(decay, previous, out=h_k).addcmul_(dus[k], Bs[k])
                torch.bmm(Cs[k], h_matrices[k % 2], out=ys[k])
                previous = h_k
            return
        h_steps[0].addcmul_(a_steps[0], self.entering)
        _in_chunk_recurrence(self.h, self.a, reverse=False, ws=ws)
        if C is not None:
            _contract(C[..., None, :], self.h, out=y)


@contextlib.contextmanager
def _flush_denormals():
    """Decay products and states underflow towards zero; on x86 CPUs arithmetic on the subnormal numbers
    on the way is ~100x slower (a forward of vivim-tiny 35x slower). Values below 1.2e-38 do
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
    def _prepare(u, delta, A, B, C, delta_bias, delta_softplus, ws: _Workspace, groups=None):
        """Float32 inputs shared by forward and backward: B, C as (b, G, N, L), raw delta, dt, dt * u (the last
        three in workspace buffers), A6."""
        batch, dim, length = u.shape
        Bg, Cg = as_groups(B.float(), batch, length), as_groups(C.float(), batch, length)
        if groups is None:
            groups = Bg.shape[1] if Bg.shape[1] == Cg.shape[1] else dim  # mixed conventions: a group per channel
        if Bg.shape[1] != groups:
            Bg = Bg.repeat_interleave(dim // Bg.shape[1], dim=1)
        if Cg.shape[1] != groups:
            Cg = Cg.repeat_interleave(dim // Cg.shape[1], dim=1)
        raw = delta.float()
        if delta_bias is not None:
            raw = torch.add(raw, delta_bias.float()[:, None], out=ws.get("raw", u.shape))
        dt = torch.ops.aten.softplus.out(raw, 1, 20, out=ws.get("dt_seq", u.shape)) if delta_softplus else raw
        uf = u.float()
        return Bg, Cg, groups, raw, dt, uf, torch.mul(dt, uf, out=ws.get("du_seq", u.shape)), _A_layout(A, groups)

    @staticmethod
    def _forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        batch, dim, length = u.shape
        n_state = A.shape[1]
        ws = _workspace(u.device)
        Bg, Cg, groups, _, dt, uf, du, A6 = _ChunkedScan._prepare(u, delta, A, B, C, delta_bias, delta_softplus, ws)
        chunk, seg_len = plan_chunks(length, batch * dim * n_state, u.is_cuda)
        blocks = _Blocks(length, chunk, seg_len, groups)
        dt_b = blocks.per_channel(dt, ws, "dt")
        chunk_dt = blocks.chunk_sums(dt_b)
        du_b, B_b, C_b = blocks.per_channel(du, ws, "du"), blocks.per_group(Bg, ws, "B"), blocks.per_group(Cg, ws, "C")
        clamp = _steps_may_underflow(dt_b, A6, nonnegative=delta_softplus)

        y_b = ws.get("y", du_b.shape)  # (S, K, nc, b, G, 1, dg)
        carry = torch.zeros(batch, groups, n_state, dim // groups, dtype=torch.float32, device=u.device)
        carries = []
        for s in range(blocks.segments):
            carries.append(carry)
            carry = _States(dt_b[s], chunk_dt[s], A6, du_b[s], B_b[s], carry, ws, clamp, C=C_b[s], y=y_b[s]).carry_out
        # y is saved for the backward or returned as it is: then a tensor of its own, else scratch.
        own_y = z is None or any(ctx.needs_input_grad)
        y = blocks.to_sequence(y_b[..., 0, :], None if own_y else ws, uf, D)  # y + D u
        out = torch.mul(y, torch.ops.aten.silu.out(z.float(), out=ws.get("gate", z.shape))) if z is not None else y

        ctx.delta_softplus = delta_softplus
        ctx.plan = (chunk, seg_len, groups)
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, y, torch.stack(carries))
        return out.to(u.dtype)

    @staticmethod
    def _backward(ctx, grad_out):
        u, delta, A, B, C, D, z, delta_bias, y, carries = ctx.saved_tensors
        chunk, seg_len, groups = ctx.plan
        batch, dim, length = u.shape
        ws = _workspace(u.device)
        Bg, Cg, _, raw, dt, uf, du, A6 = _ChunkedScan._prepare(u, delta, A, B, C, delta_bias, ctx.delta_softplus,
                                                             ws, groups)

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
        dt_b = blocks.per_channel(dt, ws, "dt")
        chunk_dt = blocks.chunk_sums(dt_b)
        after_first_dt = blocks.chunk_sums(dt_b, skip_first=True)  # decay from a chunk's first step to its end
        du_b, B_b, C_b, gy_b = (blocks.per_channel(du, ws, "du"), blocks.per_group(Bg, ws, "B"),
                                blocks.per_group(Cg, ws, "C"), blocks.per_channel(g_y, ws, "g_y"))
        clamp = _steps_may_underflow(dt_b, A6, nonnegative=ctx.delta_softplus)
        g_dt_b = ws.get("g_dt", du_b.shape)  # (S, K, nc, b, G, 1, dg)
        g_du_b = ws.get("g_du", du_b.shape)
        g_B_b = ws.get("g_B", B_b.shape)  # (S, K, nc, b, G, N)
        g_C_b = ws.get("g_C", B_b.shape)
        g_A = torch.zeros_like(A6[0, 0, 0])  # (G, N, dg)
        right = torch.zeros_like(carries[0])  # adjoint flowing into the segment from its right
        for s in reversed(range(blocks.segments)):
            states = _States(dt_b[s], chunk_dt[s], A6, du_b[s], B_b[s], carries[s], ws, clamp)
            a, h = states.a, states.h

            # Adjoint lambda_t = C_t g_t + a_{t+1} lambda_{t+1}, in three sweeps as the states: each chunk's
            # local adjoint at its first step (from zero at its end); the adjoint entering each chunk's last
            # step from its right, F_{c-1} = a_first[c] (first[c] + after_first[c] F_c), right to left; then
            # the reverse recurrence again inside every chunk, from F_c, in place.
            lam = torch.mul(gy_b[s], C_b[s][..., None], out=ws.get("lam", a.shape))
            lams = ws.unbind(lam)
            firsts = _local_end(lams, ws.unbind(a), ws.get("firsts", a.shape[1:]), reverse=True)
            after_first = _decays(after_first_dt[s], A6[0], ws.get("after_first", a.shape[1:]))
            from_right = ws.get("from_right", a.shape[1:])  # (nc, b, G, N, dg)
            firsts, after_first, a_firsts = ws.unbind(firsts), ws.unbind(after_first), ws.unbind(a[0])
            flows = ws.unbind(from_right)
            flows[-1].copy_(right)
            for c in range(len(flows) - 1, 0, -1):
                torch.addcmul(firsts[c], after_first[c], flows[c], out=flows[c - 1]).mul_(a_firsts[c])
            right = torch.addcmul(firsts[0], after_first[0], flows[0]).mul_(a_firsts[0])
            lams[-1].add_(from_right)
            _in_chunk_recurrence(lam, a, reverse=True, ws=ws)

            # Gradients of this segment's inputs; sums over dg or N as batched matrix products.
            _contract(h, gy_b[s].transpose(-1, -2), out=g_C_b[s][..., None])  # (N, dg) @ (dg, 1)
            _contract(lam, du_b[s].transpose(-1, -2), out=g_B_b[s][..., None])
            _contract(B_b[s][..., None, :], lam, out=g_du_b[s])  # (1, N) @ (N, dg)
            h_prev = ws.get("h_prev", a.shape)
            h_prev[0] = states.entering
            h_prev[1:] = h[:-1]
            g_log = h_prev.mul_(lam).mul_(a)  # d loss / d (dt A)
            tmp = ws.get("tmp", a.shape)
            g_A += torch.mul(g_log, dt_b[s], out=tmp).sum(dim=(0, 1, 2))
            torch.sum(torch.mul(g_log, A6, out=tmp), dim=-2, keepdim=True, out=g_dt_b[s])

        g_du = blocks.to_sequence(g_du_b[..., 0, :])
        g_dt = blocks.to_sequence(g_dt_b[..., 0, :]) + g_du * uf
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
            grad_from_groups(regroup(blocks.group_to_sequence(g_B_b), B, dim), B),
            grad_from_groups(regroup(blocks.group_to_sequence(g_C_b), C, dim), C),
            grad_D,
            grad_z,
            grad_bias,
            None,
        )


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
