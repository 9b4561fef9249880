"""etcdlab: a reproducible lab that measures naming and time in an etcd + chrony cluster."""

__version__ = "0.1.0"
