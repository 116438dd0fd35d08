"""Study 04's findings, written from the numbers with the kit's paired intervals, against mPLUG-2's and
"Mind the Gap"'s claims (whatever they show)."""
from __future__ import annotations

import statistics
from typing import Sequence

from workbench.world import DIRECTIONS

from .. import kit

TASK_SCORES = ("image_r1", "video_r1", "slot_mean", "qa_acc", "cls_acc")


fmt = kit.fmt  # "0.412 ± 0.030"


class Comparisons(kit.Comparisons):
    """The kit's comparison recorder; a side that did not run (methods or settings left out) gives None."""

    def __init__(self, rows: Sequence[dict]):
        super().__init__(rows, missing_ok=True)


def _w(p: kit.Paired | None, scale: float = 100.0, unit: str = " points") -> str:
    return "not run" if p is None else p.words(scale, unit)


def _num(p: kit.Paired | None, digits: int = 3) -> str:
    """A paired difference of a metric in its own units (gap metrics are fractions of 1, not points)."""
    if p is None:
        return "not run"
    d = f"{p.diff:+.{digits}f}"
    if p.lo is None:
        return f"{d} (1 seed: no interval, so not tested)"
    s = f"{d} (95% CI {p.lo:+.{digits}f} to {p.hi:+.{digits}f}, {p.n} seeds): {p.verdict}"
    if not p.beyond_noise and p.detectable is not None:
        s += f"; the run could detect about {p.detectable:.{digits}f}"
    return s


LEARNED = (("image_retrieval", "image_r1"), ("video_retrieval", "video_r1"), ("captioning", "slot_mean"),
           ("qa", "qa_acc"), ("classification", "cls_acc"))


def learned(rows: Sequence[dict], cfg, cmp: Comparisons) -> tuple[list[dict], list[str]]:
    """Has the multi-task model learned each task? (table, sentences): the modular model at default_k
    (temporal on) against each task's trivial score (`trivial`: no media), paired by seed and test item;
    beside it, where the optional `alone` cells ran, the task trained alone for the same steps."""
    table, short = [], []
    for task, metric in LEARNED:
        if task not in cfg.tasks:
            continue
        p = cmp(("modular", cfg.default_k), "trivial", metric)
        if p is None:
            continue
        trivial = next(r[metric] for r in rows if r["method"] == "trivial")
        row = {"task": task, "score": metric, "multi-task model": round(p.diff + trivial, 3),
               "trivial": round(trivial, 3), "difference": _num(p), "learned": bool(p.lo is not None and p.lo > 0)}
        alone = [r[metric] for r in rows if r["method"] == "alone" and r.get("setting") == task
                 and r.get(metric) is not None]
        if alone:
            row["alone"] = round(statistics.fmean(alone), 3)
            a = cmp(("modular", cfg.default_k), ("alone", task), metric)
            row["mixture minus alone"] = _num(a)
        table.append(row)
        if not row["learned"]:
            short.append(task)
    if not table:
        return [], []
    text = (f"Has the multi-task model (k={cfg.default_k}, temporal on) learned its tasks? Against each task's "
            "trivial score without the media (majority answer per question kind, the most frequent value of each "
            "caption slot, the majority class, chance retrieval): "
            + "; ".join(f"{r['task']} {r['multi-task model']:.3f} vs {r['trivial']:.3f}, {r['difference']}"
                        for r in table) + ". "
            + (f"Not shown to be learned beyond noise: {', '.join(short)}; what the study says about those tasks' "
               "modules is not evidence of what the tasks need." if short else
               "Every task is above its trivial score beyond noise."))
    return table, [text]


