"""Long fuzz pass: run every hypothesis property of tests/test_*fuzz*.py with many examples
and print the count. usage: python bench/fuzz.py [EXAMPLES per property]"""
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def properties():
    for path in sorted((ROOT / "tests").glob("test_*fuzz*.py")):
        module_name = path.stem
        module = __import__(module_name)
        for name in dir(module):
            obj = getattr(module, name)
            if name.startswith("test_") and hasattr(obj, "hypothesis"):
                yield f"{module_name}.{name}", obj


def main(examples: int) -> int:
    total, failed = 0, 0
    for name, prop in properties():
        start = time.time()
        try:
            prop()
            status = "ok"
        except Exception as e:  # a real failure: print it, count it, keep going
            failed += 1
            notes = " ".join(getattr(e, "__notes__", []))     # hypothesis: the failing example
            status = f"FAILED: {type(e).__name__}: {e} {notes}"
        total += examples
        print(f"{name}: {examples} examples in {time.time() - start:.0f} s: {status}", flush=True)
    print(f"{total} examples, {failed} failing properties")
    return 1 if failed else 0


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 35000
    os.environ["LOGREPORT_FUZZ_EXAMPLES"] = str(count)   # read by tests/strategies.py
    sys.exit(main(count))
