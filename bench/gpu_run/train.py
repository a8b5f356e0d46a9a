"""A real Hugging Face Trainer run: tiny randomly initialised GPT-2, synthetic data, GPU."""
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

VOCAB, LEN = 512, 128


class Synthetic(torch.utils.data.Dataset):
    """Sequences with a learnable rule (next = 3*prev+1 mod VOCAB) and 10 % noise tokens."""

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        start = torch.randint(0, VOCAB, (n, 1), generator=g)
        seq = [start]
        for _ in range(LEN - 1):
            seq.append((seq[-1] * 3 + 1) % VOCAB)
        x = torch.cat(seq, 1)
        noise = torch.rand(x.shape, generator=g) < 0.1
        self.x = torch.where(noise, torch.randint(0, VOCAB, x.shape, generator=g), x)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.x[i]}


class TimeCap(TrainerCallback):
    def __init__(self, seconds):
        self.seconds, self.start = seconds, time.time()

    def on_step_end(self, args, state, control, **kw):
        if time.time() - self.start > self.seconds:
            control.should_training_stop = True


model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=LEN, n_embd=256, n_layer=4,
                                   n_head=4))
args = TrainingArguments(output_dir="/tmp/hf_out", max_steps=8000, per_device_train_batch_size=64,
                         learning_rate=5e-4, warmup_steps=100, lr_scheduler_type="cosine",
                         logging_steps=20, eval_strategy="steps", eval_steps=1000,
                         save_strategy="no", report_to="none", bf16=True, seed=0,
                         dataloader_num_workers=0)
trainer = Trainer(model=model, args=args, train_dataset=Synthetic(50000, 0),
                  eval_dataset=Synthetic(1000, 1), callbacks=[TimeCap(270)])
trainer.train()
print(trainer.evaluate())