def _k_sweep(rows, table, cfg, cmp: Comparisons) -> list[str]:
    ks = [r for r in table if r["method"] == "modular"]
    if not ks:
        return []
    curve = ", ".join(f"k={r['setting']}: L2M {fmt(r, 'image_l2m')}, R@1 {fmt(r, 'image_r1')}" for r in ks)
    out = [f"Shared (universal) text layers k, image-text gap and retrieval: {curve}."]
    settings = [r["setting"] for r in ks]
    if 0 in settings and len(settings) > 1:
        for k in [s for s in settings if s != 0]:
            gap = cmp(("modular", k), ("modular", 0), "image_l2m")
            vgap = cmp(("modular", k), ("modular", 0), "video_l2m")
            rmg = cmp(("modular", k), ("modular", 0), "image_rmg")
            out.append(f"k={k} against k=0: image-text centroid gap (L2M) {_num(gap)}; video-text "
                       f"{_num(vgap)}; relative gap (RMG) {_num(rmg)}.")
            moves = []
            for m in TASK_SCORES:
                p = cmp(("modular", k), ("modular", 0), m)
                if p is not None:
                    moves.append(f"{m} {_w(p)}")
            out.append(f"Task scores at k={k} minus k=0: " + "; ".join(moves) + ".")
        for k in [r["setting"] for r in table if r["method"] == "modular_unshared"]:
            gap = cmp(("modular", k), ("modular_unshared", k), "image_l2m")
            if gap is None:
                continue
            moves = [f"{m} {_w(p)}" for m in TASK_SCORES
                     if (p := cmp(("modular", k), ("modular_unshared", k), m)) is not None]
            out.append(f"Capacity control at k={k} (shared universal layers minus the same layers as unshared "
                       f"copies, the same parameters added on the vision side): image-text L2M {_num(gap)}; "
                       + "; ".join(moves) + ".")
        scales = [r for r in table if r.get("logit_scale") is not None]
        if scales:
            out.append("Learned logit scale (1 / temperature; Liang et al. tie the gap to it): "
                       + ", ".join(f"{r.get('label', r['method'])} k={r['setting']}: {fmt(r, 'logit_scale', digits=2)}"
                                   for r in scales) + ".")
        claim = cmp(("modular", cfg.default_k), ("modular", 0), "image_l2m")
        if claim is not None:
            verdict = ("supports" if claim.sign < 0 else "contradicts" if claim.sign > 0 else "neither supports nor "
                       "contradicts (within noise)")
            out.append(f"mPLUG-2 claims that universal layers reduce the modality gap; at k={cfg.default_k} this run "
                       f"{verdict} it.")
    return out


def _temporal(table, cfg, paths: Sequence[dict], cmp: Comparisons, vocab: Sequence[dict] = ()) -> list[str]:
    get = lambda m: next((r for r in table if r["method"] == m
                          and (m == "dual_encoder" or r["setting"] == cfg.default_k)), None)
    dual, off, on = get("dual_encoder"), get("no_temporal"), get("modular")
    out = []
    if dual:
        out.append(f"Direction of motion from video-text scores (4 captions differing only in direction, each clip "
                   f"and its time reversal): tiny-world-clip with frame-mean clips {fmt(dual, 'dir_acc')} "
                   f"(chance 0.25), sign given the axis {fmt(dual, 'sign_acc')} (chance 0.5; a frame mean cannot "
                   "tell a clip from its reversal).")
    if dual and on and dual.get("probe_dir_acc") is not None:
        p = cmp(("modular", cfg.default_k), ("no_temporal", cfg.default_k), "probe_dir_acc") if off else None
        out.append(f"What the video embedding itself carries (a linear probe fit on train-split clips and their "
                   f"reversals, scored on the test clips and theirs; chance 0.25): frame-mean tiny-world-clip "
                   f"{fmt(dual, 'probe_dir_acc')} (sign {fmt(dual, 'probe_sign_acc')}, clip-reversal cosine "
                   f"{fmt(dual, 'reverse_cos')}); modular, temporal on {fmt(on, 'probe_dir_acc')} (sign "
                   f"{fmt(on, 'probe_sign_acc')}, reversal cosine {fmt(on, 'reverse_cos')})"
                   + (f", off {fmt(off, 'probe_dir_acc')}; on minus off {_w(p)}." if off else "."))
    if words := [w for w in vocab if w["word"] in DIRECTIONS]:
        known = [w["norm"] for w in vocab if w["word"] not in DIRECTIONS and w["norm"] is not None]
        out.append("Why direction from text stays near chance: tiny-world-clip's pretraining captions never named a "
                   "direction, so the token-embedding rows of " + ", ".join(f"'{w['word']}' ({w['norm']:.2f})"
                                                                            for w in words)
                   + f" are still at initialisation, against {min(known):.2f}-{max(known):.2f} for the class and "
                   "colour words it learned: captions that differ only in direction embed alike, and the towers' "
                   "fine-tuning lr moves those rows little in the steps run.")
    if off and on:
        p = cmp(("modular", cfg.default_k), ("no_temporal", cfg.default_k), "dir_acc")
        out.append(f"Modular model at k={cfg.default_k}: temporal modules on {fmt(on, 'dir_acc')} (sign "
                   f"{fmt(on, 'sign_acc')}), off {fmt(off, 'dir_acc')} (sign {fmt(off, 'sign_acc')}); on minus off "
                   f"{_w(p)}. Direction questions (QA): on {fmt(on, 'qa_acc_direction')}, off "
                   f"{fmt(off, 'qa_acc_direction')}.")
    head, head_off = (next((r for r in table if r["method"] == m), None) for m in ("direction", "direction_off"))
    if head and head_off:
        p = cmp("direction", "direction_off", "dir_acc")
        tower = "tiny-world-clip's weights frozen" if cfg.direction_frozen else "the towers fine-tuned"
        out.append(f"Trained for direction alone ({cfg.direction_steps} steps of a 4-way head on the clip embedding, "
                   f"the same training clips, {tower}; new-module lr {cfg.direction_new_lr:g}, chosen on the "
                   f"validation slice): the vision encoder with temporal modules {fmt(head, 'dir_acc')} (sign "
                   f"{fmt(head, 'sign_acc')}, reversal cosine {fmt(head, 'reverse_cos')}), the frame mean "
                   f"{fmt(head_off, 'dir_acc')} (sign {fmt(head_off, 'sign_acc')}; it cannot pass 0.5); "
                   f"on minus off {_w(p)}." + (" So the temporal modules can represent direction, and what the "
                                                 "multi-task model lacks is the signal, not the capacity."
                                                 if p.lo is not None and p.lo > 0 else ""))
    vid = {r["path"]: r for r in paths if r["task"] == "video_retrieval"}
    with_t, without = vid.get("vision -> temporal -> universal -> text"), vid.get("vision -> universal -> text")
    if with_t and without:
        out.append(f"Cost of the temporal modules on the video-retrieval path: "
                   f"{with_t['flops'] / without['flops']:.3f}x the FLOPs and "
                   f"{with_t['ms_per_item'] / max(without['ms_per_item'], 1e-9):.2f}x the time.")
    return out


