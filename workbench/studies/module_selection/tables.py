"""Study 04's tables as the notebook shows them: "mean ± std" strings, one row per model / path / temperature."""
from __future__ import annotations

from typing import Any

from .findings import fmt

K_COLUMNS = ("image_l2m", "image_l2i", "image_rmg", "image_uniformity", "image_paired_cos", "video_l2m", "video_rmg",
             "image_r1", "video_r1", "slot_mean", "caption_slots", "cider", "qa_acc", "cls_acc", "dir_acc",
             "logit_scale")
# direction from text scores (dir/sign/axis), from a linear probe on the clip embedding, reversal cosine
TEMPORAL_COLUMNS = ("dir_acc", "sign_acc", "axis_acc", "probe_dir_acc", "probe_sign_acc", "reverse_cos", "video_r1",
                    "qa_acc_direction", "train_seconds")
TEMPERATURE_COLUMNS = ("image_l2m", "image_l2i", "image_rmg", "image_paired_cos", "image_r1")


def _rows(table: list[dict], columns, first: dict) -> list[dict]:
    return [{**{k: f(r) for k, f in first.items()}, **{c: fmt(r, c) for c in columns}} for r in table]


def k_table(result) -> list[dict]:
    """The k sweep: the shared universal layers and, at the same k, their unshared copies (the capacity control)."""
    universal = {"modular": "shared", "modular_unshared": "unshared copies"}
    return _rows(result.table("k_sweep"), K_COLUMNS, {"k": lambda r: r["setting"],
                                                     "universal": lambda r: universal.get(r["method"], r["method"]),
                                                     "seeds": lambda r: r["seeds"]})


def temporal_table(result) -> list[dict]:
    rows = _rows(result.table("temporal"), TEMPORAL_COLUMNS,
                 {"model": lambda r: r["label"], "k": lambda r: "-" if r["setting"] is None else r["setting"]})
    paths = {r["path"]: r for r in result.table("paths") if r["task"] == "video_retrieval"}
    for row, r in zip(rows, result.table("temporal")):
        temporal = r["method"] == "modular"
        p = paths.get("vision -> temporal -> universal -> text" if temporal else "vision -> universal -> text")
        on_path = r["method"] in ("modular", "no_temporal")  # the others are not the modular model's path
        row["video MFLOPs/item"] = f"{p['flops'] / 1e6:.2f}" if p and on_path else "n/a"
    return rows


def path_rows(result) -> list[dict]:
    return [{"task": r["task"], "path": r["path"] + (" (default)" if r["default"] else ""), "score": r["score_name"],
             "value": fmt(r, "score"), "MFLOPs/item": f"{r['flops'] / 1e6:.2f}", "ms/item": f"{r['ms_per_item']:.2f}"}
            for r in result.table("paths")]


def temperature_rows(result) -> list[dict]:
    return _rows(sorted(result.table("temperature"), key=lambda r: -r["setting"]), TEMPERATURE_COLUMNS,
                 {"temperature": lambda r: r["setting"], "seeds": lambda r: r["seeds"]})


def kept_by_name(result) -> dict[str, Any]:
    """The first seed's kept outputs by a model name for figures: tiny-world-clip, modular k=..., no temporal."""
    out = {}
    for (method, setting), kept in result.kept.items():
        name = {"dual_encoder": "tiny-world-clip", "modular": f"modular k={setting}",
                "no_temporal": f"modular k={setting}, no temporal"}.get(method)
        if name:
            out[name] = kept
    return out
