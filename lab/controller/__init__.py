"""tcplab's OpenFlow controller, written on the Ryu API (os-ken, Ryu's maintained fork).

- app.py: the os-ken application: OpenFlow 1.3 L2 learning, periodic port/flow statistics, and policy rules
  (drop a host pair or TCP flags such as SYN-ACK, rate-limit with a meter, restore) asked for over the
  control channel.
- protocol.py (pure): the channel's requests as strict models, with their ranges; answers.
- channel.py: the channel itself, a Unix socket RUN_DIR/RUNID.ctl (mode 0600) that only the run which started
  the controller may use (SO_PEERCRED), with bounded lines and an answer to every request.
- events.py (pure): the events the controller prints and their fields, as data.
- __main__.py: how it is started (`python -m lab.controller --of-port P --ctl-socket PATH --owner-pid PID
  --owner-start T`); os-ken 4.x has no osken-manager, so AppManager.run_apps() is called directly.
- process.py: the lab's side: start it with a free loopback OpenFlow port, wait for the switches, send
  requests, read its events, stop it by PID.
"""