def _paths(paths: Sequence[dict]) -> list[str]:
    if not paths:
        return []
    out = []
    by = lambda task, name: next((r for r in paths if r["task"] == task and r["path"] == name), None)
    dec = by("captioning", "vision -> temporal -> universal -> decoder")
    fus = by("captioning", "vision -> temporal -> universal -> text -> fusion -> decoder")
    if dec and fus:
        out.append(f"Captioning (share of slots right) through the decoder alone {fmt(dec, 'score')} at "
                   f"{dec['flops'] / 1e6:.1f} MFLOPs per item, through text and fusion {fmt(fus, 'score')} at "
                   f"{fus['flops'] / 1e6:.1f} MFLOPs (mPLUG-2 captions without the text encoder and fusion).")
    qa = by("qa", "vision -> temporal -> universal -> text -> fusion -> decoder")
    qa_nu = by("qa", "vision -> temporal -> text -> fusion -> decoder")
    if qa and qa_nu:
        out.append(f"QA with universal layers {fmt(qa, 'score')}, without {fmt(qa_nu, 'score')} (same trained weights; "
                   "the model was trained along the default path).")
    for task in dict.fromkeys(r["task"] for r in paths):
        rs = [r for r in paths if r["task"] == task]
        best = max(rs, key=lambda r: r["score"])
        default = next(r for r in rs if r["default"])
        if best["score"] > default["score"]:  # a tie keeps the default: no path is "best" by a tie
            out.append(f"{task}: the best path is {best['path']} ({fmt(best, 'score')}), not the default "
                       f"{default['path']} ({fmt(default, 'score')}).")
    return out


