"""Packet-space algebra: exact sets of packets, with union, intersection, difference, complement.

A packet is a point in eleven dimensions (see :data:`DIMS`): source and destination address,
protocol, source and destination port, input and output interface, conntrack state, ICMP
type/code, TCP flags and the firewall mark. A :class:`Space` is a finite union of pairwise
disjoint **cubes**; a cube is a product of one set per dimension.

Representation, and why
-----------------------
* Dimensions over large ordered domains (addresses, ports, ICMP type*256+code, mark) hold a
  sorted tuple of disjoint half-open integer intervals ``((lo, hi), ...)``. A CIDR, a port range,
  an ``iprange`` and their negations are all one or two intervals, so the common case is a
  1-tuple and the operations take a fast path.
* Dimensions over small domains (protocol: 256 values, conntrack state: 5, TCP flags: 256
  combinations, interfaces: one class per name the ruleset mentions) are Python ints used as
  bitsets: intersection is ``&``, difference ``a & ~b``, emptiness ``== 0``, each a single
  machine-level operation on a small int. Interfaces use an *infinite* bitset: bit ``i`` is the
  i-th named class (``eth0``, or ``eth+`` meaning "other names starting with eth"), and every bit
  from ``len(classes)`` upwards stands for "a name the ruleset never mentions", so ``-1`` is
  "any interface" and negation needs no universe.
* Cubes are plain tuples (hashable, cheap to build); a space is a tuple of disjoint cubes.
  Difference of two cubes splits dimension by dimension into at most one piece per dimension
  (the classic "cube minus cube" decomposition), so results stay disjoint without a
  normalisation pass.
* Coverage questions ("do earlier rules together decide every packet of this rule?") use
  :func:`cover`: a depth-first split of the query cube against candidate cubes that stops at the
  first uncovered piece (a witness) — most rules are *not* shadowed and answer after a handful of
  cube operations, never materialising the union of earlier rules. :class:`CubeIndex` narrows
  the candidates with one prefix trie per address/port dimension.

Measured on this 2-core box (Python 3.11, other jobs running; ``python -m bench.fw_lint`` for
the whole linter): on two typical rule cubes (``-s 10.1.0.0/16 -i eth0 -p tcp --state NEW
--dport 22`` against a multiport rule) ``cube_meets`` takes about 4.5 µs, ``cube_le`` 4.8 µs,
``cube_and`` 12 µs and ``cube_sub`` 13 µs; a bitset AND costs 0.15 µs against 0.57 µs for the
same test on a one-interval tuple, hence bitsets for the small domains. BDDs were not
benchmarked: no BDD package is a dependency, and a pure-Python BDD needs a node per address
bit (104+ variables per rule), whereas most rules here are one cube and most coverage
questions are answered by the index and a corner probe without any splitting.

Dimensions that a packet does not have (ports of an ICMP packet, ICMP type of a TCP packet)
hold "any" in every cube a rule produces: iptables only constrains ports together with a port
protocol (``-p tcp --dport``), so those phantom values never split a port-less protocol.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from trustwall.firewall.ir import CT_STATES
from trustwall.firewall.protocols import protocol_name

Intervals = tuple[tuple[int, int], ...]
Cube = tuple  # one value per dimension: Intervals or int (bitset)
Point = tuple[int, ...]

SRC, DST, PROTO, SPORT, DPORT, IIF, OIF, STATE, ICMP, FLAGS, MARK = range(11)
DIMS = ("src", "dst", "proto", "sport", "dport", "in", "out", "state", "icmp", "flags",
        "mark")
#: True for interval dimensions, False for bitset dimensions.
IS_INTERVAL = (True, True, False, True, True, False, False, False, True, False, True)
_IV = tuple(d for d in range(len(DIMS)) if IS_INTERVAL[d])

STATES = CT_STATES

FULL_PROTO = (1 << 256) - 1
FULL_STATE = (1 << len(STATES)) - 1
FULL_FLAGS = (1 << 256) - 1
FULL_IFACE = -1
FULL_PORTS: Intervals = ((0, 1 << 16),)
FULL_ICMP: Intervals = ((0, 1 << 16),)
FULL_MARK: Intervals = ((0, 1 << 32),)


# --------------------------------------------------------------------------- intervals

def iv_and(a: Intervals, b: Intervals) -> Intervals:
    if len(a) == 1 and len(b) == 1:
        lo = a[0][0] if a[0][0] > b[0][0] else b[0][0]
        hi = a[0][1] if a[0][1] < b[0][1] else b[0][1]
        return ((lo, hi),) if lo < hi else ()
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def iv_meets(a: Intervals, b: Intervals) -> bool:
    """a ∩ b ≠ ∅, with an early exit (no result built)."""
    if a[0][0] >= b[-1][1] or b[0][0] >= a[-1][1]:
        return False
    if len(a) == 1 and len(b) == 1:
        return True
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i][0] < b[j][1] and b[j][0] < a[i][1]:
            return True
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return False


def iv_sub(a: Intervals, b: Intervals) -> Intervals:
    out = []
    j = 0
    for lo, hi in a:
        cur = lo
        while j < len(b) and b[j][1] <= cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] < hi:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            if b[k][1] > cur:
                cur = b[k][1]
            if cur >= hi:
                break
            k += 1
        if cur < hi:
            out.append((cur, hi))
    return tuple(out)


def iv_or(a: Intervals, b: Intervals) -> Intervals:
    merged = sorted(a + b)
    out: list[list[int]] = []
    for lo, hi in merged:
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1][1] = hi
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def iv_le(a: Intervals, b: Intervals) -> bool:
    """a ⊆ b (two pointers, early exit; b may hold touching intervals)."""
    if len(b) == 1:
        return b[0][0] <= a[0][0] and a[-1][1] <= b[0][1]
    j = 0
    nb = len(b)
    for lo, hi in a:
        while j < nb and b[j][1] <= lo:
            j += 1
        if j == nb or b[j][0] > lo:
            return False
        end = b[j][1]
        while end < hi:
            j += 1
            if j == nb or b[j][0] > end:
                return False
            end = b[j][1]
    return True


def iv_hull(a: Intervals) -> tuple[int, int]:
    return a[0][0], a[-1][1]


# --------------------------------------------------------------------------- universe

@dataclass(frozen=True)
class Universe:
    """The "any" value of every dimension for one address family and one interface naming.

    ``ifaces`` lists the interface classes: a plain name (``eth0``) or a wildcard class
    (``eth+``: names starting with ``eth`` that are not listed themselves).
    """

    family: int = 4
    ifaces: tuple[str, ...] = ()
    full: Cube = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        addr: Intervals = ((0, 1 << (32 if self.family == 4 else 128)),)
        object.__setattr__(self, "full", (addr, addr, FULL_PROTO, FULL_PORTS, FULL_PORTS,
                                          FULL_IFACE, FULL_IFACE, FULL_STATE, FULL_ICMP,
                                          FULL_FLAGS, FULL_MARK))

    @classmethod
    def for_names(cls, family: int, names: Iterable[str]) -> Universe:
        """A universe whose interface classes cover every name and wildcard in ``names``."""
        return cls(family, tuple(sorted(set(names))))

    def iface_bits(self, name: str) -> int:
        """The bitset of interfaces that ``-i name`` matches (``name`` may end in ``+``)."""
        if not name.endswith("+"):
            if name in self.ifaces:
                return 1 << self.ifaces.index(name)
            # A name outside the universe: conservative "unknown" is the caller's job; here it
            # is one of the unnamed interfaces, which we cannot tell apart.
            raise KeyError(name)
        prefix = name[:-1]
        bits = 0
        for i, cls_name in enumerate(self.ifaces):
            base = cls_name[:-1] if cls_name.endswith("+") else cls_name
            # "eth+" covers eth0 and the classes "eth1+" / "eth+" (names under a longer or equal
            # listed prefix), never "et+" (names under "et" that no longer prefix claims).
            if base.startswith(prefix):
                bits |= 1 << i
        if prefix == "":
            return FULL_IFACE
        return bits

    def iface_class(self, name: str) -> int:
        """The class (bit) a concrete interface name falls in: itself, the longest listed
        wildcard prefix, or "unnamed" (``len(ifaces)``)."""
        if name in self.ifaces:
            return self.ifaces.index(name)
        best, best_len = len(self.ifaces), -1
        for i, cls_name in enumerate(self.ifaces):
            if cls_name.endswith("+") and name.startswith(cls_name[:-1]) \
                    and len(cls_name) > best_len:
                best, best_len = i, len(cls_name)
        return best

    def iface_label(self, bit: int) -> str:
        if bit < len(self.ifaces):
            name = self.ifaces[bit]
            return f"other {name}" if name.endswith("+") else name
        return "other"

    def cube(self, **dims: object) -> Cube:
        """A cube that is "any" except for the given dimensions (``src=((lo, hi),)`` …)."""
        values = list(self.full)
        for name, value in dims.items():
            values[DIMS.index(name)] = value
        return tuple(values)


# --------------------------------------------------------------------------- cubes

def cube_and(a: Cube, b: Cube) -> Cube | None:
    out = []
    for d in range(11):
        x, y = a[d], b[d]
        if IS_INTERVAL[d]:
            v = x if x == y else iv_and(x, y)
            if not v:
                return None
        else:
            v = x & y
            if v == 0:
                return None
        out.append(v)
    return tuple(out)


def cube_merge(a: Cube, b: Cube) -> Cube | None:
    """The union of two cubes when it is itself a cube (they differ in at most one
    dimension), else None. Exact: used to print one line where a diff found two pieces."""
    differ = [d for d in range(len(a)) if a[d] != b[d]]
    if len(differ) > 1:
        return None
    if not differ:
        return a
    d = differ[0]
    merged = iv_or(a[d], b[d]) if IS_INTERVAL[d] else a[d] | b[d]
    return (*a[:d], merged, *a[d + 1:])


def cube_meets(a: Cube, b: Cube) -> bool:
    """True when the cubes intersect (cheaper than :func:`cube_and`: no result tuple)."""
    # Bitset dimensions first: one AND each.
    if not (a[PROTO] & b[PROTO] and a[STATE] & b[STATE] and a[IIF] & b[IIF]
            and a[OIF] & b[OIF] and a[FLAGS] & b[FLAGS]):
        return False
    for d in _IV:
        x, y = a[d], b[d]
        if x is y:
            continue
        if x[0][0] >= y[-1][1] or y[0][0] >= x[-1][1]:
            return False
        if (len(x) > 1 or len(y) > 1) and not iv_meets(x, y):
            return False
    return True


def cube_le(a: Cube, b: Cube) -> bool:
    """a ⊆ b."""
    for d in range(11):
        x, y = a[d], b[d]
        if x is y:
            continue
        if IS_INTERVAL[d]:
            if not iv_le(x, y):
                return False
        elif x & ~y:
            return False
    return True


def cube_sub(a: Cube, b: Cube) -> list[Cube]:
    """a − b as disjoint cubes (at most one piece per dimension)."""
    if not cube_meets(a, b):
        return [a]
    out = []
    cur = list(a)
    for d in range(11):
        x, y = cur[d], b[d]
        if x is y:
            continue
        if IS_INTERVAL[d]:
            outside = iv_sub(x, y)
            if outside:
                piece = cur.copy()
                piece[d] = outside
                out.append(tuple(piece))
                cur[d] = iv_and(x, y)
        else:
            outside = x & ~y
            if outside:
                piece = cur.copy()
                piece[d] = outside
                out.append(tuple(piece))
                cur[d] = x & y
    return out


def cube_point(a: Cube) -> Point:
    """One packet of the cube (the lowest value in each dimension)."""
    return tuple(a[d][0][0] if IS_INTERVAL[d] else (a[d] & -a[d]).bit_length() - 1
                 for d in range(11))


def cube_contains(a: Cube, p: Point) -> bool:
    for d in range(11):
        v = p[d]
        if IS_INTERVAL[d]:
            if not any(lo <= v < hi for lo, hi in a[d]):
                return False
        elif not (a[d] >> v) & 1:
            return False
    return True


# --------------------------------------------------------------------------- spaces

class Space:
    """A set of packets: disjoint cubes over one :class:`Universe`. Immutable by convention."""

    __slots__ = ("cubes", "universe")

    def __init__(self, universe: Universe, cubes: Iterable[Cube] = ()) -> None:
        self.universe = universe
        self.cubes: tuple[Cube, ...] = tuple(cubes)

    @classmethod
    def full(cls, universe: Universe) -> Space:
        return cls(universe, (universe.full,))

    @classmethod
    def empty(cls, universe: Universe) -> Space:
        return cls(universe, ())

    @classmethod
    def of(cls, universe: Universe, cube: Cube | None) -> Space:
        return cls(universe, () if cube is None else (cube,))

    def is_empty(self) -> bool:
        return not self.cubes

    def __bool__(self) -> bool:
        return bool(self.cubes)

    def __and__(self, other: Space) -> Space:
        out = []
        for a in self.cubes:
            for b in other.cubes:
                c = cube_and(a, b)
                if c is not None:
                    out.append(c)
        return Space(self.universe, out)

    def __sub__(self, other: Space) -> Space:
        pieces = list(self.cubes)
        for b in other.cubes:
            nxt: list[Cube] = []
            for a in pieces:
                nxt.extend(cube_sub(a, b))
            pieces = nxt
            if not pieces:
                break
        return Space(self.universe, pieces)

    def __or__(self, other: Space) -> Space:
        return Space(self.universe, self.cubes + (other - self).cubes)

    def complement(self) -> Space:
        return Space.full(self.universe) - self

    def __invert__(self) -> Space:
        return self.complement()

    def __le__(self, other: Space) -> bool:
        return all(cover(a, other.cubes).covered for a in self.cubes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        return self <= other and other <= self

    __hash__ = None  # type: ignore[assignment]

    def __contains__(self, point: Point) -> bool:
        return any(cube_contains(c, point) for c in self.cubes)

    def sample(self) -> Point | None:
        return cube_point(self.cubes[0]) if self.cubes else None

    def __repr__(self) -> str:
        return f"Space({'; '.join(describe(c, self.universe) for c in self.cubes) or 'empty'})"


@dataclass(frozen=True)
class Cover:
    """Result of :func:`cover`: whether the query is covered, by which candidates, or a witness.

    ``used`` holds the indexes (into the candidate list) of the cubes that covered some part of
    the query, in the order they were used; it is not minimal.
    """

    covered: bool
    used: tuple[int, ...] = ()
    witness: Cube | None = None
    gave_up: bool = False  # the work budget ran out: "not shown covered", not "uncovered"


def point_cube(p: Point) -> Cube:
    return tuple(((v, v + 1),) if IS_INTERVAL[d] else 1 << v for d, v in enumerate(p))


def cube_high(a: Cube) -> Point:
    """The packet with the highest value in each dimension (for a quick coverage probe)."""
    return tuple(a[d][-1][1] - 1 if IS_INTERVAL[d]
                 else ((~a[d]).bit_length() if a[d] < 0 else a[d].bit_length() - 1)
                 for d in range(11))


@functools.lru_cache(maxsize=4096)
def _set_bits(value: int) -> tuple[int, ...]:
    limit = max(value.bit_length(), (~value).bit_length()) + 1 if value < 0 else value.bit_length()
    return tuple(i for i in range(limit) if (value >> i) & 1)


def _least_covered_value(q: Intervals, ivs: list[Intervals]) -> tuple[int, int]:
    """(count, value): a value of ``q`` inside the fewest of ``ivs`` (a sweep over bounds)."""
    events: list[tuple[int, int]] = []
    for iv in ivs:
        for lo, hi in iv:
            events.append((lo, 1))
            events.append((hi, -1))
    for lo, hi in q:
        events.append((lo, 0))
        events.append((hi, 0))
    events.sort()
    count, best, i, n = 0, (len(ivs) + 1, q[0][0]), 0, len(events)
    while i < n:
        x = events[i][0]
        while i < n and events[i][0] == x:
            count += events[i][1]
            i += 1
        if count < best[0] and any(lo <= x < hi for lo, hi in q):
            best = (count, x)
            if count == 0:
                break
    return best


def _least_covered_bit(q: int, sets: list[int]) -> int:
    union = 0
    for v in sets:
        union |= v
    free = q & ~union
    if free:
        return (free & -free).bit_length() - 1
    best = (len(sets) + 1, 0)
    for bit in _set_bits(q)[:64]:
        n = sum((v >> bit) & 1 for v in sets)
        if n < best[0]:
            best = (n, bit)
    return best[1]


def gap_point(query: Cube, cands: Sequence[Cube]) -> Point | None:
    """Greedily pick, dimension by dimension, the value of ``query`` that the fewest remaining
    candidates contain; a packet no candidate contains is returned (a proof of "not covered"),
    else None (no conclusion). Finds the small holes of spoofing-protection rules quickly."""
    remaining = list(cands)
    point = list(cube_point(query))
    for d in range(11):
        if IS_INTERVAL[d]:
            _, v = _least_covered_value(query[d], [c[d] for c in remaining])
            remaining = [c for c in remaining if any(lo <= v < hi for lo, hi in c[d])]
        else:
            v = _least_covered_bit(query[d], [c[d] for c in remaining])
            remaining = [c for c in remaining if (c[d] >> v) & 1]
        point[d] = v
        if not remaining:
            return tuple(point)
    return None


def cover(query: Cube, candidates: Sequence[Cube], order: Sequence[int] | None = None,
          budget: int = 50_000) -> Cover:
    """Is ``query`` inside the union of ``candidates``? Depth-first, stops at the first gap.

    ``order`` optionally restricts and orders the candidate indexes to try. Two corner packets
    are probed first: an uncovered corner answers "no" without splitting anything. (Random
    probes were tried too and cost more than they saved on the TUM ruleset: its gaps are small
    spoofing-protection holes that random packets rarely hit.) ``budget``
    bounds the number of cube differences; past it the answer is ``gave_up``.
    """
    idx = [i for i in (range(len(candidates)) if order is None else order)
           if cube_meets(query, candidates[i])]
    for probe in (cube_point(query), cube_high(query)):
        if not any(cube_contains(candidates[i], probe) for i in idx):
            return Cover(False, (), point_cube(probe))
    if len(idx) > 2:
        gap = gap_point(query, [candidates[i] for i in idx])
        if gap is not None:
            return Cover(False, (), point_cube(gap))
    used: list[int] = []
    # Pieces wait with their parent's candidate list and an offset; they are filtered only
    # when popped, because the search usually ends (at a gap) before most are looked at.
    stack: list[tuple[Cube, list[int], int]] = [(query, idx, 0)]
    while stack:
        piece, parent, start = stack.pop()
        cands = []
        whole = None
        for i in parent[start:] if start else parent:
            c = candidates[i]
            if cube_meets(piece, c):
                if cube_le(piece, c):
                    whole = i
                    break
                cands.append(i)
        if whole is not None:
            if whole not in used:
                used.append(whole)
            continue
        if not cands:
            return Cover(False, tuple(used), piece)
        budget -= 1
        if budget < 0:
            return Cover(False, tuple(used), None, gave_up=True)
        first = cands[0]
        if first not in used:
            used.append(first)
        for part in cube_sub(piece, candidates[first]):
            stack.append((part, cands, 1))
    return Cover(True, tuple(used))


def minimal_blockers(query: Cube, candidates: Sequence[Cube], used: Sequence[int]) -> list[int]:
    """Greedily drop blockers from ``used`` while the rest still covers ``query``.

    The result is irredundant (no single member can be removed) but not necessarily the
    smallest possible set: finding that is set cover, NP-hard in general.
    """
    keep = list(used)
    for i in sorted(used, reverse=True):
        trial = [j for j in keep if j != i]
        if trial and cover(query, candidates, trial).covered:
            keep = trial
    return sorted(keep)


# --------------------------------------------------------------------------- index

_FEW_IFACES = 8


class CubeIndex:
    """Finds the cubes that may intersect a query, one prefix trie per interval dimension.

    Each inserted cube is filed, in each indexed dimension, under the smallest aligned block
    (of a few fixed sizes) containing the hull of its intervals. A query collects, in the
    dimension where that is fewest, the cubes filed on the path to its own block (blocks that
    contain it) plus those inside its block. Cubes come back in insertion order.
    """

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        addr_bits = 32 if universe.family == 4 else 128
        step = 8 if universe.family == 4 else 16
        self._dims = ((SRC, addr_bits, step), (DST, addr_bits, step), (DPORT, 16, 8),
                      (SPORT, 16, 8))
        # per dim: node key (level, prefix) -> [ids filed here], and subtree counts
        self._here: list[dict[tuple[int, int], list[int]]] = [{} for _ in self._dims]
        # node -> ids filed strictly below it (appended in insertion order)
        self._deep: list[dict[tuple[int, int], list[int]]] = [{} for _ in self._dims]
        # Interfaces: id lists per named class bit, and the cubes that allow many or unnamed.
        self._iface: dict[int, tuple[dict[int, list[int]], list[int]]] = {
            IIF: ({}, []), OIF: ({}, [])}
        self.cubes: list[Cube] = []

    @staticmethod
    def _block(hull: tuple[int, int], bits: int, step: int) -> tuple[int, int]:
        lo, hi = hull
        level = 0
        while level + step <= bits:
            nxt = level + step
            shift = bits - nxt
            if lo >> shift != (hi - 1) >> shift:
                break
            level = nxt
        return level, lo >> (bits - level)

    def add(self, cube: Cube) -> int:
        ident = len(self.cubes)
        self.cubes.append(cube)
        for k, (d, bits, step) in enumerate(self._dims):
            level, prefix = self._block(iv_hull(cube[d]), bits, step)
            self._here[k].setdefault((level, prefix), []).append(ident)
            deep = self._deep[k]
            for lv in range(0, level, step):
                deep.setdefault((lv, prefix >> (level - lv)), []).append(ident)
        for d, (buckets, wide) in self._iface.items():
            bits = _set_bits(cube[d]) if cube[d] >= 0 else ()
            if not bits or len(bits) > _FEW_IFACES:
                wide.append(ident)
            else:
                for b in bits:
                    buckets.setdefault(b, []).append(ident)
        return ident

    def _iface_candidates(self, query: Cube) -> tuple[int, list[int]] | None:
        """(count, ids) from the better interface dimension, or None when neither narrows."""
        best = None
        for d, (buckets, wide) in self._iface.items():
            v = query[d]
            if v < 0:
                continue
            bits = _set_bits(v)
            if len(bits) > _FEW_IFACES:
                continue
            count = len(wide) + sum(len(buckets.get(b, ())) for b in bits)
            if best is None or count < best[0]:
                best = (count, d, bits)
        if best is None:
            return None
        count, d, bits = best
        buckets, wide = self._iface[d]
        if len(bits) == 1:
            found = sorted(wide + buckets.get(bits[0], []))  # two sorted runs: linear in C
        else:
            found = sorted({*wide, *(i for b in bits for i in buckets.get(b, ()))})
        return count, found

    def candidates(self, query: Cube) -> list[int]:
        """Ids of cubes that may meet ``query`` (a superset), in insertion order."""
        best: tuple[int, int, int, int] | None = None
        for k, (d, bits, step) in enumerate(self._dims):
            level, prefix = self._block(iv_hull(query[d]), bits, step)
            here = self._here[k]
            count = len(self._deep[k].get((level, prefix), ()))
            for lv in range(0, level + 1, step):
                count += len(here.get((lv, prefix >> (level - lv)), ()))
            if best is None or count < best[0]:
                best = (count, k, level, prefix)
                if count == 0:
                    return []
        assert best is not None
        if best[0] > 16:
            by_iface = self._iface_candidates(query)
            if by_iface is not None and by_iface[0] < best[0]:
                return by_iface[1]
        _, k, level, prefix = best
        d, bits, step = self._dims[k]
        here = self._here[k]
        found: list[int] = []
        for lv in range(0, level + 1, step):
            found.extend(here.get((lv, prefix >> (level - lv)), ()))
        found.extend(self._deep[k].get((level, prefix), ()))
        found.sort()
        return found


# --------------------------------------------------------------------------- describe

def _addr_text(iv: Intervals, family: int) -> str:
    cls = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
    parts = []
    for lo, hi in iv:
        for net in ipaddress.summarize_address_range(cls(lo), cls(hi - 1)):
            parts.append(str(net.network_address) if net.prefixlen == net.max_prefixlen
                         else str(net))
    return ",".join(parts)


def _ports_text(iv: Intervals) -> str:
    return ",".join(str(lo) if hi - lo == 1 else f"{lo}:{hi - 1}" for lo, hi in iv)


def _bits(value: int, limit: int) -> list[int]:
    return [i for i in range(limit) if (value >> i) & 1]


def _icmp_text(iv: Intervals) -> str:
    parts = []
    for lo, hi in iv:
        if lo % 256 == 0 and hi % 256 == 0:
            parts.extend(str(t) for t in range(lo >> 8, hi >> 8))
        elif lo >> 8 == (hi - 1) >> 8:
            codes = str(lo & 255) if hi - lo == 1 else f"{lo & 255}-{(hi - 1) & 255}"
            parts.append(f"{lo >> 8}/{codes}")
        else:
            parts.append(f"{lo >> 8}/{lo & 255}..{(hi - 1) >> 8}/{(hi - 1) & 255}")
    return ",".join(parts)


def describe(cube: Cube, universe: Universe) -> str:
    """A short rule-like text: ``tcp dport 18745 state NEW from any``."""
    full = universe.full
    words: list[str] = []

    def interval_dim(d: int, label: str, text_of) -> None:  # type: ignore[no-untyped-def]
        v = cube[d]
        if v == full[d]:
            return
        neg = iv_sub(full[d], v)
        if len(neg) < len(v):
            words.append(f"{label} not {text_of(neg)}")
        else:
            words.append(f"{label} {text_of(v)}")

    proto = cube[PROTO]
    if proto != FULL_PROTO:
        neg = FULL_PROTO & ~proto
        chosen, prefix = (neg, "not ") if bin(neg).count("1") < bin(proto).count("1") else (
            proto, "")
        words.append(prefix + ",".join(protocol_name(p) for p in _bits(chosen, 256)))
    interval_dim(SPORT, "sport", _ports_text)
    interval_dim(DPORT, "dport", _ports_text)
    if cube[ICMP] != full[ICMP]:
        words.append("icmp-type " + _icmp_text(cube[ICMP]))
    if cube[STATE] != FULL_STATE:
        words.append("state " + ",".join(STATES[i] for i in _bits(cube[STATE], 5)))
    if cube[FLAGS] != FULL_FLAGS:
        words.append(f"tcp-flags({bin(cube[FLAGS]).count('1')} of 256 combinations)")
    for d, label in ((IIF, "in"), (OIF, "out")):
        v = cube[d]
        if v == FULL_IFACE:
            continue
        n = len(universe.ifaces)
        if v < 0:  # includes the unnamed interfaces: say what it excludes
            words.append(f"{label} not " + ",".join(
                universe.iface_label(i) for i in _bits(~v, n)))
        else:
            words.append(f"{label} " + ",".join(universe.iface_label(i) for i in _bits(v, n)))
    interval_dim(MARK, "mark", lambda iv: ",".join(
        hex(lo) if hi - lo == 1 else f"{hex(lo)}-{hex(hi - 1)}" for lo, hi in iv))
    for d, label in ((SRC, "from"), (DST, "to")):
        if cube[d] == full[d]:
            if d == SRC:
                words.append("from any")
            continue
        interval_dim(d, label, lambda iv: _addr_text(iv, universe.family))
    return " ".join(words)
