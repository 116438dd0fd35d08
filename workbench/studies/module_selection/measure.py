"""Study 04's measurements of one model: every task's score, the modality gap, direction, paths and cost."""
from __future__ import annotations

import time
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from workbench.data import modular_tasks as mt
from workbench.eval.captioning import score_captions
from workbench.eval.modality_gap import (
    contrastive_loss_items,
    cosine_distributions,
    gap_items,
    gap_metrics,
    shift,
    shift_curve,
)
from workbench.eval.retrieval import positives, retrieval_from_features
from workbench.world import DIRECTIONS

from .data import REVERSED, EvalData

VISION_KEYS = ("video", "clips", "image", "images", "vision")
GAP_FIELDS = ("l2m", "l2i", "rmg", "uniformity", "paired_cos", "unmatched_cos")
ITEM_DECIMALS = 6  # per-item values in result.json's rows


def embeddings(out, text: bool = False) -> torch.Tensor:
    """The (B, E) vision or text embedding a retrieval output carries."""
    emb = out.embeddings
    if text:
        return emb["text"]
    for key in VISION_KEYS:
        if key in emb:
            return emb[key]
    raise KeyError(f"the output carries embeddings {sorted(emb)}; none of {VISION_KEYS}")


def _on(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def r1_hits(a: torch.Tensor, b: torch.Tensor, captions: Sequence[str]) -> list[float]:
    """Each pair's share of R@1 (mean of both ways): (its image's top caption is a positive + its caption's
    top image is a positive) / 2; their mean is `retrieval_from_features`' (i2t_r1 + t2i_r1) / 2."""
    a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
    sim = a @ b.T
    pos = positives(captions, len(a), sim.device)
    i2t = pos.gather(1, sim.topk(1, dim=1).indices).squeeze(1)
    t2i = pos.T.gather(1, sim.T.topk(1, dim=1).indices).squeeze(1)
    return ((i2t.float() + t2i.float()) / 2).tolist()


def _items(values: Sequence[float]) -> list[float]:
    return [round(float(v), ITEM_DECIMALS) for v in values]


@torch.no_grad()
def retrieval_metrics(model: nn.Module, s: mt.RetrievalSet, path=None, prefix: str = "",
                      items: bool = True) -> tuple[dict, dict]:
    """({prefix}r1 (mean of both ways), i2t/t2i R@1 and gap metrics), the normalised embeddings.

    `items`: also each pair's value of R@1 (`r1_hits`) and of the set metrics L2M, L2I, RMG, uniformity and
    the paired cosine (jackknife pseudo-values, `modality_gap.gap_items`) as `{prefix}{metric}_items`, so
    paired intervals add the test items' spread to the seeds'."""
    out = model.run(s.task, _on(s.batch(), _device(model)), path=path)
    a, b = F.normalize(embeddings(out).float(), dim=-1), F.normalize(embeddings(out, text=True).float(), dim=-1)
    r = retrieval_from_features(a, b, s.captions)
    g = gap_metrics(a, b, s.captions)
    m = {f"{prefix}r1": (r.i2t_r1 + r.t2i_r1) / 2, f"{prefix}i2t_r1": r.i2t_r1, f"{prefix}t2i_r1": r.t2i_r1,
         **{f"{prefix}{f}": getattr(g, f) for f in GAP_FIELDS}}
    if items:
        m[f"{prefix}r1_items"] = _items(r1_hits(a, b, s.captions))
        m.update({f"{prefix}{f}_items": _items(v) for f, v in gap_items(a.cpu(), b.cpu()).items()})
    return m, {"vision": a.cpu(), "text": b.cpu()}


def text_embeddings(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Normalised text embeddings (B, E) from the model's text encoder (its universal layers included)."""
    return F.normalize(model.encode_text(tokens).pooled.float(), dim=-1)


def _direction_scores(pred: Sequence[int], truth: Sequence[int]) -> dict:
    """4-way direction predictions against the truth: `dir_acc` and its items, `sign_acc` among those whose
    axis (horizontal / vertical: direction // 2) is right, and `axis_acc`, the share with the axis right."""
    hits = [int(p == t) for p, t in zip(pred, truth)]
    signs = [int(p == t) for p, t in zip(pred, truth) if p // 2 == t // 2]
    return {"dir_acc": sum(hits) / len(hits), "dir_acc_items": hits,
            "sign_acc": sum(signs) / len(signs) if signs else None, "axis_acc": len(signs) / len(hits)}


@torch.no_grad()
def direction_metrics(model: nn.Module, data: EvalData, path=None, fwd: torch.Tensor | None = None) -> dict:
    """Direction from video-text scores: each clip against its caption with each of the 4 directions.

    `dir_acc`: 4-way accuracy over the clips and the same clips played backwards (chance 0.25);
    `sign_acc`: among those whose axis (horizontal / vertical) is right, the share whose sign is
    right too (chance 0.5). A frame-mean encoder gives a clip and its reversal the same embedding,
    so it gets at most one of the two right: its sign accuracy is at most 0.5 (exactly 0.5 when it
    gets every axis right). `fwd`: the test clips' normalised embeddings along `path` where the caller
    has them (`retrieval_metrics`' "vision" of the video-retrieval set: the same computation).
    """
    s = data.sets.get("video_retrieval")
    if s is None:
        return {}
    text = s.batch()["text"]
    t = text_embeddings(model, data.direction_text.to(_device(model))).view(len(s), len(DIRECTIONS), -1).cpu()
    if fwd is None:
        fwd = _clip_embeddings(model, s.media, text, path)
    back = _clip_embeddings(model, data.reversed_clips, text, path)
    pred = [(t @ v.unsqueeze(-1)).squeeze(-1).argmax(1) for v in (fwd, back)]  # (B,) each
    truth = torch.cat([s.direction, data.reversed_direction]).tolist()
    return {**_direction_scores(torch.cat(pred).tolist(), truth), **direction_probe(model, data, fwd, back, path)}


def _clip_embeddings(model: nn.Module, clips: torch.Tensor, text: torch.Tensor, path=None) -> torch.Tensor:
    """Normalised (B, E) video embeddings of `clips` along the video-retrieval path, on the CPU."""
    out = model.run("video_retrieval", {"clips": clips.to(_device(model)), "text": text.to(_device(model))},
                    path=path)
    return F.normalize(embeddings(out).float(), dim=-1).cpu()


@torch.no_grad()
def direction_probe(model: nn.Module, data: EvalData, fwd: torch.Tensor, back: torch.Tensor, path=None) -> dict:
    """Does the video embedding carry direction, whatever the text can say? A linear probe.

    A 4-way logistic regression (scikit-learn, lbfgs: deterministic) fits on the embeddings of the
    probe's train-split clips and their reversals, and is scored on the test clips and theirs (their
    embeddings `fwd` and `back`, as `direction_metrics` computed them):
    `probe_dir_acc` (chance 0.25), `probe_sign_acc` as `sign_acc` (chance 0.5). `reverse_cos`: the
    mean cosine between a test clip's embedding and its reversal's (1 exactly for a frame-mean
    encoder, which cannot tell a clip from its reversal).
    """
    from sklearn.linear_model import LogisticRegression

    s = data.sets["video_retrieval"]
    if not len(data.probe_clips):
        return {}
    text = s.batch()["text"][:1]
    x = torch.cat([_clip_embeddings(model, c, text.expand(len(c), -1), path)
                   for c in (data.probe_clips, data.probe_clips.flip(1))]).numpy()
    y = [*data.probe_direction.tolist(), *(REVERSED[int(d)] for d in data.probe_direction)]
    probe = LogisticRegression(max_iter=2000).fit(x, y)
    truth = [*s.direction.tolist(), *data.reversed_direction.tolist()]
    pred = probe.predict(torch.cat([fwd, back]).numpy()).tolist()
    scores = _direction_scores(pred, truth)
    return {"probe_dir_acc": scores["dir_acc"], "probe_dir_acc_items": scores["dir_acc_items"],
            "probe_sign_acc": scores["sign_acc"], "reverse_cos": float((fwd * back).sum(-1).mean())}


@torch.no_grad()
def head_direction_metrics(model: nn.Module, data: EvalData) -> dict:
    """A direction-trained encoder (`train.DirectionModel`) on the test clips and the same clips played
    backwards: `dir_acc` (chance 0.25), `sign_acc` given the axis (chance 0.5), `axis_acc`, `reverse_cos`
    (the mean cosine between a clip's embedding and its reversal's: 1 for a frame-mean encoder), with the
    same item order as `direction_metrics` so that comparisons pair by item."""
    s = data.sets.get("video_retrieval")
    if s is None:
        return {}
    device = _device(model)
    fwd, back = (model.embed(c.to(device)).float().cpu() for c in (s.media, data.reversed_clips))
    pred = model.head(torch.cat([fwd, back]).to(device)).argmax(1).cpu().tolist()
    truth = torch.cat([s.direction, data.reversed_direction]).tolist()
    cos = (F.normalize(fwd, dim=-1) * F.normalize(back, dim=-1)).sum(-1).mean()
    return {**_direction_scores(pred, truth), "reverse_cos": float(cos)}


@torch.no_grad()
def greedy_captions(model: nn.Module, s: mt.CaptionSet, path=None, length: int = 14) -> list[str]:
    """Greedy captions through the captioning path, decoded without start/end/padding tokens."""
    tokens = model.generate({s.key: s.media.to(_device(model))}, path=path, length=length).cpu()
    special = {model.start_id, model.end_id, 0}
    return [model.tokenizer.decode([int(t) for t in row if int(t) not in special]).strip() for row in tokens]


@torch.no_grad()
def caption_metrics(model: nn.Module, s: mt.CaptionSet, path=None) -> tuple[dict, list[str]]:
    pred = greedy_captions(model, s, path)
    sc = score_captions(pred, s.captions, s.slots)
    every = [int(all(sc.slot_items[k][i] for k in sc.slot_items)) for i in range(sc.n)]
    mean = [sum(sc.slot_items[k][i] for k in sc.slot_items) / len(sc.slot_items) for i in range(sc.n)]
    return {"caption_slots": sc.all_slots, "caption_slots_items": every, "slot_mean": sum(mean) / len(mean),
            "slot_mean_items": mean, "cider": sc.cider, "bleu4": sc.bleu4,
            **{f"slot_{k}": v for k, v in sc.slot_accuracy.items()}}, pred


def ranks_answers(task: str, path, qa_scoring: str) -> bool:
    """Whether QA along `path` is scored by ranking the candidate answers with the decoder."""
    from workbench.methods.modular import TASKS

    return task == "qa" and qa_scoring == "decoder_rank" and "decoder" in (path or TASKS["qa"].path)


@torch.no_grad()
def classify_metrics(model: nn.Module, task: str, s, path=None, prefix: str = "", qa_scoring: str = "head",
                     ) -> tuple[dict, torch.Tensor]:
    """Accuracy (and its items) of classification or QA; QA by the answer head, or with `qa_scoring`
    "decoder_rank" (on paths through the decoder) by the decoder's log-likelihood of each candidate answer."""
    b = s.batch("clips") if task == "classification" and path and "temporal" in path else s.batch()
    b.pop("targets")
    if ranks_answers(task, path, qa_scoring):
        ids = model.tokenize(list(mt.ANSWERS))
        logits = model.answer_scores(_on(b, _device(model)), ids[:, :int((ids != 0).sum(1).max())], path)
    else:
        logits = model.run(task, _on(b, _device(model)), path=path).logits
    pred = logits.argmax(-1).cpu()
    truth = s.answers if task == "qa" else s.labels
    hits = (pred == truth).int().tolist()
    m = {f"{prefix}acc": sum(hits) / len(hits), f"{prefix}acc_items": hits}
    if task == "qa":
        for kind in mt.QUESTION_KINDS:
            h = [x for x, k in zip(hits, s.kinds) if k == kind]
            m[f"{prefix}acc_{kind}"] = sum(h) / len(h) if h else None
    return m, pred


SCORE = {  # task -> the score a module-selection row shows
    "image_retrieval": "image_r1", "video_retrieval": "video_r1", "captioning": "slot_mean",
    "qa": "qa_acc", "classification": "cls_acc",
}


def task_metrics(model: nn.Module, task: str, data: EvalData, path=None, qa_scoring: str = "head",
                 items: bool = True) -> tuple[dict, dict]:
    """(metrics, what the explorer shows: embeddings or predictions) of one task along `path`."""
    s = data.sets[task]
    if task in ("image_retrieval", "video_retrieval"):
        return retrieval_metrics(model, s, path, "image_" if task == "image_retrieval" else "video_", items)
    if task == "captioning":
        m, pred = caption_metrics(model, s, path)
        return m, {"captions": pred}
    m, pred = classify_metrics(model, task, s, path, "qa_" if task == "qa" else "cls_", qa_scoring)
    return m, {"pred": pred.tolist()}


def evaluate(model: nn.Module, data: EvalData, paths: dict[str, tuple[str, ...] | None],
             qa_scoring: str = "head") -> tuple[dict, dict]:
    """Every task's metrics along its path (task -> path; None: the default), direction, the kept outputs."""
    metrics, kept = {}, {}
    for task, path in paths.items():
        m, k = task_metrics(model, task, data, path, qa_scoring)
        metrics.update(m)
        kept[task] = k
    if "video_retrieval" in data.sets:
        fwd = kept["video_retrieval"]["vision"] if "video_retrieval" in kept else None
        metrics.update(direction_metrics(model, data, paths.get("video_retrieval"), fwd))
    return metrics, kept


def path_table(model: nn.Module, data: EvalData, tasks: Sequence[str], flops_batch: int, qa_scoring: str = "head",
               ) -> tuple[list[dict], dict]:
    """Every task x valid path: score, FLOPs (torch.utils.flop_counter on `flops_batch` items) and time;
    and the outputs of each (task, path) (for the explorer). QA with `qa_scoring` "decoder_rank": ranked
    by the decoder on the paths through it, by the (then untrained) head on the others."""
    from workbench.methods.modular import count_flops, module_flops, valid_paths

    ids = model.tokenize(list(mt.ANSWERS))
    answer_ids = ids[:, :int((ids != 0).sum(1).max())]
    rows, kept = [], {}
    for task in tasks:
        for i, path in enumerate(valid_paths(task)):
            t0 = time.perf_counter()
            m, k = task_metrics(model, task, data, path, qa_scoring, items=False)
            seconds = time.perf_counter() - t0
            s = data.sets[task]
            b = s.batch("clips") if task == "classification" and "temporal" in path else s.batch()
            small = _on(_first(b, flops_batch), _device(model))
            name = " -> ".join(path)
            ranked = ranks_answers(task, path, qa_scoring)
            flops = module_flops(model, task, path, small) if not ranked else \
                count_flops(lambda b=small, p=path: model.answer_scores(b, answer_ids, p))
            rows.append({"task": task, "path": name, "default": i == 0, "score": m[SCORE[task]],
                         "score_name": SCORE[task] + (" (decoder rank)" if ranked else ""),
                         "flops": int(flops) / flops_batch,
                         "ms_per_item": 1000 * seconds / len(data.sets[task])})
            kept[(task, name)] = k
    return rows, kept


def _first(batch: dict, n: int) -> dict:
    return {k: v[:n] for k, v in batch.items()}


def cosines(emb: dict, captions: Sequence[str]) -> dict:
    """Matched and unmatched cosines of kept (vision, text) embeddings, as lists for the figure."""
    d = cosine_distributions(emb["vision"], emb["text"], captions)
    return {"matched": d.matched.tolist(), "unmatched": d.unmatched.tolist()}


def shift_rows(emb: dict, lambdas: Sequence[float], temperature: float, class_text: torch.Tensor | None = None,
               labels: torch.Tensor | None = None) -> list[dict]:
    """The embedding-shift curve of kept (vision, text) embeddings (zero-shot accuracy with class prompts),
    each point with the temperature of its loss."""
    return [{**p.__dict__, "temperature": float(temperature)}
            for p in shift_curve(emb["vision"], emb["text"], lambdas, temperature, class_text, labels)]


def shift_minimum(emb: dict, curve: Sequence[dict]) -> dict:
    """Where the shift curve's loss is lowest, for "Mind the Gap"'s claim that it is lowest at the learned gap:
    `shift_loss_0` (the loss unshifted, lambda = 0) and `shift_loss_shifted` (the lowest loss at any other
    lambda of the curve, at `shift_best_lam`), each with its per-pair shares (`_items`); {} without lambda 0."""
    base = next((p for p in curve if p["lam"] == 0.0), None)
    others = [p for p in curve if p["lam"] != 0.0]
    if base is None or not others:
        return {}
    best = min(others, key=lambda p: p["loss"])
    a, b, tau = emb["vision"].double(), emb["text"].double(), base["temperature"]
    return {"shift_loss_0": base["loss"], "shift_loss_0_items": _items(contrastive_loss_items(a, b, tau)),
            "shift_loss_shifted": best["loss"], "shift_best_lam": best["lam"],
            "shift_loss_shifted_items": _items(contrastive_loss_items(*shift(a, b, best["lam"]), tau))}
