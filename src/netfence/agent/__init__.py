"""The node agent: watch a source (the Kubernetes API or a directory), build the node's table,
compare it with what the kernel holds and apply the difference; metrics, health and logs."""
