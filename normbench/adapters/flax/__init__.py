"""Flax on JAX: flax.linen and flax.nnx, one JAX process; synchronized BatchNorm under shard_map."""

from ..framework import Framework

FRAMEWORK = Framework("flax", {"flax.linen": ".linen:FlaxLinenAdapter", "flax.nnx": ".nnx:FlaxNnxAdapter"},
                      distributions=("jax", "jaxlib", "flax"), extra="jax", family=("JAX", "flax.linen"),
                      host_devices=".replicas:host_devices")
