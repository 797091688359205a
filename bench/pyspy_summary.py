"""Summarise py-spy collapsed stacks (``--format raw``): where the server's samples go.

    .venv/bin/python bench/pyspy_summary.py bench/results/sqlite-agent.txt [--top 25]

Prints the share of samples per package (self time: the package of the
innermost Python frame, so native frames recorded with ``py-spy --native``
count for the Python code that called them) and the functions with the
highest inclusive share. ``--main-thread`` keeps only the event loop's thread
(uvicorn's), leaving out driver and thread-pool threads.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]+)(?::\d+)?\)$")
NATIVE = re.compile(r"\.(c|cpp|h|hpp|pyx)$|\.so(\.\d+)*$|^0x")
MAIN_THREAD_ROOT = "_run_module_as_main"


def stacks(path: Path) -> Iterator[tuple[list[str], int]]:
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            yield stack.split(";"), int(count)


def package(frame: str) -> str:
    match = FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    return file.split("/", 1)[0] if "/" in file else file.removesuffix(".py")


def function(frame: str) -> str:
    match = FRAME.match(frame)
    return f"{match['func']} ({match['file']})" if match else frame


def is_native(frame: str) -> bool:
    match = FRAME.match(frame)
    return match is None or bool(NATIVE.search(match["file"])) or frame.startswith("0x")


def innermost_python(frames: list[str]) -> str:
    for frame in reversed(frames):
        if not is_native(frame):
            return frame
    return frames[-1]


def summarise(path: Path, main_thread: bool = False
              ) -> tuple[int, Counter[str], Counter[str]]:
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks(path):
        if main_thread and not any(MAIN_THREAD_ROOT in f for f in frames[:3]):
            continue
        total += count
        own[package(innermost_python(frames))] += count
        for name in {function(f) for f in frames}:
            inclusive[name] += count
    return total, own, inclusive


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--main-thread", action="store_true",
                        help="only the thread that runs the event loop")
    args = parser.parse_args(argv)
    for path in args.files:
        total, own, inclusive = summarise(path, args.main_thread)
        if not total:
            print(f"== {path}: no samples")
            continue
        print(f"== {path} ({total} samples)\n-- self time by package")
        for name, count in own.most_common(12):
            print(f"{count / total:6.1%}  {name}")
        print("-- inclusive, by function")
        for name, count in inclusive.most_common(args.top):
            print(f"{count / total:6.1%}  {name}")
        print()


if __name__ == "__main__":
    main()
