"""How much some lines look like PaddleDetection's: the score `ppdet.sniff` gives to
`formats.detect`.

Paddle's own lines (its paths, its launchers' `LAUNCH` and `launch.py:310] ` lines) are every
Paddle tool's; they add to the score only of lines where something names PaddleDetection. A
traceback through Paddle's frames alone, or a launcher's start-up, is no tool's log that
logreport can tell, and is refused as such (it ends in an error: the refusal says which).
"""
from __future__ import annotations

import re

from .ppdet_train import EPOCH, PREFIX, STATIC

# the legacy Paddle launcher's logger (`launch.py:381] `), not DeepSpeed's (`[launch.py:146:main]`)
_PADDLE_LAUNCH = re.compile(r"\blaunch(?:_utils)?\.py:\d+\] ")

# another Paddle tool named (an unzipped PaddleSeg's paths): no sign of PaddleDetection
_OTHER_TOOL = re.compile(r"paddle(?:seg|ocr|clas|nlp|video|rec|speech|gan)|ppocr|ppcls", re.I)

# what names PaddleDetection: its package (`ppdet.engine INFO`, a frame in `ppdet/engine/`), the
# repository and its PaddleYOLO fork, the source lines of its tools/train.py and tools/eval.py
# in a traceback's frames, a config named by its schedule in epochs or multiples
# (`configs/ppyolo/ppyolo_tiny_650e_coco.yml`, `rtdetr_r50vd_6x_coco.yml`)
_FRAMES = re.compile(r"\brun\(FLAGS, cfg\)|trainer\.train\(FLAGS\.")
_CONFIG = re.compile(r"configs[/\\][^\s'\",]*_\d+[ex]_[^\s'\",]*\.yml\b")


def sniff(lines: list[str]) -> float:
    """Share of lines that only PaddleDetection prints (training lines weigh most); 0 where
    none of them names it."""
    if not lines:
        return 0.0
    hits, named = 0.0, False
    for text in lines:
        low = text.lower()
        if "Epoch: [" in text and EPOCH.search(text) and ("learning_rate: " in text or " lr: " in text) \
                and ("batch_cost: " in text or PREFIX.search(text)):
            hits += 5
            named = True
        elif "ppdet." in text and PREFIX.search(text):
            hits += 1
        elif "-INFO: iter: " in text and STATIC.search(text):
            hits += 5
            named = True
        elif "paddle" in low and not _OTHER_TOOL.search(text) or "ppdet" in text \
                or "LAUNCH " in text or "launch" in text and _PADDLE_LAUNCH.search(text):
            hits += 0.5
        named = named or _names(text, low)
    return min(1.0, hits / len(lines)) if named else 0.0


def _names(text: str, low: str) -> bool:
    """Whether a line (`low`: lowercased) names PaddleDetection."""
    return "ppdet" in low or "paddle" in low and ("paddledetection" in low or "paddleyolo" in low) \
        or "FLAGS" in text and bool(_FRAMES.search(text)) \
        or "configs" in text and bool(_CONFIG.search(text))
