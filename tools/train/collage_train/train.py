"""Trains one small hybrid model on the retrieval task within a wall-clock budget, then
measures held-out accuracy in PyTorch and exports it (export.py).

    python -m collage_train.train --kind gdn --out OUTDIR/gdn --time-budget-s 150

The recipe (models/README.md, "Training"): a copy stage (synthetic repeat rows only, until
they are copied: the induction circuit), then the retrieval curriculum from level 0 (rows
of --min-context tokens packed with facts and their questions) to level 1 (the
evaluation's distribution at --context tokens), rising only while the answers' first
digits (the look-up) are right often enough and forced up late in the budget; easy rows
stay to the end. Loss on every answer digit, on the questions' names and a little on
everything else. Learning rate: warm-up, constant, cosine decay at the end. The schedules
follow the elapsed fraction of the budget (or of --max-steps), so a run ends on schedule
whatever the speed of the machine. Progress lines go to stdout."""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from .checkpoint import load_model
from .config import ModelConfig
from .data import BatchStream
from .evaluate import accuracy, question_set
from .export import export_model
from .init import init_weights
from .model import HybridLM
from .task import ANSWER, COPY, FIRST, NAME, Encoder

KINDS = {"gdn": "GDN", "m2": "M2", "gka": "GKA"}
MAX_FOLDER_BYTES = 5_000_000
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TOKENIZER = os.path.join(HERE, "tokenizer")


def parse_args(argv):
    ap = argparse.ArgumentParser(description="train one retrieval model")
    ap.add_argument("--kind", choices=sorted(KINDS), required=True)
    ap.add_argument("--out", required=True, help="model folder to write")
    ap.add_argument("--tokenizer-dir", default=DEFAULT_TOKENIZER)
    ap.add_argument("--time-budget-s", type=float, default=150.0, help="training time")
    ap.add_argument("--max-steps", type=int, default=0,
                    help="stop after N steps; schedules then follow the steps (0: time only)")
    ap.add_argument("--context", type=int, default=512, help="trained context T (tokens)")
    ap.add_argument("--min-context", type=int, default=128, help="curriculum start length")
    ap.add_argument("--curriculum-frac", type=float, default=0.5,
                    help="budget fraction at which the curriculum reaches full difficulty")
    ap.add_argument("--hold-frac", type=float, default=0.0,
                    help="budget fraction spent at level 0 before the curriculum starts")
    ap.add_argument("--gate-acc", type=float, default=0.8,
                    help="the level rises only while the accuracy of the answers' first "
                         "digits (the look-up) over the last --gate-every steps is at least "
                         "this (0: always)")
    ap.add_argument("--gate-every", type=int, default=10)
    ap.add_argument("--force-start", type=float, default=0.3,
                    help="budget fraction from which the level is forced up linearly ...")
    ap.add_argument("--force-frac", type=float, default=0.85,
                    help="... to reach 1 at this fraction whatever the accuracy")
    ap.add_argument("--copy-gate", type=float, default=0.9,
                    help="training starts with copy rows only (task.copy_sequence) until "
                         "their accuracy over --gate-every steps reaches this (0: no copy stage)")
    ap.add_argument("--copy-max-frac", type=float, default=0.15,
                    help="budget fraction after which the copy stage ends anyway")
    ap.add_argument("--copy-share", type=float, default=0.1,
                    help="share of copy rows after the copy stage, at level 0")
    ap.add_argument("--copy-until", type=float, default=0.5,
                    help="level at which the copy share has fallen linearly to 0")
    ap.add_argument("--copy-weight", type=float, default=1.0,
                    help="weight of the loss on the repeats of the copy rows")
    ap.add_argument("--easy-share", type=float, default=0.2,
                    help="share of rows with a random level below the current one")
    ap.add_argument("--near-miss", type=float, default=0.6,
                    help="share of distractor names that share a first or last name with "
                         "a row's first fact, from curriculum level 0.5 (the evaluation "
                         "uses 0.3; more here forces matching both name tokens)")
    ap.add_argument("--batch-tokens", type=int, default=32768, help="tokens per step")
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--intermediate", type=int, default=448)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4, help="pattern *-X repeated")
    ap.add_argument("--zero-ssm-out", type=int, default=1,
                    help="1: the SSM mixers' output projections start at zero (init.py)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup-frac", type=float, default=0.03)
    ap.add_argument("--decay-frac", type=float, default=0.2,
                    help="the last budget fraction, over which the rate decays (cosine)")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--lm-weight", type=float, default=0.05,
                    help="weight of the next-token loss on the other tokens")
    ap.add_argument("--name-weight", type=float, default=0.5,
                    help="weight of the loss on the names of the questions")
    ap.add_argument("--max-docs", type=int, default=6, help="documents per training context")
    ap.add_argument("--max-questions", type=int, default=8,
                    help="question/answer blocks per training context")
    ap.add_argument("--val-every", type=int, default=200,
                    help="validation accuracy every N steps (0: never)")
    ap.add_argument("--val-questions", type=int, default=64)
    ap.add_argument("--val-seed", type=int, default=555, help="validation set (not the eval's)")
    ap.add_argument("--workers", type=int, default=-1, help="data processes (-1: auto)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--init-from", default="",
                    help="start from the weights of a model folder this tool exported "
                         "(more training of the same shape; combine with --copy-gate 0 "
                         "and --force-start 0 --force-frac 0 to train at level 1 only)")
    ap.add_argument("--prime-from", default="",
                    help="take every tensor whose name and shape match from a model folder of "
                         "another layer type (embeddings, attention layers, MLPs, norms), the "
                         "SSM layers start fresh: priming, as the HQwen3 models were primed "
                         "from Qwen3")
    ap.add_argument("--eval-questions", type=int, default=400)
    ap.add_argument("--eval-seed", type=int, default=777)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true", help="torch.compile (falls back to eager)")
    ap.add_argument("--log-every", type=int, default=50)
    return ap.parse_args(argv)


