#!/usr/bin/env python3
"""Checks that no two Rust modules under a directory import each other, directly or in a
circle. A module imports another when its code (outside comments and `#[cfg(test)] mod
tests`) names it through a `crate::`, `super::` or `self::` path, or a child module by its
name, in a `use` line or inline.

    python3 scripts/module-cycles.py src [-v]            # -v prints every module's imports
    python3 scripts/module-cycles.py src/intranet        # only circles that touch src/intranet

Paths resolve from the crate's root (the nearest directory up with a lib.rs or main.rs), so a
subdirectory is checked with its `crate::` imports understood. Exits 1 and names the modules
when it finds a circle."""
import os
import re
import sys


def modules(root):
    """Module path (a tuple) -> file, for every .rs file under root."""
    found = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith('.rs'):
                path = os.path.join(dirpath, f)
                name = os.path.relpath(path, root)[:-3].split(os.sep)
                if name[-1] == 'mod':
                    name = name[:-1]
                if name in (['lib'], ['main']):
                    name = []
                found[tuple(name)] = path
    return found


def resolve(mods, here, path):
    """The longest module prefix of `path` (seen from module `here`), or None."""
    parts = path.split('::')
    if parts[0] == 'crate':
        base, rest = [], parts[1:]
    elif parts[0] == 'super':
        base, rest = list(here[:-1]), parts[1:]
        while rest and rest[0] == 'super':
            base, rest = base[:-1], rest[1:]
    elif parts[0] == 'self':
        base, rest = list(here), parts[1:]
    else:
        return None
    best = tuple(base) if tuple(base) in mods else None
    for part in rest:
        base.append(part)
        if tuple(base) not in mods:
            break
        best = tuple(base)
    return best


def imports(mods):
    paths = re.compile(r'\b((?:crate|super|self)(?:::\w+)+)')
    groups = re.compile(r'\b((?:crate|super|self)(?:::\w+)*)::\{([^}]*)\}')
    edges = {m: set() for m in mods}
    for here, file in mods.items():
        text = open(file, encoding='utf-8').read()
        text = re.sub(r'//[^\n]*', '', text)
        text = re.split(r'#\[cfg\(test\)\]\s*mod tests', text)[0]
        found = paths.findall(text)
        for prefix, items in groups.findall(text):
            for item in items.split(','):
                item = item.strip().split(' as ')[0].strip()
                if item and item != 'self':
                    found.append(prefix + '::' + item.split('::')[0])
        for path in found:
            target = resolve(mods, here, path)
            if target is not None and target != here:
                edges[here].add(target)
        # `child::item` in a module that declares `mod child;` (no `self::` needed).
        for child in re.findall(r'(?<![:\w])(\w+)::', text):
            if here + (child,) in mods:
                edges[here].add(here + (child,))
    return edges


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    sys.setrecursionlimit(10_000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def crate_root(directory):
    d = os.path.abspath(directory)
    while not any(os.path.exists(os.path.join(d, f)) for f in ('lib.rs', 'main.rs')):
        parent = os.path.dirname(d)
        if parent == d:
            return os.path.abspath(directory)
        d = parent
    return d


def main():
    args = [a for a in sys.argv[1:] if a != '-v']
    root = args[0] if args else 'src'
    src = crate_root(root)
    scope = tuple(os.path.relpath(os.path.abspath(root), src).split(os.sep))
    scope = () if scope == ('.',) else scope
    edges = imports(modules(src))
    within = lambda m: m[:len(scope)] == scope
    name = lambda m: '::'.join(m) or '(crate root)'
    if '-v' in sys.argv:
        for m in sorted(filter(within, edges), key=name):
            print(f'{name(m):24} -> {", ".join(sorted(name(t) for t in edges[m]))}')
    found = [c for c in cycles(edges) if any(within(m) for m in c)]
    for component in found:
        print(f'{root}: these modules import each other in a circle: '
              + ', '.join(sorted(name(m) for m in component)))
    if not found:
        print(f'{root}: {sum(1 for m in edges if within(m))} modules, no circle')
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
