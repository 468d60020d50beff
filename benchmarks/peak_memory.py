"""Run `nnctl ARGS...` in this process and report its peak memory as the last line on stderr:
`rss_kb=<peak resident kB> pandas=<True|False>` (whether pandas was imported).

Usage: python benchmarks/peak_memory.py predict MODEL < rows.csv   (used by bench.py and the tests)
It reads VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec, so a child
started by a big process (a benchmark holding PyTorch, say) would report the parent's peak.
"""

import runpy
import sys

sys.argv = ["nnctl", *sys.argv[1:]]
try:
    runpy.run_module("nnctl", run_name="__main__")
finally:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    sys.stderr.write(f"\nrss_kb={peak} pandas={'pandas' in sys.modules}\n")
