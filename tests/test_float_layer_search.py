"""The float-layer search shared by every int8 format (issue 26): the fewest layers from the
top of a ranking that make a file hold, found by doubling then bisection; the cap."""

from edgeaffect.export.mixed_precision import FloatLayer, float_layer_cap, keep_float_until_held


def _ranked(n):
    return [FloatLayer(f"op{i}", "ADD", "accuracy", f"rank {i}") for i in range(n)]


def _search(n_ranked, needed, cap, kept=()):
    """A file holds once its float nodes include the first ``needed`` of the ranking."""
    calls = []
    kept = list(kept)

    def write(nodes):
        return ",".join(nodes).encode()

    def accept(blob):
        nodes = set(blob.decode().split(",")) if blob else set()
        calls.append(len(nodes))
        return [] if {f"op{i}" for i in range(needed)} <= nodes else ["p95 too far"]

    blob = keep_float_until_held(_ranked(n_ranked), kept, write, accept, ["p95 too far"], cap)
    return blob, kept, calls


def test_the_fewest_that_hold_are_found_in_a_few_files():
    blob, kept, calls = _search(100, needed=13, cap=50)
    assert [k.node for k in kept] == [f"op{i}" for i in range(13)]
    assert blob.decode().split(",") == [f"op{i}" for i in range(13)]
    assert len(calls) <= 9  # 1, 2, 4, 8, 16, then bisection in (8, 16]: not one file per layer
    assert all("the file failed: p95 too far" in k.detail for k in kept)


def test_one_layer_is_enough_when_the_first_holds():
    _, kept, calls = _search(10, needed=1, cap=8)
    assert [k.node for k in kept] == ["op0"] and calls == [1]


def test_the_cap_stops_the_search_and_keeps_the_largest_tried():
    blob, kept, _ = _search(100, needed=40, cap=10)
    assert len(kept) == 10 and blob.decode().count(",") == 9


def test_layers_already_kept_are_not_counted_twice():
    speed = [FloatLayer("op0", "CONV_2D", "speed", "slower in int8 here")]
    _, kept, _ = _search(20, needed=3, cap=8, kept=speed)
    assert [k.node for k in kept] == ["op0", "op1", "op2"]


def test_the_default_cap_is_8_or_half_of_the_candidates():
    assert float_layer_cap(None, _ranked(10)) == 8
    assert float_layer_cap(None, _ranked(120)) == 60
    assert float_layer_cap(3, _ranked(120)) == 3 and float_layer_cap(0, _ranked(5)) == 0
