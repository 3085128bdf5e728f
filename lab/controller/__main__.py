"""Start the controller: python -m lab.controller --of-port P --ctl-port Q (both on 127.0.0.1)."""
import argparse
import os
import sys


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m lab.controller", description=__doc__)
    p.add_argument("--of-port", type=int, required=True, help="OpenFlow port on 127.0.0.1")
    p.add_argument("--ctl-port", type=int, default=0, help="control socket port on 127.0.0.1 (0: any free)")
    p.add_argument("--stats-interval", type=float, default=0.5)
    args = p.parse_args(argv)
    os.environ["TCPLAB_CTL_PORT"] = str(args.ctl_port)
    os.environ["TCPLAB_STATS_INTERVAL"] = str(args.stats_interval)
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager
    # Listen on loopback only (os-ken's default is every address).
    cfg.CONF(["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(args.of_port)], project="os_ken")
    AppManager.run_apps(["lab.controller.app"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
