"""tcplab: a Mininet lab that shows, on real kernel sockets, how TCP sockets work."""

__version__ = "0.1.0"
