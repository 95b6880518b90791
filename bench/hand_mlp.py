"""A modular-addition grokking script as a researcher writes it: the baseline of
bench/end_to_end.py. Standalone on purpose (torch only, no grokspec import): its process is
timed from interpreter start to exit, as ``grokspec run`` is.

One-hot operands into a dense ``nn.Linear`` MLP with x^2 activation, full-batch AdamW, loss
and accuracy on train and test every ``--eval-every`` steps, stop once test accuracy has stayed
>= ``--threshold`` for ``--patience`` evaluations (grokspec's ``train.stop`` rule), so both
sides train the same number of steps. The split comes from ``--data`` (a torch file of
x_train, y_train, x_test, y_test) so that both sides see the same examples.

    python bench/hand_mlp.py --data split.pt
"""

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--p", type=int, default=97)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--threshold", type=float, default=0.99)
    ap.add_argument("--patience", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    d = torch.load(args.data)
    p = args.p
    fc1, fc2 = nn.Linear(2 * p, args.width), nn.Linear(args.width, p)
    params = [*fc1.parameters(), *fc2.parameters()]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1.0, betas=(0.9, 0.98))

    def forward(x: torch.Tensor) -> torch.Tensor:
        h = fc1(F.one_hot(x, p).flatten(1).float())
        return fc2(h * h)

    held, grok_step, history = 0, None, []
    start = time.time()
    for step in range(0, args.steps + 1):
        if step > 0:
            loss = F.cross_entropy(forward(d["x_train"]), d["y_train"])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if step % args.eval_every == 0:
            with torch.no_grad():
                row = {"step": step}
                for split in ("train", "test"):
                    out = forward(d[f"x_{split}"])
                    row[f"{split}_loss"] = F.cross_entropy(out, d[f"y_{split}"]).item()
                    row[f"{split}_acc"] = (out.argmax(-1) == d[f"y_{split}"]).float().mean().item()
                history.append(row)
            if row["test_acc"] >= args.threshold:
                grok_step = grok_step if grok_step is not None else step
                held += 1
                if held >= args.patience:
                    break
            else:
                held = 0
    print(f"steps {step} test_fit_step {grok_step} final_test_acc {history[-1]['test_acc']:.4f} "
          f"wall {time.time() - start:.1f}s")


if __name__ == "__main__":
    main()
