"""Lesion identities for the model's proposals: its foreground split into lesions, each given the id of the same
lesion on the frames around it, so "lesion 2" is the same nodule through the clip.

    regions = split_regions(probability >= 0.5)            # in the proposal workers (parallel, ~1-3 ms at 1080p)
    ids = assign_ids(regions, previous, remembered, anchors, new_id)   # in frame order (~1 ms at 1080p)

Splitting: 8-connected components; those of at least `min_area` pixels are lesions, smaller ones (specks,
fragments of a rim) join the nearest lesion, so the union of the lesions stays exactly the model's mask.

Matching, in order, each step only for the regions still without an id:
1. the frame's own mask before this proposal (a re-proposal keeps the frame's ids, also those a human fixed by
   relabelling), by IoU on a grid of at most ~500 pixels a side;
2. the previous frame's lesions carried by their own motion (the centroid's velocity between the two frames
   before), by IoU, or by centroid distance within a lesion diameter when they do not overlap, together with
   the lesions seen in the last frames but not in the previous one (it left the view, or touched another) by
   centroid distance: one-to-one (Hungarian), so two lesions parting after they touched get their ids back. A
   region left over that mostly lies where a matched lesion was is a fragment of it and takes its id. Then a
   region and a previous lesion still unmatched, each the other's unambiguous nearest within three diameters,
   are the same lesion moving fast;
3. the next frame a human labelled (an anchor), by centroid distance;
4. a new id (one more than any id the video has used).
When the proposals reach a human frame, the ids they gave on the frame before it are matched to the human's by
IoU; a new id that the human calls otherwise is renamed back along the frames that carried it
(`ProposalMixin._reconcile_with_anchor`), so lesions appearing before a human frame end with the human's ids.
Optical flow is not used here: on a 2-core CPU it costs more than the rest of a proposal's writing (see
`benchmarks/studio_lesion_tracking.py`), and a centroid's velocity carries a lesion well between consecutive
frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from .lesions import present_ids
from .status import MAX_LESION_ID

MIN_AREA_PX = 16
MIN_AREA_FRACTION = 1e-4  # of the frame: 207 pixels at 1080p
GRID_SIDE = 512  # IoU is computed on a grid at most about this many pixels a side
GATE_DIAMETERS = 1.0  # centroids further apart than this many lesion diameters never match
WIDE_GATE_DIAMETERS = 3.0  # a lone lesion that moved this far (a fast sweep) still keeps its id
AMBIGUITY_RATIO = 2.0  # ...when every other candidate is at least this many times further away
FRAGMENT_SHARE = 0.5  # a region lying at least this much where a matched lesion was is a fragment of it
NO_MATCH = 1e6


def min_area(frame_size: tuple[int, int]) -> int:
    """The smallest component that counts as a lesion of its own, in pixels."""
    return max(MIN_AREA_PX, int(frame_size[0] * frame_size[1] * MIN_AREA_FRACTION))


def grid_stride(frame_size: tuple[int, int]) -> int:
    return max(1, max(frame_size) // GRID_SIDE)


@dataclass
class Regions:
    """A proposal's foreground split into lesions: `labels` uint8 (H, W), 0 background, 1..K; per region
    (index r - 1) its pixel count, box (x0, y0, x1, y1) end-exclusive and centroid (x, y)."""

    labels: np.ndarray
    areas: list[int] = field(default_factory=list)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    centroids: list[tuple[float, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.areas)


@dataclass
class Reference:
    """A lesion seen on another frame: its id, centroid (x, y), area, velocity (pixels a frame) and, for the
    previous frame's lesions, its pixels on the IoU grid (bool)."""

    id: int
    centroid: tuple[float, float]
    area: int
    velocity: tuple[float, float] = (0.0, 0.0)
    grid_mask: np.ndarray | None = None