def log(msg):
    print(msg, flush=True)


def model_config(a, tok):
    kind = KINDS[a.kind]
    pattern = ["*" if i % 2 == 0 else kind for i in range(a.layers)]
    return ModelConfig(vocab_size=tok.get_vocab_size(), hidden_size=a.hidden,
                       intermediate_size=a.intermediate, num_heads=a.heads,
                       num_kv_heads=a.kv_heads, head_dim=a.head_dim, pattern=pattern,
                       rope_theta=1e6, max_position_embeddings=32768,
                       eos_token_id=tok.token_to_id("<|im_end|>"),
                       pad_token_id=tok.token_to_id("<|endoftext|>"))


def lr_at(a, frac):
    """Linear warm-up, constant (plateaus end sooner at the full rate), cosine decay to
    --min-lr-frac over the last --decay-frac of the budget."""
    if frac < a.warmup_frac:
        return a.lr * max(frac / a.warmup_frac, 0.02)
    start = 1.0 - a.decay_frac
    p = min(1.0, max(0.0, frac - start) / max(1e-9, a.decay_frac))
    return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def next_level(a, level, frac, dfrac, competent):
    """Curriculum level in [0, 1] (task.row_spec) after dfrac more of the budget: after
    --hold-frac it rises by dfrac / (--curriculum-frac - --hold-frac) while the model is
    competent (see --gate-acc), and never lies below the line from 0 at --force-start to
    1 at --force-frac."""
    if frac > a.hold_frac and competent:
        level += dfrac / max(1e-9, a.curriculum_frac - a.hold_frac)
    floor = (frac - a.force_start) / max(1e-9, a.force_frac - a.force_start)
    return min(1.0, max(level, floor, 0.0))


def length_at(a, level):
    """Context length of the next batch: from --min-context at level 0 to --context at
    level 1, in steps of 64 tokens."""
    L = a.min_context + level * (a.context - a.min_context)
    return int(min(a.context, max(64, round(L / 64) * 64)))


def copy_share_at(a, level, copy_stage):
    if copy_stage:
        return 1.0
    return a.copy_share * max(0.0, 1.0 - level / max(1e-9, a.copy_until))


def masked_mean(x, m):
    """Mean of x where m (0 where m is empty, without a host sync)."""
    return (x * m).sum() / m.sum().clamp_min(1)


