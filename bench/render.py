"""Rendering pathological texts as the annotate page does (annotator.rendering.markdown_render).

Times a first (uncached) and a second (cached) render of 1 MB of `[` and of `*a `, the inputs on
which markdown-it's inline parser is quadratic, and, as the baseline in the same run, plain
markdown-it with the same options (the renderer before it was bounded, uncached): on the same 1 MB,
or with --quick on 250,000 characters (its speedup then compares seconds per character).

    python bench/render.py [--quick]

The last line printed is one JSON object: render_1mb_brackets_s, render_1mb_stars_s (first
render), their cached_* second views, the baseline's seconds and the ratios.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1_000_000
INPUTS = {"brackets": "[", "stars": "*a "}


def _seconds(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller baseline (same output)")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-render-" + "x" * 40)
    os.environ.setdefault("CACHE_URL", "locmemcache://")
    import django

    django.setup()
    from markdown_it import MarkdownIt

    from annotator import rendering

    unbounded = (
        MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False})
        .enable(["table", "strikethrough"])
        .disable("image")
    )
    baseline_chars = 250_000 if args.quick else MB
    result: dict[str, float | int] = {"baseline_chars": baseline_chars}
    for name, unit in INPUTS.items():
        text = unit * (MB // len(unit))
        result[f"render_1mb_{name}_s"] = round(_seconds(rendering.markdown_render, text), 3)
        result[f"cached_1mb_{name}_s"] = round(_seconds(rendering.markdown_render, text), 4)
        small = unit * (baseline_chars // len(unit))
        measured = _seconds(unbounded.render, small)
        result[f"baseline_{name}_s"] = round(measured, 3)
        per_char = measured / len(small)
        result[f"speedup_{name}"] = round(per_char * len(text) / result[f"render_1mb_{name}_s"], 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
