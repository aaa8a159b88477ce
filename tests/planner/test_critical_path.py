"""``model.graph.critical_path``: the one critical path the run report and the server show."""

from __future__ import annotations

from podium.model.graph import critical_path


def test_longest_busy_path_wins_not_the_last_to_finish() -> None:
    #  a(1) -> b(5) -> d(1);  a -> c(2) -> e(3): a-b-d is 7, a-c-e is 6
    deps = {"a": [], "b": ["a"], "c": ["a"], "d": ["b"], "e": ["c"]}
    w = {"a": 1.0, "b": 5.0, "c": 2.0, "d": 1.0, "e": 3.0}
    assert critical_path(deps, {}, w.__getitem__) == (["a", "b", "d"], 7.0)
    w["e"] = 4.5
    assert critical_path(deps, {}, w.__getitem__) == (["a", "c", "e"], 7.5)


def test_an_expanded_map_is_its_items() -> None:
    deps = {"load": [], "fit": ["load"], "pick": ["fit"]}
    items = {"fit": ["fit[0]", "fit[1]", "fit[2]"]}
    w = {"load": 1.0, "fit[0]": 2.0, "fit[1]": 9.0, "fit[2]": 3.0, "pick": 0.5}
    path, total = critical_path(deps, items, w.__getitem__)
    assert path == ["load", "fit[1]", "pick"] and total == 10.5


def test_deep_chains_and_empty_runs() -> None:
    n = 20_000  # no recursion: a long chain is fine
    deps = {f"t{i}": [f"t{i - 1}"] if i else [] for i in range(n)}
    path, total = critical_path(deps, {}, lambda _: 1.0)
    assert len(path) == n and total == n and path[0] == "t0"
    assert critical_path({}, {}, lambda _: 1.0) == ([], 0.0)
    assert critical_path({"x": ["gone"]}, {}, lambda _: 2.0) == (["x"], 2.0)  # unknown deps ignored
