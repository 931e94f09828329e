"""Set laws of the packet-space algebra, checked against point membership (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trustwall.firewall.semantics import space as sp
from trustwall.firewall.semantics.space import Space, Universe

U4 = Universe.for_names(4, ["eth0", "eth1", "eth+", "lo"])

# Small value pools per dimension so random sets overlap often; the last values are far away
# so "any" differs from the small pools.
_POOLS = {
    sp.SRC: [0, 1, 2, 3, 5, 8, 13, 2**31, 2**32 - 1],
    sp.DST: [0, 1, 4, 7, 9, 2**32 - 1],
    sp.SPORT: [0, 1, 22, 23, 80, 65535],
    sp.DPORT: [0, 22, 23, 80, 443, 1024, 65535],
    sp.ICMP: [0, 8 * 256, 8 * 256 + 1, 65535],
    sp.MARK: [0, 1, 2, 2**32 - 1],
}
_BITS = {sp.PROTO: [1, 6, 17, 255], sp.STATE: [0, 1, 2, 3, 4], sp.FLAGS: [0, 2, 18, 255],
         sp.IIF: [0, 1, 2, 3, 4, 9], sp.OIF: [0, 1, 2, 3, 4, 9]}


@st.composite
def intervals(draw, d: int) -> sp.Intervals:  # type: ignore[no-untyped-def]
    full = U4.full[d]
    if draw(st.booleans()):
        return full
    hi_all = full[0][1]
    cuts = sorted(set(draw(st.lists(st.sampled_from(_POOLS[d] + [hi_all]), min_size=2,
                                    max_size=5))))
    ivs = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
    return tuple(ivs) or full


@st.composite
def bitset(draw, d: int) -> int:  # type: ignore[no-untyped-def]
    if draw(st.booleans()):
        return U4.full[d]
    bits = draw(st.lists(st.sampled_from(_BITS[d]), min_size=1, max_size=3))
    value = sum(1 << b for b in set(bits))
    if d in (sp.IIF, sp.OIF) and draw(st.booleans()):
        value = ~value or -1  # includes the unnamed interfaces
    return value


@st.composite
def cubes(draw) -> sp.Cube:  # type: ignore[no-untyped-def]
    # Constrain only a few dimensions per cube, as real rules do.
    constrained = draw(st.sets(st.sampled_from(range(11)), max_size=3))
    values = list(U4.full)
    for d in constrained:
        values[d] = draw(intervals(d)) if sp.IS_INTERVAL[d] else draw(bitset(d))
    return tuple(values)


spaces = st.lists(cubes(), max_size=3).map(
    lambda cs: Space.empty(U4) if not cs else _union(cs))


def _union(cs: list[sp.Cube]) -> Space:
    out = Space.empty(U4)
    for c in cs:
        out = out | Space.of(U4, c)
    return out


@st.composite
def points(draw) -> sp.Point:  # type: ignore[no-untyped-def]
    return tuple(draw(st.sampled_from(_POOLS[d])) if sp.IS_INTERVAL[d]
                 else draw(st.sampled_from(_BITS[d])) for d in range(11))


def _disjoint(s: Space, p: sp.Point) -> bool:
    return sum(sp.cube_contains(c, p) for c in s.cubes) <= 1


@settings(max_examples=80, deadline=None)
@given(spaces, spaces, st.lists(points(), min_size=5, max_size=5))
def test_boolean_operations_agree_with_membership(a: Space, b: Space, pts) -> None:  # type: ignore[no-untyped-def]
    both, either, minus, comp = a & b, a | b, a - b, ~a
    for p in pts:
        assert (p in both) == (p in a and p in b)
        assert (p in either) == (p in a or p in b)
        assert (p in minus) == (p in a and p not in b)
        assert (p in comp) == (p not in a)
        for s in (both, either, minus, comp):
            assert _disjoint(s, p)


@settings(max_examples=60, deadline=None)
@given(spaces, spaces)
def test_set_laws(a: Space, b: Space) -> None:
    assert (a & b) <= a
    assert a <= (a | b)
    assert ((a - b) & b).is_empty()
    assert ((a - b) | (a & b)) == a
    assert ~~a == a
    assert (~(a | b)) == (~a & ~b)  # De Morgan
    assert (a <= b) == (a - b).is_empty()
    assert (a | ~a) == Space.full(U4)


@settings(max_examples=60, deadline=None)
@given(cubes(), st.lists(cubes(), max_size=6))
def test_cover_agrees_with_difference(query: sp.Cube, cands: list[sp.Cube]) -> None:
    result = sp.cover(query, cands)
    exact = (Space.of(U4, query) - Space(U4, cands)).is_empty()
    assert result.covered == exact
    if result.covered:
        keep = sp.minimal_blockers(query, cands, result.used)
        assert sp.cover(query, cands, keep).covered
    else:
        assert result.witness is not None
        gap = Space.of(U4, result.witness) - Space(U4, cands)
        assert not gap.is_empty()


@settings(max_examples=60, deadline=None)
@given(st.lists(cubes(), max_size=12), cubes())
def test_index_returns_every_intersecting_cube(stored: list[sp.Cube], query: sp.Cube) -> None:
    index = sp.CubeIndex(U4)
    for c in stored:
        index.add(c)
    found = set(index.candidates(query))
    truth = {i for i, c in enumerate(stored) if sp.cube_meets(c, query)}
    assert truth <= found


def test_interface_wildcards_partition_names() -> None:
    eth_any = U4.iface_bits("eth+")
    assert eth_any & U4.iface_bits("eth0")
    assert eth_any & U4.iface_bits("eth1")
    assert not eth_any & U4.iface_bits("lo")
    assert eth_any >= 0  # does not include names the ruleset never mentions
    assert U4.iface_bits("+") == sp.FULL_IFACE


def test_describe_reads_like_a_rule() -> None:
    cube = U4.cube(proto=1 << 6, dport=((18745, 18746),), state=1 << sp.STATES.index("NEW"))
    assert sp.describe(cube, U4) == "tcp dport 18745 state NEW from any"
    neg = U4.cube(src=sp.iv_sub(U4.full[sp.SRC], ((10 << 24, 11 << 24),)))
    assert sp.describe(neg, U4) == "from not 10.0.0.0/8"


def test_cube_merge_is_the_exact_union_or_none():
    a = list(U4.full)
    b = list(U4.full)
    a[sp.DPORT] = ((22, 23),)
    b[sp.DPORT] = ((80, 81),)
    merged = sp.cube_merge(tuple(a), tuple(b))
    assert merged is not None and merged[sp.DPORT] == ((22, 23), (80, 81))
    b[sp.SRC] = ((5, 6),)
    assert sp.cube_merge(tuple(a), tuple(b)) is None  # differ in two dimensions
    assert sp.cube_merge(tuple(a), tuple(a)) == tuple(a)
