"""etcd: the one transport to a member and its error classifier, history recording, the
membership (naming) library and the workloads."""
