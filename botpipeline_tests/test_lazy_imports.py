"""Loading the code location imports no heavy library; a deferred one is whole when first used."""

import subprocess
import sys

HEAVY = ("numpy", "requests", "urllib3", "pyarrow", "PIL", "sklearn", "scipy", "matplotlib",
         "torch", "detoxify", "pandas")


def test_the_code_location_loads_without_heavy_libraries():
    code = ("import sys, botpipeline.definitions; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_deferred_module_is_whole_when_threads_first_use_it_together():
    # A fresh interpreter, so the module is imported by the threads themselves.
    code = """
import threading
from botpipeline.lazy import lazy
Image = lazy("PIL.Image")
errors, barrier = [], threading.Barrier(8)
def use():
    barrier.wait()
    try:
        Image.new("P", (4, 4), 0)
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=use) for _ in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
print(errors)
"""
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == "[]"