def loss_fn(model, ids, roles, lm_weight, name_weight, pad_id, copy_weight=0.0):
    """Mean cross-entropy on answer digits + name_weight x the mean on the questions'
    names + copy_weight x the mean on the copy rows' repeats + lm_weight x the mean
    next-token loss on the other tokens. Returns (loss, answer loss, answer digit
    accuracy, first-digit accuracy, copy accuracy)."""
    inp, tgt, r = ids[:, :-1], ids[:, 1:], roles[:, :-1]
    first = r == FIRST
    a = (r == ANSWER) | first
    if lm_weight > 0 or name_weight > 0 or copy_weight > 0:
        logits = model(inp).float()
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1),
                             reduction="none").view_as(tgt)
        hit = (logits.argmax(-1) == tgt).float()
        ans_loss = masked_mean(ce, a)
        loss = ans_loss
        if name_weight > 0:
            loss = loss + name_weight * masked_mean(ce, r == NAME)
        if copy_weight > 0:
            loss = loss + copy_weight * masked_mean(ce, r == COPY)
        if lm_weight > 0:
            loss = loss + lm_weight * masked_mean(ce, (r == 0) & (tgt != pad_id))
        return (loss, ans_loss.detach(), masked_mean(hit, a), masked_mean(hit, first),
                masked_mean(hit, r == COPY))
    # answers only: the LM head on the answer positions alone
    h = model.hidden_states(inp)
    logits = model.lm_head(h[a]).float()
    ans_loss = F.cross_entropy(logits, tgt[a])
    loss = ans_loss
    hit = (logits.argmax(-1) == tgt[a]).float()
    acc, first_acc = hit.mean(), masked_mean(hit, first[a])
    zero = torch.zeros((), device=ids.device)
    return loss, ans_loss.detach(), acc.detach(), first_acc.detach(), zero


def param_groups(model, wd):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    rest = [p for n, p in model.named_parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}]


def bf16_copy(model, cfg, device):
    """The model as exported: weights rounded to bf16, computed in fp32."""
    m = HybridLM(cfg)
    m.load_state_dict({k: v.detach().to(torch.bfloat16).to(torch.float32)
                       for k, v in model.state_dict().items()})
    return m.to(device).eval()