def _gap(table, shift: dict[str, list[dict]], cfg, cmp: Comparisons) -> list[str]:
    out = []
    temps = sorted((r for r in table if r["method"] == "temperature"), key=lambda r: -r["setting"])
    if temps:
        curve = ", ".join(f"τ={r['setting']:g}: L2M {fmt(r, 'image_l2m')}, R@1 {fmt(r, 'image_r1')}" for r in temps)
        out.append(f"Temperature sweep (tiny-world-clip, {cfg.temperature_steps} contrastive steps at a fixed τ): "
                   f"{curve}.")
        if len(temps) > 1:
            hi, lo = temps[0]["setting"], temps[-1]["setting"]
            g = cmp(("temperature", hi), ("temperature", lo), "image_l2m")
            r = cmp(("temperature", hi), ("temperature", lo), "image_r1")
            out.append(f"τ={hi:g} minus τ={lo:g}: gap {_num(g)}, R@1 {_w(r)} (Liang et al.: a high temperature "
                       "closes the gap and costs retrieval).")
            ends = [(t, cmp(("temperature", t), "dual_encoder", "image_l2m")) for t in (hi, lo)]
            moved = [f"τ={t:g} {_num(p)}" for t, p in ends if p is not None and p.beyond_noise]
            if all(p is not None for _, p in ends):
                diffs = "; ".join(_num(p) for _, p in ends)
                verdict = (f"The sweep moved the gap at {', '.join(moved)}." if moved else
                           "The sweep moved the gap at neither end, so it did not test Liang et al.'s temperature "
                           "claim.")
                out.append(f"Gap after fine-tuning minus tiny-world-clip's before: {diffs} (highest, lowest τ). "
                           + verdict)
    for name, curve in shift.items():
        if not curve:
            continue
        base = next((p for p in curve if p["lam"] == 0.0), None)
        best = min(curve, key=lambda p: p["loss"])
        tau = curve[0].get("temperature") or cfg.shift_temperature
        own = "" if "CLIP's" in name else " (its own learned temperature, 1 / logit scale)"
        text = (f"Embedding shift on {name}: the contrastive loss at τ={tau:.3g}{own} is lowest at "
                f"λ={best['lam']:g} (gap {best['gap']:.3f})")
        if base is not None:
            text += f"; unshifted gap {base['gap']:.3f}, loss {base['loss']:.3f}"
            accs = [p for p in curve if p.get("accuracy") is not None]
            if accs and base.get("accuracy") is not None:
                top = max(accs, key=lambda p: p["accuracy"])
                if top["accuracy"] > base["accuracy"]:
                    text += (f"; zero-shot accuracy {base['accuracy']:.3f} unshifted, highest {top['accuracy']:.3f} "
                             f"at λ={top['lam']:g}")
                else:
                    text += f"; zero-shot accuracy {base['accuracy']:.3f} unshifted, no shift raises it"
            agrees = base is best or best["loss"] >= base["loss"]
            text += (". This agrees with" if agrees else ". This differs from")
        else:
            text += ". Without the unshifted point this neither agrees nor differs with"
        out.append(text + " Liang et al., who find the loss minimum at the learned gap (λ=0), not at zero gap.")
    return out


def write(rows: Sequence[dict], tables: dict, shift: dict[str, list[dict]], cfg,
          verdicts: Sequence = ()) -> tuple[str, list[dict]]:
    """(findings paragraph, comparisons table): the claims' verdicts, then the study's own reading."""
    from ..kit.claims import paragraph

    cmp = Comparisons(rows)
    tables["learned"], learned_text = learned(rows, cfg, cmp)
    out = [paragraph(verdicts)] + learned_text + (_k_sweep(rows, tables["k_sweep"], cfg, cmp)
           + _temporal(tables["temporal"], cfg, tables["paths"], cmp,
                       tables.get("direction_words", ())) + _paths(tables["paths"])
           + _gap(tables["temperature"], shift, cfg, cmp))
    d = cmp.unresolved()
    if d:
        out.append(f"Differences called within noise could not be resolved at this many seeds and items: the median "
                   f"detectable difference of those comparisons is {statistics.median(d):.3f} (in the metric's units).")
    mix = ("one task per step in turn" if cfg.task_weights is None else
           "one task per step, per cycle " + ", ".join(f"{w} x {t}" for t, w in zip(cfg.tasks, cfg.weights)))
    out.append(f"Setting: {cfg.steps} multi-task steps of batch {cfg.batch_size} ({mix}), "
               f"{len(cfg.seeds)} seed(s), {cfg.n_eval} test items per task; 'beyond noise' means a paired 95% "
               "interval over seeds (and items, for accuracies) that excludes zero.")
    return " ".join(s for s in out if s), cmp.done


def headline(rows: Sequence[dict], cfg, verdicts: Sequence = ()) -> str:
    """The report's first screen: the gap and the task scores at the paper's k against none, then the verdicts."""
    from ..kit.claims import headline_words

    cmp = Comparisons(rows)
    gap = cmp(("modular", cfg.default_k), ("modular", 0), "image_l2m")
    if gap is None:
        return headline_words(verdicts)
    scores = [(m, cmp(("modular", cfg.default_k), ("modular", 0), m)) for m in TASK_SCORES]
    ups = [m for m, p in scores if p is not None and p.sign > 0]
    downs = [m for m, p in scores if p is not None and p.sign < 0]
    return (f"With k={cfg.default_k} shared (universal) layers against none, the image-text centroid gap changes by "
            f"{_num(gap)}; task scores beyond noise up: {', '.join(ups) or 'none'}, "
            f"down: {', '.join(downs) or 'none'}. " + headline_words(verdicts))
