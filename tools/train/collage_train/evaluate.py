"""In-PyTorch accuracy on held-out retrieval questions: a question counts as answered when
the argmax at each of the five answer positions is the right digit given the right
digits before it (teacher forcing), which is exactly when greedy decoding produces the
code."""
import random

import torch

from .task import Sampler, load_words, make_question


def question_set(enc, seed, n, context_tokens, docs=(1, 6), density=(4.0, 16.0)):
    """n held-out questions whose context is about context_tokens tokens (random document
    count and lengths, random fact density), deterministic in seed."""
    rng = random.Random(seed)
    sampler = Sampler(load_words())
    out = []
    for _ in range(n):
        out.append(make_question(sampler, enc, rng, context_tokens, rng.randint(*docs),
                                 rng.uniform(*density), equal_docs=False))
    return out


@torch.no_grad()
def accuracy(model, questions, device, batch=16, autocast=False):
    """Fraction of questions answered (see module doc), and per-question correctness."""
    model.eval()
    correct = []
    for i in range(0, len(questions), batch):
        rows = []
        for q in questions[i:i + batch]:
            ctx = [t for d in q["_doc_ids"] for t in d]
            rows.append((ctx + q["_prompt_ids"] + q["_answer_ids"], len(q["_answer_ids"])))
        L = max(len(r) for r, _ in rows)
        ids = torch.zeros(len(rows), L, dtype=torch.long)
        for b, (r, _) in enumerate(rows):
            ids[b, :len(r)] = torch.tensor(r)
        ids = ids.to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
            h = model.hidden_states(ids)
        for b, (r, n_ans) in enumerate(rows):
            pos = torch.arange(len(r) - n_ans - 1, len(r) - 1, device=device)
            pred = model.lm_head(h[b, pos].float().to(model.lm_head.weight.dtype)).argmax(-1)
            correct.append(bool((pred == ids[b, pos + 1]).all()))
    return sum(correct) / max(1, len(correct)), correct
