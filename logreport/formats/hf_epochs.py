"""What the epoch a Trainer prints says of steps (part of the hf_trainer parser's step rules,
`hf_steps`): how far the epoch it rounds may lie, whether a burst's records at a gap agree
with the epochs they print, and the run of records that printed one epoch."""
from __future__ import annotations

import math

import numpy as np

from ..events import TRAIN


def run_after(run: tuple, epochs: np.ndarray) -> tuple:
    """The epoch the last of `epochs` (estimated records' after `run`'s: NaN, none) printed,
    how many records in a row printed it, and the step their run began at where known."""
    last = float(epochs[-1])
    if math.isnan(last):
        return None, 0, None
    other = np.flatnonzero(epochs != last)
    if len(other):
        return last, len(epochs) - 1 - int(other[-1]), None
    if run[0] == last:
        return last, len(epochs) + run[1], run[2]
    return last, len(epochs), run[2] if run[0] is None else None


def half_unit(epoch: float) -> float:
    """Half the last printed decimal of an epoch: how far the epoch it rounds may lie."""
    text = repr(float(epoch))         # (rounded to 2 decimals, 0.20 prints as 0.2)
    decimals = max(2, len(text.partition(".")[2])) if "e" not in text else 16
    return 0.5 * 10.0 ** -decimals


def burst_gap(held: list, trains: int, floor: int, top: int | None,
               known: int | None) -> int | None:
    """The gap between the `trains` training records of a burst from `floor`, the last at or
    before `top`: the `known` one (stated) where it keeps them there, else equal gaps that put
    the last at `top`; each only where one rate of epochs a step agrees with every epoch
    printed, to its decimals and within a step (an epoch's partial last batch); else None."""
    if not trains or top is None or top <= floor:
        return None
    gaps = [known] if known and floor + trains * known <= top else []
    if trains > 1 and (top - floor) % trains == 0:
        gaps.append((top - floor) // trains)
    return next((gap for gap in gaps if epochs_agree(held, floor, gap)), None)


def epochs_agree(held: list, floor: int, gap: int) -> bool:
    """Whether one rate of epochs a step agrees with each epoch a burst's records print, at
    the steps `gap` apart from `floor` (an evaluation at the training record's before it)."""
    step, placed = floor, []
    for rec in held:
        step += gap if rec.phase == TRAIN else 0
        if rec.epoch is not None and math.isfinite(rec.epoch):
            placed.append((step, rec.epoch))
    if not placed or placed[-1][1] <= 0 or placed[-1][0] <= 0:
        return False
    a_step = placed[-1][1] / placed[-1][0]          # epochs a step, about
    low, high = 0.0, math.inf                       # the rates every epoch allows
    for at, epoch in placed:
        slack = half_unit(epoch) + a_step
        if at <= 0:
            if abs(epoch) > slack:
                return False
            continue
        low, high = max(low, (epoch - slack) / at), min(high, (epoch + slack) / at)
    return low <= high
