"""Two saved runs of bench/run.py side by side: every verdict, before and after.

``python bench/compare.py BEFORE.json AFTER.json`` reads what ``bench/run.py
--save FILE`` wrote and prints, for each verdict of either run, both ratios and
both verdicts (``-`` where a run did not have it: a section not run, or other
counts, as --quick uses).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchlib import Verdict  # noqa: E402

Key = tuple[str, str, str, str]


def verdicts(path: Path) -> dict[Key, Verdict]:
    data = json.loads(path.read_text())
    out: dict[Key, Verdict] = {}
    for item in data["verdicts"]:
        v = Verdict(**item)
        out[(v.section, v.subject, v.reference, v.metric)] = v
    return out


def cell(v: Verdict | None) -> str:
    if v is None:
        return f"{'-':>7} {'':<10}"
    ratio = f"{v.ratio:6.2f}x" if v.ratio is not None else f"{'-':>7}"
    return f"{ratio} {v.mark:<10}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    before, after = verdicts(args.before), verdicts(args.after)
    keys = list(before) + [k for k in after if k not in before]
    sec = max((len(k[0]) for k in keys), default=0)
    what = max((len(f"{k[1]} / {k[2]}") for k in keys), default=0)
    print(
        f"{'section':<{sec}}  {'comparison':<{what}}  {'metric':<8} {'target':<8}  "
        f"{'before':<18} after"
    )
    for key in keys:
        b, a = before.get(key), after.get(key)
        v = a or b
        assert v is not None
        target = f"<= {v.target:g}x" if v.target is not None else ""
        print(
            f"{key[0]:<{sec}}  {f'{key[1]} / {key[2]}':<{what}}  {key[3]:<8} {target:<8}  "
            f"{cell(b)} {cell(a)}"
        )


if __name__ == "__main__":
    main()
