"""Many processes, one fit: the session (torch.distributed), shards of the data, and all-reduce."""
from gradfit.distributed.session import (CRASH_ENV, DEFAULT_TIMEOUT, DistributedError, RowRange,
                                         Session, ShardedBatches, Topology, shard, shard_range, topology_from_env)

__all__ = ["CRASH_ENV", "DEFAULT_TIMEOUT", "DistributedError", "RowRange", "Session",
           "ShardedBatches", "Topology", "shard", "shard_range", "topology_from_env"]
