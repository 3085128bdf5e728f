"""Start the controller: python -m lab.controller --of-port P --ctl-socket PATH --owner-pid PID --owner-start T.

OpenFlow listens on 127.0.0.1:P; the control channel is the Unix socket PATH (mode 0600), which only the
process PID (started at T clock ticks after boot, as in /proc/PID/stat) may use. The socket is removed when
the controller ends, also on SIGTERM (how the lab stops it).
"""
import argparse
import os
import signal
import sys


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m lab.controller", description=__doc__)
    p.add_argument("--of-port", type=int, required=True, help="OpenFlow port on 127.0.0.1")
    p.add_argument("--ctl-socket", required=True, help="the control channel's Unix socket path")
    p.add_argument("--owner-pid", type=int, required=True, help="the only process that may use the channel")
    p.add_argument("--owner-start", type=int, required=True, help="its start time (field 22 of /proc/PID/stat)")
    p.add_argument("--stats-interval", type=float, default=0.5)
    args = p.parse_args(argv)
    os.umask(0o077)               # nothing this process creates is for other users
    from .channel import ChannelError, ControlChannel, Owner
    try:
        channel = ControlChannel(args.ctl_socket, Owner(args.owner_pid, args.owner_start, os.geteuid()))
    except (ChannelError, OSError) as e:
        print(f"lab.controller: cannot open the control channel: {e}", file=sys.stderr)
        return 2

    def stop(signum, frame):
        channel.close()
        sys.stdout.flush()
        os._exit(0)               # os-ken's threads do not end on their own

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager
    from . import app
    app.SETTINGS.update(channel=channel, stats_interval=args.stats_interval)
    # Listen on loopback only (os-ken's default is every address).
    cfg.CONF(["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(args.of_port)], project="os_ken")
    try:
        AppManager.run_apps(["lab.controller.app"])
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
