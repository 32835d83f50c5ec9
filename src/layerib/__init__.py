"""layerib: layer-by-layer information-bottleneck training and neural MI estimation.

Implements Elad, Haviv, Blau, Michaeli, "Direct Validation of the Information
Bottleneck Principle for Deep Nets" (ICCV-W 2019). MI is in nats everywhere.
"""

__version__ = "0.1.0"
