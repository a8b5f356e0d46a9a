"""Make a tiny synthetic COCO-format detection dataset: noisy images with coloured shapes.

    python make_dataset.py DIR [--train 24] [--val 8] [--size 192] [--seed 0]

Writes DIR/train2017/*.jpg, DIR/val2017/*.jpg and DIR/annotations/instances_{train,val}2017.json
with three categories: red_box, green_triangle, blue_ellipse. Needs numpy and Pillow only.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
from PIL import Image, ImageDraw

CATEGORIES = [(1, "red_box", (220, 40, 40)), (2, "green_triangle", (40, 200, 60)),
              (3, "blue_ellipse", (50, 80, 230))]


def _draw(draw: ImageDraw.ImageDraw, cat: int, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    color = CATEGORIES[cat - 1][2]
    if cat == 1:
        draw.rectangle(box, fill=color)
    elif cat == 2:
        draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=color)
    else:
        draw.ellipse(box, fill=color)


def make_image(rng: np.random.Generator, size: int) -> tuple[Image.Image, list[dict]]:
    """One noisy image with 1-3 shapes that do not overlap much; returns (image, objects)."""
    noise = rng.integers(60, 180, (size, size, 3), dtype=np.uint8)
    img = Image.fromarray(noise, "RGB")
    draw = ImageDraw.Draw(img)
    objects: list[dict] = []
    for _ in range(int(rng.integers(1, 4))):
        for _try in range(20):
            w, h = (int(v) for v in rng.integers(size // 8, size // 2, 2))
            x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            box = (x0, y0, x0 + w - 1, y0 + h - 1)
            if all(_iou(box, o["box"]) < 0.1 for o in objects):
                break
        else:
            continue
        cat = int(rng.integers(1, len(CATEGORIES) + 1))
        _draw(draw, cat, box)
        objects.append({"category_id": cat, "box": box})
    return img, objects


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = ix * iy
    return inter / (_area(a) + _area(b) - inter)


def _area(r) -> int:
    return (r[2] - r[0] + 1) * (r[3] - r[1] + 1)


def write_split(root: str, split: str, count: int, size: int, rng: np.random.Generator,
                first_id: int) -> int:
    """Write `count` images and their COCO json; returns the next free image id."""
    img_dir = os.path.join(root, f"{split}2017")
    os.makedirs(img_dir, exist_ok=True)
    images, annotations = [], []
    for image_id in range(first_id, first_id + count):
        img, objects = make_image(rng, size)
        name = f"{image_id:06d}.jpg"
        img.save(os.path.join(img_dir, name), quality=92)
        images.append({"id": image_id, "file_name": name, "width": size, "height": size})
        for obj in objects:
            x0, y0, x1, y1 = obj["box"]
            w, h = x1 - x0 + 1, y1 - y0 + 1
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": obj["category_id"], "bbox": [x0, y0, w, h],
                                "area": w * h, "iscrowd": 0})
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": i, "name": n, "supercategory": "shape"}
                           for i, n, _ in CATEGORIES]}
    ann_dir = os.path.join(root, "annotations")
    os.makedirs(ann_dir, exist_ok=True)
    with open(os.path.join(ann_dir, f"instances_{split}2017.json"), "w", encoding="utf-8") as f:
        json.dump(coco, f)
    return first_id + count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="output folder (created)")
    ap.add_argument("--train", type=int, default=24, help="training images (default 24)")
    ap.add_argument("--val", type=int, default=8, help="validation images (default 8)")
    ap.add_argument("--size", type=int, default=192, help="image side in pixels (default 192)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    next_id = write_split(args.root, "train", args.train, args.size, rng, 1)
    write_split(args.root, "val", args.val, args.size, rng, next_id)
    print(f"wrote {args.train} train and {args.val} val images to {args.root}")


if __name__ == "__main__":
    main()