def split_regions(foreground: np.ndarray, smallest: int | None = None) -> Regions:
    """Split a bool (H, W) foreground into lesions (see the module docstring)."""
    h, w = foreground.shape
    labels = np.zeros((h, w), np.uint8)
    rows = np.flatnonzero(foreground.any(axis=1))
    if len(rows) == 0:
        return Regions(labels)
    cols = np.flatnonzero(foreground[rows[0]:rows[-1] + 1].any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = np.ascontiguousarray(foreground[y0:y1, x0:x1]).view(np.uint8)
    count, components, stats, centroids = cv2.connectedComponentsWithStats(crop, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.int64)
    centres = centroids[1:] + (x0, y0)
    smallest = min_area((h, w)) if smallest is None else smallest
    order = np.argsort(-areas, kind="stable")
    big = [int(c) for c in order if areas[c] >= smallest][:MAX_LESION_ID]
    region_of = np.zeros(count, np.int64)  # component (1-based) -> region (1-based)
    if not big:
        region_of[1:] = 1  # only specks: together, one lesion
    else:
        for r, c in enumerate(big, 1):
            region_of[c + 1] = r
        big_centres = centres[big]
        for c in range(count - 1):
            if region_of[c + 1] == 0:
                nearest = int(np.argmin(((big_centres - centres[c]) ** 2).sum(axis=1)))
                region_of[c + 1] = nearest + 1
    labels[y0:y1, x0:x1] = region_of.astype(np.uint8)[components]
    k = int(region_of.max())
    regions = Regions(labels)
    for r in range(1, k + 1):
        members = np.flatnonzero(region_of[1:] == r)
        area = int(areas[members].sum())
        left = stats[members + 1, cv2.CC_STAT_LEFT]
        top = stats[members + 1, cv2.CC_STAT_TOP]
        box = (int(left.min()) + x0, int(top.min()) + y0,
               int((left + stats[members + 1, cv2.CC_STAT_WIDTH]).max()) + x0,
               int((top + stats[members + 1, cv2.CC_STAT_HEIGHT]).max()) + y0)
        centre = (centres[members] * areas[members, None]).sum(axis=0) / area
        regions.areas.append(area)
        regions.boxes.append(box)
        regions.centroids.append((float(centre[0]), float(centre[1])))
    return regions


def previous_references(labels: np.ndarray, velocities: dict[int, tuple[float, float]]) -> list[Reference]:
    """The lesions of the previous frame's label map, with their pixels on the IoU grid."""
    stride = grid_stride(labels.shape)
    grid = labels[::stride, ::stride]
    found = []
    for lesion in present_ids(grid):
        mask = grid == lesion
        ys, xs = np.nonzero(mask)
        found.append(Reference(int(lesion), (float(xs.mean()) * stride, float(ys.mean()) * stride),
                               len(ys) * stride * stride, velocities.get(int(lesion), (0.0, 0.0)), mask))
    return found


def _shifted(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """`mask` moved by (dx, dy) grid cells (what leaves the grid is dropped)."""
    if dx == 0 and dy == 0:
        return mask
    out = np.zeros_like(mask)
    h, w = mask.shape
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = mask[max(-dy, 0):h - max(dy, 0),
                                                                      max(-dx, 0):w - max(dx, 0)]
    return out


def _distance_in_diameters(centre: tuple[float, float], area: int, reference: Reference,
                           frames_ahead: int = 1) -> float:
    px = reference.centroid[0] + reference.velocity[0] * frames_ahead
    py = reference.centroid[1] + reference.velocity[1] * frames_ahead
    diameter = 2.0 * math.sqrt(max(area, reference.area, 1) / math.pi)
    return math.hypot(centre[0] - px, centre[1] - py) / diameter


def _match_overlapping(regions: Regions, todo: list[int], references: list[Reference], taken: set[int],
                       remembered: list[Reference] = ()) -> dict[int, int]:
    """region index (0-based, among `todo`) -> id, one-to-one (Hungarian) among the lesions whose id is not
    `taken`: `references` (with their pixels) by IoU after motion, or centroid distance within the gate when they
    do not overlap; `remembered` lesions (no pixels) by centroid distance, in the same assignment, so that two
    lesions parting after they touched get their own ids back. A region left over that lies mostly where a
    matched or `taken` lesion was is a fragment of it and takes its id."""
    columns = [*references, *remembered]
    if not columns or not todo:
        return {}
    from scipy.optimize import linear_sum_assignment

    stride = grid_stride(regions.labels.shape)
    grid = regions.labels[::stride, ::stride]
    k = len(regions)
    region_cells = np.bincount(grid.ravel(), minlength=k + 1)[1:]
    overlap = np.zeros((k, len(references)))
    for j, reference in enumerate(references):
        carried = _shifted(reference.grid_mask, int(round(reference.velocity[0] / stride)),
                           int(round(reference.velocity[1] / stride)))
        overlap[:, j] = np.bincount(grid[carried], minlength=k + 1)[1:]
    reference_cells = np.array([r.grid_mask.sum() for r in references], float)
    union = region_cells[:, None] + reference_cells[None, :] - overlap
    iou = np.where(union > 0, overlap / np.maximum(union, 1), 0.0)
    cost = np.full((len(todo), len(columns)), NO_MATCH)
    for row, r in enumerate(todo):
        for j, reference in enumerate(columns):
            if reference.id in taken:
                continue
            if j < len(references) and iou[r, j] > 0:
                cost[row, j] = 1.0 - iou[r, j]
            else:
                distance = _distance_in_diameters(regions.centroids[r], regions.areas[r], reference,
                                                  1 if j < len(references) else 0)
                if distance <= GATE_DIAMETERS:
                    cost[row, j] = 1.0 + distance
    rows, cols = linear_sum_assignment(cost)
    matched = {todo[row]: columns[c].id for row, c in zip(rows, cols) if cost[row, c] < NO_MATCH}
    known = taken | set(matched.values())
    for r in todo:
        if r not in matched and region_cells[r] > 0 and len(references):
            j = int(np.argmax(overlap[r]))
            if overlap[r, j] >= FRAGMENT_SHARE * region_cells[r] and references[j].id in known:
                matched[r] = references[j].id
    return matched


def _match_by_distance(regions: Regions, todo: list[int], references: Iterable[Reference], taken: set[int],
                       frames_ahead: int = 1) -> dict[int, int]:
    """Greedy: the closest (region, reference) pairs within the gate first, ids not `taken`."""
    pairs = []
    for reference in references:
        if reference.id in taken:
            continue
        for r in todo:
            distance = _distance_in_diameters(regions.centroids[r], regions.areas[r], reference, frames_ahead)
            if distance <= GATE_DIAMETERS:
                pairs.append((distance, r, reference.id))
    matched: dict[int, int] = {}
    for _distance, r, lesion in sorted(pairs):
        if r not in matched and lesion not in taken:
            matched[r] = lesion
            taken.add(lesion)
    return matched


def _match_unambiguous(regions: Regions, todo: list[int], references: list[Reference], taken: set[int]
                       ) -> dict[int, int]:
    """A region and a previous lesion (after its motion), both still unmatched, each the other's nearest within
    the wide gate, with every other candidate of either at least AMBIGUITY_RATIO times further: the same lesion
    moved faster than the narrow gate allows (a fast sweep of the probe)."""
    free = [reference for reference in references if reference.id not in taken]
    if not free or not todo:
        return {}
    distance = np.array([[_distance_in_diameters(regions.centroids[r], regions.areas[r], reference)
                          for reference in free] for r in todo])
    matched = {}
    for row, r in enumerate(todo):
        j = int(np.argmin(distance[row]))
        best = distance[row, j]
        if best > WIDE_GATE_DIAMETERS or int(np.argmin(distance[:, j])) != row:
            continue
        others = np.concatenate([np.delete(distance[row], j), np.delete(distance[:, j], row)])
        if not len(others) or others.min() >= AMBIGUITY_RATIO * best:
            matched[r] = free[j].id
    return matched


def assign_ids(regions: Regions, own: list[Reference], previous: list[Reference], remembered: list[Reference],
               anchors: list[Reference], new_id: Callable[[set[int]], int]) -> list[int]:
    """The lesion id of each region (0-based list), by the steps of the module docstring: `own`, the lesions of
    the frame's mask before this proposal; `previous`, the previous frame's (with velocities); `remembered`, those
    of the frames before it that it lacks; `anchors`, the next human frame's; new_id(taken) -> an id not in
    `taken` for a lesion seen nowhere."""
    everything = list(range(len(regions)))
    ids = _match_overlapping(regions, everything, own, set())
    todo = [r for r in everything if r not in ids]
    ids.update(_match_overlapping(regions, todo, previous, set(ids.values()), remembered))
    todo = [r for r in everything if r not in ids]
    if todo:
        ids.update(_match_unambiguous(regions, todo, previous, set(ids.values())))
        todo = [r for r in everything if r not in ids]
    if todo:
        ids.update(_match_by_distance(regions, todo, anchors, set(ids.values()), frames_ahead=0))
    taken = set(ids.values())
    for r in sorted((r for r in everything if r not in ids), key=lambda r: -regions.areas[r]):
        ids[r] = new_id(taken)
        taken.add(ids[r])
    return [ids[r] for r in everything]


def regions_of_labels(labels: np.ndarray) -> tuple[Regions, list[int]]:
    """A label map seen as regions (one per lesion id, in increasing order) and those ids."""
    from .lesions import geometry

    ids = present_ids(labels)
    lut = np.zeros(256, np.uint8)
    regions = Regions(np.zeros(labels.shape, np.uint8))
    for r, lesion in enumerate(ids, 1):
        lut[lesion] = r
        area, box, centroid = geometry(labels == lesion)
        regions.areas.append(area)
        regions.boxes.append(box)
        regions.centroids.append(centroid)
    regions.labels = cv2.LUT(labels, lut)
    return regions, ids


def match_to(labels: np.ndarray, references: list[Reference]) -> dict[int, int]:
    """For each lesion id of `labels`, the id of the reference lesion it is (by overlap, as step 1); ids
    without a match are left out."""
    regions, ids = regions_of_labels(labels)
    matched = _match_overlapping(regions, list(range(len(ids))), references, set())
    return {ids[r]: lesion for r, lesion in matched.items()}
