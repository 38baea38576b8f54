"""Sutton's `tiles3` (the published Python module,
http://incompleteideas.net/tiles/tiles3.html), transcribed from its algorithm, for the
tests of tile coding and of the control agents that use it."""

import math


class IHT:
    """tiles3's index hash table: tuples numbered in order of first appearance;
    when full, `hash(tuple) % size`."""

    def __init__(self, size):
        self.size, self.dictionary, self.overfull = size, {}, 0

    def getindex(self, obj):
        if obj in self.dictionary:
            return self.dictionary[obj]
        if len(self.dictionary) >= self.size:
            self.overfull += 1
            return hash(obj) % self.size
        self.dictionary[obj] = len(self.dictionary)
        return self.dictionary[obj]


def hashcoords(coordinates, m):
    if isinstance(m, IHT):
        return m.getindex(tuple(coordinates))
    if isinstance(m, int):
        return hash(tuple(coordinates)) % m
    return coordinates


def tiles(iht_or_size, numtilings, floats, ints=()):
    qfloats = [math.floor(f * numtilings) for f in floats]
    result = []
    for tiling in range(numtilings):
        tiling_x2 = tiling * 2
        coords = [tiling]
        b = tiling
        for q in qfloats:
            coords.append((q + b) // numtilings)
            b += tiling_x2
        coords.extend(ints)
        result.append(hashcoords(coords, iht_or_size))
    return result
