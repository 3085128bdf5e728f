"""`tcplab bench`: the benchmark sections, their figures printed and kept in docs/benchmarks.md."""
from ..errors import LabError


def cmd_bench(args):
    import json as _json

    from .. import bench, bench_more, stability
    say = print
    figures = {}
    sections = args.only.split(",") if args.only else ["lifecycle", "library", "storm", "throughput", "soak",
                                                         "tracing", "classroom"]
    sizes = [int(x) for x in args.sizes.split(",")]
    steps = {
        "lifecycle": (f"lifecycle: single with {args.sizes} hosts, tcplab vs bare Mininet, {args.rounds} alternating rounds",
                      lambda: bench.lifecycle(sizes, args.rounds, say)),
        "library": ("library: tcplab run all", lambda: bench.library_run(say)),
        "storm": (f"storm: {args.clients} clients at one server", lambda: bench.storm(args.clients, say)),
        "throughput": ("throughput: guest writer->reader vs iperf3", lambda: bench.throughput(3, say)),
        "soak": (f"soak: {args.soak} consecutive runs with a leak check after each, then two runs at once",
                 lambda: bench.soak(args.soak, say)),
        "tracing": ("tracing: the library with and without the kernel event stream", lambda: bench_more.tracing(say)),
        "classroom": ("classroom: a class of 30 graded with --jobs 1, 2 and 4", lambda: bench_more.classroom(say)),
        "stability": (f"stability: {'the library' if args.scenarios == 'all' else args.scenarios} under {args.stability}",
                      lambda: stability.stability({k: int(v) for k, v in (x.split("=") for x in args.stability.split(","))},
                                                  say, names=args.scenarios.split(","))),
    }
    unknown = [s for s in sections if s not in steps]
    if unknown:
        raise LabError(f"unknown bench section {', '.join(unknown)} (sections: {', '.join(steps)})")
    for i, name in enumerate(sections, 1):
        title, step = steps[name]
        say(f"{i}. {title}")
        figures[name] = step()
        if name == "soak":
            figures["concurrent"] = bench.concurrent(say)
    machine = bench.machine_description()
    if args.write:
        bench.write_page(args.write, machine, figures)
        say(f"\nwritten: {args.write}")
    if args.json:
        with open(args.json, "w") as f:
            _json.dump({"machine": machine, "figures": figures}, f, indent=1, default=str)
    return 0
