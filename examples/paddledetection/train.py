"""Train a small PaddleDetection model with ppdet's Trainer, printing what tools/train.py prints.

    python train.py --data DATASET_DIR [--config picodet_s_shapes.yml] [--epochs 20]
                    [--out output] [--device auto|cpu|gpu] [--no-eval] [--base-lr LR]
                    [--seed N]

Needs the `ppdet` package (pip `paddledet`, see install.sh) and Paddle. The console (ppdet's
logger writes to stdout) is the log that `logreport` reads: redirect it to run.log.
"""
from __future__ import annotations

import argparse
import os
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="COCO tree made by make_dataset.py")
    ap.add_argument("--config", default=os.path.join(HERE, "picodet_s_shapes.yml"))
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", default="output", help="checkpoint folder (ppdet's save_dir)")
    ap.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto",
                    help="auto: the GPU when this Paddle build sees one, else the CPU")
    ap.add_argument("--no-eval", action="store_true", help="skip the per-epoch COCO evaluation")
    ap.add_argument("--base-lr", type=float, default=None,
                    help="the config's base learning rate instead (e.g. 1000: a run that diverges)")
    ap.add_argument("--seed", type=int, default=None,
                    help="seed Paddle, numpy and random (the same run each time, on the CPU)")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    warnings.filterwarnings("ignore")           # as tools/train.py does
    import paddle
    from ppdet.core.workspace import load_config, merge_config
    from ppdet.engine import Trainer, init_parallel_env
    from ppdet.utils import check

    use_gpu = args.device == "gpu" or (
        args.device == "auto" and paddle.is_compiled_with_cuda()
        and paddle.device.cuda.device_count() > 0)
    cfg = load_config(args.config)
    data = os.path.abspath(args.data)
    merge_config({"epoch": args.epochs, "save_dir": os.path.abspath(args.out), "use_gpu": use_gpu,
                  "use_npu": False, "use_xpu": False, "use_mlu": False,
                  **{name: {"dataset_dir": data}
                     for name in ("TrainDataset", "EvalDataset", "TestDataset")}})
    if args.base_lr is not None:
        cfg["LearningRate"]["base_lr"] = args.base_lr
    for sched in cfg["LearningRate"]["schedulers"]:   # decay over the epochs trained
        if "max_epochs" in sched:
            sched["max_epochs"] = args.epochs
    paddle.set_device("gpu" if use_gpu else "cpu")
    if args.seed is not None:
        import random

        import numpy as np

        paddle.seed(args.seed)
        np.random.seed(args.seed)
        random.seed(args.seed)

    check.check_config(cfg)
    check.check_gpu(cfg.use_gpu)
    check.check_version()
    init_parallel_env()
    Trainer(cfg, mode="train").train(validate=not args.no_eval)


if __name__ == "__main__":
    main()
