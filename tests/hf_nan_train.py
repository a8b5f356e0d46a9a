"""A small Hugging Face Trainer run whose loss goes NaN (for tests/test_hf_stop.py).

    python hf_nan_train.py OUT_DIR NOTES [--lr 1e30] [--steps 400]

A 1-layer GPT-2 (random weights, no download) trains with AdamW at a learning rate of 1e30
(as the diverged LLaMA-Factory fixtures did) and no gradient clipping, on random tokens, on
the CPU: the loss is NaN from step 2; Trainer logs every step to the
console, NaN included (logging_nan_inf_filter off), as LLaMA-Factory's console shows it. A
callback sleeps 0.1 s per step so that the run is still going when it is stopped. NOTES gets
one line per event, with wall-clock times: `nan STEP TIME` at the first non-finite logged
loss, `SIGINT TIME` when SIGINT arrives (it then raises KeyboardInterrupt, as by default).
"""
import argparse
import math
import signal
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("notes")
    ap.add_argument("--lr", type=float, default=1e30)
    ap.add_argument("--steps", type=int, default=400)
    args = ap.parse_args()

    def note(text: str) -> None:
        with open(args.notes, "a") as f:
            f.write(f"{text} {time.time():.3f}\n")

    def on_sigint(signum, frame):
        note("SIGINT")
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)

    import torch
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    set_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=128, n_positions=32, n_embd=32, n_layer=1,
                                       n_head=2))
    tokens = torch.randint(0, 128, (256, 32), generator=torch.Generator().manual_seed(0))
    data = [{"input_ids": t, "labels": t} for t in tokens]

    class Watcher(TrainerCallback):
        seen_nan = False

        def on_log(self, targs, state, control, logs=None, **kw):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)) and not self.seen_nan:
                self.seen_nan = True
                note(f"nan {state.global_step}")

        def on_step_end(self, targs, state, control, **kw):
            time.sleep(0.1)

    targs = TrainingArguments(output_dir=args.out, max_steps=args.steps, learning_rate=args.lr,
                              per_device_train_batch_size=8, logging_steps=1, max_grad_norm=0.0,
                              logging_nan_inf_filter=False, lr_scheduler_type="constant",
                              report_to=[], save_strategy="no", use_cpu=True, seed=0)
    Trainer(model=model, args=targs, train_dataset=data, callbacks=[Watcher()]).train()


if __name__ == "__main__":
    main()
