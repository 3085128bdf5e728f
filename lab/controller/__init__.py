"""tcplab's OpenFlow controller, written on the Ryu API (os-ken, Ryu's maintained fork).

- app.py: the os-ken application: OpenFlow 1.3 L2 learning, periodic port/flow statistics, and policy rules
  (drop a host pair or TCP flags such as SYN-ACK, rate-limit with a meter, restore) asked for over a
  loopback control socket.
- __main__.py: how it is started (`python -m lab.controller --of-port P --ctl-port Q`); os-ken 4.x has no
  osken-manager, so AppManager.run_apps() is called directly.
- process.py: the lab's side: start it on 127.0.0.1 with free ports, wait for the switches, send rules,
  read its events, stop it by PID.
"""
