"""The study kit: cache keys that follow every result-deciding field, the registry, the cell
loop and its cache, the Result contract, and the statistics that decide "beyond noise"."""
from __future__ import annotations

import copy
import dataclasses
import json
import math

import pytest
from scipy import stats as st

from workbench.studies import cam_counterfactual, cp_rank_ablation, kit, world_and_model

STUDIES = [(world_and_model.Config, world_and_model.CACHE_SKIP),
           (cam_counterfactual.Config, cam_counterfactual.CACHE_SKIP),
           (cp_rank_ablation.Config, cp_rank_ablation.CACHE_SKIP)]


def _flip(value):
    """Another value of the same kind (validity does not matter: the key is computed from data)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5 + 0.1
    if isinstance(value, str):
        return value + "_x"
    if value is None:
        return "x"
    if isinstance(value, tuple):
        return value[:-1] if len(value) > 1 else (*value, value[0] if value else 1)
    if isinstance(value, dict):
        return {**value, "x": "y"}
    raise TypeError(f"no flip for {value!r}")


@pytest.mark.parametrize("cls,skip", STUDIES, ids=lambda x: getattr(x, "__module__", ""))
def test_cache_key_moves_with_every_field_but_the_skip_list(cls, skip):
    cfg = cls()
    base = kit.config_key(cfg, skip)
    for f in dataclasses.fields(cls):
        other = copy.copy(cfg)
        object.__setattr__(other, f.name, _flip(getattr(cfg, f.name)))
        moved = kit.config_key(other, skip) != base
        assert moved == (f.name not in skip), f"{cls.__module__}.{f.name}: key {'moved' if moved else 'stayed'}"


def test_skip_list_must_name_real_fields():
    with pytest.raises(ValueError, match="nope"):
        kit.config_key(cp_rank_ablation.Config(), ("nope",))


def test_weights_fingerprint_sees_values_and_dtypes():
    import torch

    a = torch.nn.Linear(3, 2)
    fp = kit.weights_fingerprint(a)
    b = copy.deepcopy(a)
    assert kit.weights_fingerprint(b) == fp
    with torch.no_grad():
        b.weight[0, 0] += 1e-6
    assert kit.weights_fingerprint(b) != fp
    assert kit.weights_fingerprint(copy.deepcopy(a).double()) != fp


def test_registry_names_bad_ids_and_orders_needs():
    reg = kit.Registry("toy")
    reg.register("a", "A")(lambda ctx, cell: {"v": 1})
    reg.register("b", "B", needs=("a",), sweep="ranks")(lambda ctx, cell: {"v": 2})
    assert reg["b"].sweep == "ranks" and reg.labels() == {"a": "A", "b": "B"}
    assert reg.with_needs(["b"]) == ("a", "b")
    with pytest.raises(ValueError, match="unknown 'c'; accepted: a, b"):
        reg.check(("a", "c"))
    with pytest.raises(ValueError, match="sequence"):
        reg.check("a")
    with pytest.raises(ValueError, match="twice"):
        reg.register("a", "again")(lambda ctx, cell: {})
    with pytest.raises(ValueError, match="not registered before"):
        reg.register("d", "D", needs=("zz",))(lambda ctx, cell: {})
    with pytest.raises(KeyError, match="accepted: a, b"):
        reg["x"]


def test_method_ids_are_one_vocabulary():
    shared = {"zero_shot", "linear_probe", "full_ft"}
    assert shared <= set(cam_counterfactual.METHODS) and shared <= set(cp_rank_ablation.METHODS)


def test_run_cells_caches_and_reports_progress(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_RUNNER", "1")
    cfg = cp_rank_ablation.Config()
    cache = kit.CellCache("toy", cfg, skip=cp_rank_ablation.CACHE_SKIP, weights="w")
    calls = []

    def compute(cell):
        calls.append(cell.id)
        return {"acc": 0.5 + (cell.seed or 0) / 10}

    cells = [kit.Cell("m", 2, 0), kit.Cell("m", 2, 1), kit.Cell("z")]
    first = kit.run_cells(cells, compute, cache=cache, desc="toy")
    assert [r["cached"] for r in first] == [False] * 3 and calls == ["m-r2-s0", "m-r2-s1", "z"]
    assert "toy: 2/3 m-r2-s1" in capfd.readouterr().err  # one line per cell for the runner's terminal
    again = kit.run_cells(cells, compute, cache=cache, desc="toy", progress=False)
    assert [r["cached"] for r in again] == [True] * 3 and len(calls) == 3
    assert [r["acc"] for r in again] == [r["acc"] for r in first]
    assert again[0] | {"cached": False} == first[0]


def test_a_corrupt_cell_is_set_aside_and_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    cache = kit.CellCache("toy", cp_rank_ablation.Config(), weights="w")
    cell = kit.Cell("m", None, 0)
    cache.save(cell, {"acc": 1.0})
    cache.path(cell).write_text('{"acc": 1.')  # truncated
    with pytest.warns(RuntimeWarning, match="unreadable.*set aside"):
        rows = kit.run_cells([cell], lambda c: {"acc": 0.25}, cache=cache, progress=False)
    assert rows[0]["acc"] == 0.25 and not rows[0]["cached"]
    assert cache.path(cell).with_name(cache.path(cell).name + ".corrupt").is_file()
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.warns(RuntimeWarning, match="empty.pt"):
        assert kit.load_tensors(tmp_path / "empty.pt") is None


def test_result_contract(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = kit.Result(study="toy", config=cp_rank_ablation.Config(), output_dir=kit.output_dir(tmp_path / "o", "toy"),
                   rows=[{"method": "m", "setting": None, "seed": 0, "acc": 0.5}], findings="f.",
                   timings={"total": 1.5})
    fig, _ = plt.subplots()
    assert r.save_figure(fig, "fig") is None
    data = json.loads(r.write().read_text())
    assert set(data) == {"study", "config", "rows", "metrics", "tables", "findings", "headline", "main_table",
                         "percent", "figures", "figure_captions", "timings", "seconds", "environment", "claims",
                         "claims_family"}
    assert data["figures"] == ["figures/fig.png"] and data["seconds"] == 1.5
    assert data["config"]["ranks"] == list(cp_rank_ablation.Config().ranks)
    assert {"torch", "python", "device", "threads"} <= set(data["environment"])


def test_device_and_preset_errors_name_the_value():
    with pytest.raises(ValueError, match="device='gpu0'"):
        kit.device("gpu0")
    with pytest.raises(TypeError, match="no field.*stepz"):
        cp_rank_ablation.Config.preset(stepz=3)
    assert kit.device(None).type in ("cpu", "cuda")


# ---------------------------------------------------------------------------- statistics
def test_summary_interval_is_the_t_interval():
    v = [0.70, 0.74, 0.71, 0.77]
    s = kit.summary(v)
    h = st.t.ppf(0.975, 3) * st.tstd(v) / math.sqrt(4)
    assert s.lo == pytest.approx(s.mean - h) and s.hi == pytest.approx(s.mean + h) and s.n == 4
    one = kit.summary([0.5])
    assert one.lo is None and one.std == 0.0


def test_paired_difference_verdicts():
    # the example: per-seed gains +1.6, +1.3, +0.1 points -> p ~ 0.16: within noise
    a, b = [0.516, 0.513, 0.501], [0.5, 0.5, 0.5]
    p = kit.paired_values(a, b)
    assert p.verdict == "within noise" and p.lo < 0 < p.hi
    assert st.ttest_rel(a, b).pvalue == pytest.approx(0.16, abs=0.02)
    assert p.detectable > abs(p.diff) and "could detect about" in p.words()
    consistent = kit.paired_values([0.61, 0.62, 0.60, 0.615], [0.50, 0.505, 0.49, 0.50])
    assert consistent.verdict == "beyond noise" and consistent.sign == 1 and consistent.lo > 0
    assert "1 seed: no interval" in kit.paired_values([0.6], [0.5]).words()


def test_paired_over_rows_pairs_seeds_and_a_seedless_baseline():
    rows = [{"method": "zs", "setting": None, "seed": None, "acc": 0.5}]
    rows += [{"method": "ft", "setting": 8, "seed": s, "acc": 0.6 + s / 100} for s in range(3)]
    p = kit.paired(rows, ("ft", 8), "zs", "acc")
    assert p.n == 3 and p.diff == pytest.approx(0.11) and p.beyond_noise
    with pytest.raises(KeyError, match="no rows"):
        kit.paired(rows, "lp", "zs", "acc")


def test_item_level_values_add_their_spread():
    # one seed: the interval comes from the items alone (a paired t over 100 items)
    a_items = [[1] * 60 + [0] * 40]
    b_items = [[1] * 50 + [0] * 50]
    p = kit.paired_values([0.6], [0.5], items=(a_items, b_items))
    d = [x - y for x, y in zip(a_items[0], b_items[0])]
    h = st.t.ppf(0.975, 99) * st.tstd(d) / 10
    assert p.lo == pytest.approx(0.1 - h) and p.hi == pytest.approx(0.1 + h)
    rows = [{"method": m, "setting": None, "seed": 0, "acc": v, "acc_items": it}
            for m, v, it in (("a", 0.6, a_items[0]), ("b", 0.5, b_items[0]))]
    assert kit.paired(rows, "a", "b", "acc").lo == pytest.approx(p.lo)


def test_summarise_groups_rows():
    rows = [{"method": "m", "setting": 1, "seed": s, "acc": v} for s, v in enumerate((0.2, 0.4, 0.9))]
    rows.append({"method": "z", "setting": None, "seed": None, "acc": 0.3})
    m, z = kit.summarise(rows, ("acc",))
    assert m["seeds"] == 3 and m["acc"] == pytest.approx(0.5) and m["acc_ci"][0] < 0.5 < m["acc_ci"][1]
    assert z["seeds"] == 1 and z["acc_ci"] is None and z["acc_std"] == 0.0