def prime_weights(model, model_dir):
    """Copies the tensors of model_dir whose names and shapes match model's; returns
    (taken, fresh) counts. The donor's other tensors (its own SSM layers) are ignored."""
    donor = load_model(model_dir, dtype=torch.float32).state_dict()
    own = model.state_dict()
    take = {k: v for k, v in donor.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not any(".self_attn." in k for k in take):
        raise SystemExit(f"collage_train: {model_dir}: no attention tensor matches this model's "
                         "shape; priming needs the same hidden size, heads and layer count")
    own.update(take)
    model.load_state_dict(own)
    return len(take), len(own) - len(take)


def main(argv=None):
    a = parse_args(argv)
    t_start = time.time()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if a.device == "auto" else a.device)
    torch.manual_seed(a.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    tok = Tokenizer.from_file(os.path.join(a.tokenizer_dir, "tokenizer.json"))
    cfg = model_config(a, tok)
    model = HybridLM(cfg)
    init_weights(model, a.seed, zero_ssm_out=a.zero_ssm_out)
    if a.init_from:   # continue a model this tool exported (same shape; bf16 weights)
        model.load_state_dict(load_model(a.init_from, dtype=torch.float32).state_dict())
        log(f"[{a.kind}] weights from {a.init_from}")
    if a.prime_from:
        taken, fresh = prime_weights(model, a.prime_from)
        log(f"[{a.kind}] primed from {a.prime_from}: {taken} tensors taken, {fresh} fresh")
    n_params = sum(p.numel() for p in model.parameters())
    est = 2 * n_params + 4 * 100 * cfg.vocab_size + 100_000
    if est > MAX_FOLDER_BYTES:
        raise SystemExit(f"collage_train: model too large for the {MAX_FOLDER_BYTES}-byte folder "
                         f"limit: {n_params} parameters (~{est} bytes with the reference)")
    model.to(device)
    log(f"[{a.kind}] pattern {'-'.join(cfg.pattern)}  params {n_params}  device {device}  "
        f"budget {a.time_budget_s:.0f}s  T {a.context}")
    step_fn = model
    if a.compile:
        try:
            step_fn = torch.compile(model)
        except Exception as e:  # noqa: BLE001 - any failure means eager
            log(f"[{a.kind}] torch.compile unavailable ({e}); eager")
    opt = torch.optim.AdamW(param_groups(model, a.weight_decay), lr=a.lr, betas=(0.9, 0.95),
                            eps=1e-8, fused=device.type == "cuda")
    workers = a.workers if a.workers >= 0 else min(12, max(0, (os.cpu_count() or 2) - 2))
    stream = BatchStream(os.path.join(a.tokenizer_dir, "tokenizer.json"), workers, a.seed,
                         easy_share=a.easy_share, max_docs=a.max_docs, near_miss=a.near_miss,
                         max_questions=a.max_questions)
    val = (question_set(Encoder(tok), a.val_seed, a.val_questions, a.context - 32)
           if a.val_every > 0 else None)
    pad_id = cfg.pad_token_id
    autocast = device.type == "cuda"
    step, tokens, t0 = 0, 0, time.time()
    level, last_frac, competent = 0.0, 0.0, a.gate_acc <= 0
    copy_stage, copy_end_step = a.copy_gate > 0, 0
    first_sum, copy_sum, acc_n = torch.zeros((), device=device), torch.zeros((), device=device), 0
    ema_loss = ema_acc = None
    history = []
    good = {k: v.detach().clone() for k, v in model.state_dict().items()}
    good_step, restarts = 0, 0
    try:
        while True:
            # schedules follow the used fraction of the time budget, or of --max-steps
            frac = max((time.time() - t0) / a.time_budget_s,
                       step / a.max_steps if a.max_steps else 0.0)
            if frac >= 1.0:
                break
            if copy_stage and frac >= a.copy_max_frac:
                copy_stage, copy_end_step = False, step
                log(f"[{a.kind}] step {step}: copy stage ended by the clock")
            if not copy_stage:
                level = next_level(a, level, frac, frac - last_frac, competent)
            last_frac = frac
            L = length_at(a, level)
            B = max(1, a.batch_tokens // L)
            copy_share = copy_share_at(a, level, copy_stage)
            ids_np, roles_np = stream.next(L, B, level, copy_share)
            ids = torch.from_numpy(ids_np).to(device, non_blocking=True).long()
            roles = torch.from_numpy(roles_np).to(device, non_blocking=True)
            lr = lr_at(a, frac)
            for g in opt.param_groups:
                g["lr"] = lr
            batch = (ids, roles, a.lm_weight, a.name_weight, pad_id, a.copy_weight)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
                try:
                    loss, ans_loss, acc, first_acc, copy_acc = loss_fn(step_fn, *batch)
                except Exception as e:  # noqa: BLE001 - a compile failure must not end the run
                    if step_fn is model:
                        raise
                    log(f"[{a.kind}] compiled step failed ({type(e).__name__}: {e}); eager")
                    step_fn = model
                    loss, ans_loss, acc, first_acc, copy_acc = loss_fn(model, *batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            tokens += ids.numel()
            first_sum += first_acc
            copy_sum += copy_acc
            acc_n += 1
            if acc_n >= a.gate_every:   # one host sync per window
                if copy_stage and float(copy_sum) / acc_n >= a.copy_gate:
                    copy_stage, copy_end_step = False, step
                    log(f"[{a.kind}] step {step}: copy stage done (copy accuracy "
                        f"{float(copy_sum) / acc_n:.3f})")
                elif not copy_stage:
                    competent = a.gate_acc <= 0 or float(first_sum) / acc_n >= a.gate_acc
                first_sum.zero_()
                copy_sum.zero_()
                acc_n = 0
            if step % a.log_every == 0 or step == 1:
                al, ac, fc, cc = float(ans_loss), float(acc), float(first_acc), float(copy_acc)
                if not math.isfinite(al) or not all(
                        bool(torch.isfinite(p).all()) for p in model.parameters()):
                    # diverged: back to the last good weights, fresh moments, half the rate
                    model.load_state_dict(good)
                    opt = torch.optim.AdamW(param_groups(model, a.weight_decay), lr=a.lr,
                                            betas=(0.9, 0.95), eps=1e-8,
                                            fused=device.type == "cuda")
                    a.lr *= 0.5
                    restarts += 1
                    log(f"[{a.kind}] step {step}: non-finite loss or weights; restored the "
                        f"weights of step {good_step}, learning rate now {a.lr:.2e}")
                    continue
                good = {k: v.detach().clone() for k, v in model.state_dict().items()}
                good_step = step
                if copy_share < 1.0:   # answers in the batch
                    ema_loss = al if ema_loss is None else 0.8 * ema_loss + 0.2 * al
                    ema_acc = ac if ema_acc is None else 0.8 * ema_acc + 0.2 * ac
                el = time.time() - t0
                history.append({"step": step, "s": round(el, 1), "len": L,
                                "level": round(level, 3), "copy_share": round(copy_share, 3),
                                "answer_loss": al, "answer_digit_acc": ac,
                                "first_digit_acc": fc, "copy_acc": cc})
                answers = ("" if ema_loss is None else
                           f"answer loss {al:.4f} (ema {ema_loss:.4f})  digit acc {ac:.3f} "
                           f"(ema {ema_acc:.3f}) first {fc:.3f}  ")
                log(f"[{a.kind}] step {step:6d}  {el:6.1f}s  level {level:.2f}  len {L:5d}  "
                    f"batch {B:4d}  lr {lr:.2e}  " + answers
                    + (f"copy {copy_share:.2f} acc {cc:.3f}  " if copy_share > 0 else "")
                    + f"{tokens / max(el, 1e-9) / 1e3:.0f}k tok/s")
            if val is not None and step % a.val_every == 0:
                v, _ = accuracy(model, val, device, batch=32, autocast=autocast)
                model.train()
                history.append({"step": step, "val_accuracy": v})
                log(f"[{a.kind}] step {step:6d}  validation accuracy {v:.3f} "
                    f"({len(val)} questions at {a.context - 32} context tokens)")
    finally:
        stream.close()
    train_s = time.time() - t0
    log(f"[{a.kind}] trained {step} steps, {tokens} tokens in {train_s:.1f}s")

    # held-out accuracy of the model as exported (bf16 weights, fp32 compute)
    t_eval = time.time()
    enc = Encoder(tok)
    qs = question_set(enc, a.eval_seed, a.eval_questions, a.context - 32)
    exported = bf16_copy(model, cfg, device)
    acc_in, per_q = accuracy(exported, qs, device)
    by_depth = {}
    for q, ok in zip(qs, per_q):
        k = f"{min(4, int(q['needle_depth'] * 5)) * 20}-{min(4, int(q['needle_depth'] * 5)) * 20 + 20}%"
        by_depth.setdefault(k, []).append(ok)
    by_depth = {k: round(sum(v) / len(v), 4) for k, v in sorted(by_depth.items())}
    qs2 = question_set(enc, a.eval_seed + 1, max(50, a.eval_questions // 4), 2 * a.context - 32)
    acc_2t, _ = accuracy(exported, qs2, device, batch=8)
    eval_s = time.time() - t_eval
    log(f"[{a.kind}] held-out accuracy within T={a.context}: {acc_in:.4f} ({len(qs)} questions; "
        f"by needle depth {by_depth}); plain prefill at 2T: {acc_2t:.4f} ({len(qs2)})  "
        f"[{eval_s:.1f}s]")

    summary = {
        "kind": a.kind, "pattern": "-".join(cfg.pattern), "params": n_params,
        "steps": step, "tokens": tokens, "train_seconds": round(train_s, 1),
        "divergence_restarts": restarts, "copy_stage_steps": copy_end_step,
        "final_level": round(level, 3),
        "final_answer_loss_ema": ema_loss, "final_answer_digit_acc_ema": ema_acc,
        "eval": {"context_T": a.context, "questions": len(qs), "accuracy_in_T": acc_in,
                 "accuracy_by_needle_depth": by_depth, "plain_2T_questions": len(qs2),
                 "accuracy_plain_2T": acc_2t, "eval_seed": a.eval_seed},
        "device": str(device) + (f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda"
                                 else ""),
        "torch": torch.__version__, "args": vars(a), "history": history[-40:],
    }
    ref = export_model(exported.cpu(), cfg, tok, a.tokenizer_dir, a.out)
    summary["export"] = ref
    summary["total_seconds"] = round(time.time() - t_start, 1)
    with open(os.path.join(a.out, "training.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    log(f"[{a.kind}] exported {a.out} ({ref['folder_bytes']} bytes; reference question "
        f"answered {ref['reference_greedy']!r}, expected {ref['reference_answer']!r})  "
        f"total {summary['total_seconds']:.1f}s")
    if ref["folder_bytes"] > MAX_FOLDER_BYTES:
        log(f"[{a.kind}] WARNING: folder is {ref['folder_bytes']} bytes (> {MAX_FOLDER_BYTES})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
