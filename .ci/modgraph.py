#!/usr/bin/env python3
"""Draws the import graph between a crate's modules and reports its cycles.

Usage: .ci/modgraph.py tasker/src [--depth N] [--check]

A module is a file under src (`a/b.rs` and `a/b/mod.rs` are `a::b`), cut to
`--depth` path segments (default 1: top-level modules). An edge A -> B is any
`crate::B...` path in A's file, including inside `use crate::{...}` groups and
`super::` paths resolved against A's own path. Tests (`#[cfg(test)] mod`
blocks and `tests.rs` files) are ignored. With --check, exits 1 when the graph
has a cycle.
"""
import os
import re
import sys


def module_of(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return []
    return rel


def strip_tests(text):
    # Drop `#[cfg(test)] mod x { ... }` blocks by brace matching.
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    text = "".join(out)
    text = re.sub(r"//[^\n]*", "", text)
    return text


def expand_groups(text):
    """Yields every `crate::...` / `super::...` path, groups expanded."""
    for m in re.finditer(r"\b(crate|super(?:::super)*)::", text):
        j = m.end()
        if text[j:j + 1] == "{":
            depth, k = 1, j + 1
            while depth:
                depth += {"{": 1, "}": -1}.get(text[k], 0)
                k += 1
            for part in split_top(text[j + 1:k - 1]):
                yield m.group(1), part.strip()
        else:
            p = re.match(r"[\w:]*", text[j:]).group(0)
            yield m.group(1), p


def split_top(s):
    depth, cur = 0, ""
    for ch in s:
        if ch == "," and depth == 0:
            yield cur
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    if cur.strip():
        yield cur


def main():
    args = sys.argv[1:]
    root = args[0]
    depth = int(args[args.index("--depth") + 1]) if "--depth" in args else 1
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            if n.endswith(".rs") and n != "tests.rs":
                p = os.path.join(d, n)
                files[tuple(module_of(root, p))] = p
    mods = {m for m in files if m}
    # Names the crate root re-exports (`pub use module::{A, B}`) resolve to
    # their module; an inline `mod x { .. }` of lib.rs counts as module `x`.
    reexports = {}
    lib = strip_tests(open(files[()]).read())
    for m in re.finditer(r"pub use (\w+)::\{([^}]*)\}|pub use (\w+)::(\w+);", lib):
        module = m.group(1) or m.group(3)
        for name in (m.group(2) or m.group(4)).split(","):
            if name.strip():
                reexports[name.strip()] = [module]
    for m in re.finditer(r"\bpub mod (\w+) \{", lib):
        mods.add((m.group(1),))
        files[(m.group(1),)] = files[()]
    def cut(m):
        return tuple(m[:depth])
    edges = {}
    for mod, path in files.items():
        if not mod:
            continue
        text = strip_tests(open(path).read())
        src = cut(mod)
        for kind, p in expand_groups(text):
            segs = [s for s in re.split(r"::", p) if s and s != "self"]
            segs = [s.split("{")[0].strip() for s in segs]
            if kind == "crate":
                base = []
                if segs and (segs[0],) not in mods and segs[0] in reexports:
                    segs = reexports[segs[0]] + segs[1:]
            else:
                base = list(mod[: len(mod) - kind.count("super")])
            target = base + segs
            # longest known module prefix
            best = None
            for n in range(len(target), 0, -1):
                if tuple(target[:n]) in mods:
                    best = tuple(target[:n])
                    break
            if best is None:
                continue
            dst = cut(best)
            if dst != src and not (dst == src[: len(dst)] or src == dst[: len(src)]):
                edges.setdefault(src, set()).add(dst)
    names = lambda m: "::".join(m)
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))
    for v in sorted({cut(m) for m in mods}):
        if v not in index:
            visit(v)
    for src in sorted(edges):
        print(f"{names(src)} -> {', '.join(sorted(names(d) for d in edges[src]))}")
    if sccs:
        for comp in sccs:
            print(f"CYCLE ({len(comp)} modules): {' '.join(names(c) for c in comp)}")
    else:
        print("no cycles")
    if "--check" in args and sccs:
        sys.exit(1)


sys.setrecursionlimit(10000)
main()
